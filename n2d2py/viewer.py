"""The run viewer (``tools/test.py RUN_DIR`` or ``python -m n2d2py.viewer RUN_DIR``).

N2D2's ``test.py`` is a dangling symlink at HEAD (spec §8); this one reads a run folder and
shows: the success curves, the confusion matrix of a set, a gallery of its misclassified
stimuli, one stimulus through every layer, and the find-lr curve. The last two need the
network: it is rebuilt from ``run.json`` (INI and seed, so the database partition is the
run's) with the weights of ``weights_validation/`` (else ``weights/``).

Figures are written as PNGs (``--save``), one self-contained HTML page (``--html``), or shown
one at a time in a window (n/→ next, p/← previous, q quit; pyplot is used only there).
"""

import argparse
import glob
import io
import json
import os
import re
import sys

import numpy as np

from n2d2py import viewer_figures as vf
from n2d2py.viewer_figures import display_problem, save_pages, show_interactive, write_html

SETS = {"learning": "Learn", "validation": "Validation", "test": "Test"}


class ViewerError(Exception):
    """A bad command line or run folder: one line, exit status 2."""


class Skip(Exception):
    """A figure that this run folder cannot give; the message says why."""


# -- reading the run folder ---------------------------------------------------------------------


def read_table(path):
    """Rows of numbers of a whitespace-separated file; comment, header and blank lines skipped."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rows.append([float(v) for v in line.split("#", 1)[0].split()])
            except ValueError:
                continue
    rows = [r for r in rows if r]
    width = min((len(r) for r in rows), default=0)
    return np.array([r[:width] for r in rows], dtype=np.float64).reshape(len(rows), width)


def load_info(run_dir):
    """``run.json`` as a dict, or None when the folder has none (an N2D2 run folder)."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def target_folders(run_dir):
    """Sub-folders holding a target's files (Success_*.dat or ConfusionMatrix_*.dat)."""
    found = []
    for name in sorted(os.listdir(run_dir)):
        folder = os.path.join(run_dir, name)
        if os.path.isdir(folder) and (glob.glob(os.path.join(glob.escape(folder), "Success_*.dat"))
                                      or glob.glob(os.path.join(glob.escape(folder),
                                                                "ConfusionMatrix_*.dat"))):
            found.append(name)
    return found


def target_dir(run_dir, target=None):
    """The folder of ``target``; by default the first one with learning curves (the target
    that learned, when a spike test later added its own folder), else the first found."""
    names = target_folders(run_dir)
    if target is not None:
        if target not in names:
            raise ViewerError(f"no target folder '{target}' in {run_dir} "
                              f"(found: {', '.join(names) or 'none'})")
        return os.path.join(run_dir, target)
    if not names:
        raise Skip("no target folder (Success_*.dat, ConfusionMatrix_*.dat) in the run folder")
    learned = [n for n in names if os.path.isfile(os.path.join(run_dir, n, "Success_learning.dat"))]
    return os.path.join(run_dir, (learned or names)[0])


def read_confusion(path):
    """The matrix of ``ConfusionMatrix_<set>.dat``: rows ``target estimated count [fraction]``,
    or a plain square table of counts."""
    table = read_table(path)
    if table.shape[1] >= 3 and table.size and np.all(table[:, :2] == np.round(table[:, :2])) \
            and table[:, :2].min() >= 0:
        n = int(table[:, :2].max()) + 1
        matrix = np.zeros((n, n), dtype=np.int64)
        np.add.at(matrix, (table[:, 0].astype(int), table[:, 1].astype(int)),
                  np.round(table[:, 2]).astype(np.int64))
        return matrix
    if table.ndim == 2 and table.shape[0] == table.shape[1] and table.size:
        return np.round(table).astype(np.int64)
    raise Skip(f"{path}: not a confusion matrix this viewer can read")


def read_names(folder, set_name, n):
    """A name per output: from ``ConfusionMatrix_<set>_score.dat`` (``t "name" ...``), else
    ``labels_mapping.log.dat`` (``label name output``), else the index."""
    names = {}
    score = os.path.join(folder, f"ConfusionMatrix_{set_name}_score.dat")
    if os.path.isfile(score):
        with open(score, encoding="utf-8", errors="replace") as f:
            for line in f:
                found = re.match(r'\s*(\d+)\s+"([^"]*)"', line)
                if found:
                    names[int(found.group(1))] = found.group(2)
    mapping = os.path.join(folder, "labels_mapping.log.dat")
    if not names and os.path.isfile(mapping):
        with open(mapping, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit():
                    names.setdefault(int(parts[2]), parts[1])
    return [names.get(i) or str(i) for i in range(n)]


def read_misclassified(path):
    """Rows (id, name, target, estimated, count) of ``Misclassified_<set>.dat``."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            found = re.match(r'\s*(\d+)\s+"([^"]*)"\s+(-?\d+)\s+(-?\d+)\s+(\d+)', line)
            if found:
                sid, name, t, e, count = found.groups()
                rows.append((int(sid), name, int(t), int(e), int(count)))
    return rows


def _valid_metric(info):
    argv = list((info or {}).get("argv") or [])
    if "-valid-metric" in argv[:-1]:
        return argv[argv.index("-valid-metric") + 1]
    return "Sensitivity" if info else None


def _check_set(set_name):
    if set_name not in SETS:
        raise ViewerError(f"--set {set_name}: expected one of {', '.join(SETS)}")


# -- the network, rebuilt -----------------------------------------------------------------------

_REBUILT = {}


class Rebuilt:
    """The run's network with its best weights, and the target whose folder is viewed."""

    def __init__(self, net, target, weights_dir):
        self.net = net
        self.section, self.cell_name, self.target = target
        self.weights_dir = weights_dir

    def names(self):
        return self.target.output_names()

    def read(self, set_name, positions):
        """(x (n, C, H, W), labels, ids) after the set's transformations, as the run saw them
        (the set's cache is used unless the set is large)."""
        db_set = SETS[set_name]
        small = self.net.provider.size(db_set) <= 20000
        return self.net.provider.read(db_set, positions, np.random.default_rng(0), use_cache=small)

    def positions(self, set_name, ids):
        """Positions in the set of database ids (−1 where an id is not in the set)."""
        all_ids = np.asarray(self.net.database.ids(SETS[set_name]))
        ids = np.asarray(ids, dtype=np.int64)
        if not len(all_ids):
            return np.full(len(ids), -1)
        pos = np.clip(np.searchsorted(all_ids, ids), 0, len(all_ids) - 1)  # the ids are sorted
        return np.where(all_ids[pos] == ids, pos, -1)

    def forward(self, x):
        """{layer name: host array} for a host batch."""
        device = self.net.device
        outputs = self.net.forward(device.asarray(x), train=False)
        return {name: device.to_host(y) for name, y in outputs.items()}


def rebuild(run_dir, target=None):
    """The network of ``run.json`` (cached per run folder); Skip with the reason if impossible."""
    paths = [os.path.join(run_dir, d) for d in ("run.json", "weights_validation", "weights")]
    stamps = tuple(os.stat(p).st_mtime_ns for p in paths if os.path.exists(p))
    key = (os.path.abspath(run_dir), target, stamps)  # a run learned further is rebuilt
    if key in _REBUILT:
        return _REBUILT[key]
    info = load_info(run_dir)
    if info is None:
        raise Skip("the run folder has no run.json (an N2D2 run folder?): the network cannot "
                   "be rebuilt")
    from n2d2py import backend, network, weights
    from n2d2py.errors import Diagnostics, N2D2PyError
    from n2d2py.ini import parse_file

    ini = info.get("ini", "")
    if not os.path.isfile(ini):
        raise Skip(f"the INI of run.json is gone: {ini}")
    folder = os.path.basename(target_dir(run_dir, target))
    try:
        here = os.getcwd()
        os.chdir(info.get("cwd") if os.path.isdir(info.get("cwd", "")) else here)
        try:  # relative DataPath= and the like resolve as they did for the run
            doc = parse_file(ini, Diagnostics(stream=io.StringIO()))
            net = network.build(doc, backend.cpu(int(info.get("seed") or 0)))
        finally:
            os.chdir(here)
        found = [t for t in net.targets if t[0] == folder]
        if not found:
            raise Skip(f"the INI has no target [{folder}]")
        net.initialize()
        weights_dir = weights.best_weights_dir(run_dir)
        if weights_dir is None:
            raise Skip("no weights_validation/ or weights/ in the run folder")
        weights.load_weights(net.cells, weights_dir)
    except N2D2PyError as exc:
        raise Skip(f"the network cannot be rebuilt: {exc}") from None
    _REBUILT[key] = Rebuilt(net, found[0], weights_dir)
    return _REBUILT[key]


# -- figures ------------------------------------------------------------------------------------


def figure_curves(run_dir, target=None):
    """Success_learning/validation.dat of the target, best validation starred, test rate."""
    folder = target_dir(run_dir, target)
    rows = {}
    for set_name in SETS:
        path = os.path.join(folder, f"Success_{set_name}.dat")
        table = read_table(path) if os.path.isfile(path) else np.zeros((0, 2))
        rows[set_name] = table[:, :2] if table.shape[1] >= 2 else np.zeros((0, 2))
    if not len(rows["learning"]) and not len(rows["validation"]):
        raise Skip("no Success_learning.dat or Success_validation.dat (a test-only run?)")
    test = float(rows["test"][-1, 1]) if len(rows["test"]) else None
    title = f"Success rate [{os.path.basename(folder)}]"
    if not len(rows["validation"]):
        title += " (no validation set)"
    return vf.draw_curves(rows["learning"], rows["validation"] if len(rows["validation"]) else
                          None, test, title, _valid_metric(load_info(run_dir)))


def figure_confusion(run_dir, set_name="test", target=None):
    """ConfusionMatrix_<set>.dat as counts and row-normalised %."""
    _check_set(set_name)
    folder = target_dir(run_dir, target)
    path = os.path.join(folder, f"ConfusionMatrix_{set_name}.dat")
    if not os.path.isfile(path):
        raise Skip(f"no ConfusionMatrix_{set_name}.dat")
    matrix = read_confusion(path)
    names = read_names(folder, set_name, len(matrix))
    when = {"learning": " (the last -log interval)", "validation": " (the last validation pass)"}
    return vf.draw_confusion(matrix, names, f"{os.path.basename(folder)}: {set_name} set"
                             f"{when.get(set_name, '')}")


def _misclassified(run_dir, set_name, target):
    """(rebuilt network, rows (position, id, target, estimated)) of Misclassified_<set>.dat."""
    if set_name == "learning":
        raise Skip("Misclassified_learning.dat counts stimuli in learning order, not database ids")
    path = os.path.join(target_dir(run_dir, target), f"Misclassified_{set_name}.dat")
    if not os.path.isfile(path):
        raise Skip(f"no Misclassified_{set_name}.dat")
    rows = read_misclassified(path)
    if not rows:
        raise Skip(f"no misclassified stimulus in the {set_name} set")
    rebuilt = rebuild(run_dir, target)
    positions = rebuilt.positions(set_name, [r[0] for r in rows])
    return rebuilt, [(int(p), r[0], r[2], r[3]) for p, r in zip(positions, rows) if p >= 0]


def figure_misclassified(run_dir, set_name="test", target=None):
    """Up to 5×8 misclassified stimuli, "target → estimated" above each."""
    _check_set(set_name)
    rebuilt, rows = _misclassified(run_dir, set_name, target)
    if not rows:
        raise Skip(f"the ids of Misclassified_{set_name}.dat are not in the rebuilt {set_name} set")
    shown = rows[: vf.GALLERY_ROWS * vf.GALLERY_COLS]
    x, _, _ = rebuilt.read(set_name, [r[0] for r in shown])
    names = rebuilt.names()

    def name(i):
        return names[i] if 0 <= i < len(names) else str(i)

    titles = [f"{name(t)} → {name(e)}" for _, _, t, e in shown]
    notes = [f"#{p} (id {sid})" for p, sid, _, _ in shown]
    more = f"the first {len(shown)} of {len(rows)}" if len(rows) > len(shown) else f"all {len(rows)}"
    return vf.draw_gallery(list(x), titles, notes, f"Misclassified {set_name} stimuli, {more}: "
                           "target → estimated above, #position in the set below "
                           "(--stimulus K traces one)")


def default_stimulus(run_dir, set_name="test", target=None):
    """Position of the first misclassified stimulus of the set, else 0."""
    try:
        return _misclassified(run_dir, set_name, target)[1][0][0]
    except (Skip, IndexError):
        return 0


def figure_stimulus(run_dir, set_name="test", k=None, target=None):
    """Stimulus ``k`` (position in the set; default: the first misclassified) through every
    layer of the rebuilt network."""
    _check_set(set_name)
    rebuilt = rebuild(run_dir, target)
    k = default_stimulus(run_dir, set_name, target) if k is None else k
    size = rebuilt.net.provider.size(SETS[set_name])
    if not 0 <= k < size:
        raise ViewerError(f"--stimulus {k}: the {set_name} set has {size} stimuli (0 to {size - 1})")
    x, labels, ids = rebuilt.read(set_name, [k])
    outputs = rebuilt.forward(x)
    estimated = int(rebuilt.target.estimate(outputs[rebuilt.cell_name])[0][0, 0])
    expected = int(rebuilt.target.targets_of(labels)[0])
    names = rebuilt.names()
    layers = [(n, c.type_name, outputs[n][0]) for n, c in rebuilt.net.cells.items()]

    def name(i):
        return names[i] if 0 <= i < len(names) else ("ignored" if i < 0 else str(i))

    verdict = "correct" if estimated == expected else "MISCLASSIFIED"
    title = (f"{set_name} stimulus #{k} (database id {int(ids[0])}): target {name(expected)}, "
             f"estimated {name(estimated)} — {verdict}\n"
             f"weights: {os.path.basename(rebuilt.weights_dir)}/; in the bar charts the "
             "estimated class is red, the target hatched")
    return vf.draw_stimulus(x[0], layers, title, names, estimated, expected,
                            rebuilt.target.nb_outputs)


def figure_find_lr(run_dir):
    """find_lr_<target>.dat (lr loss) with its .smooth curve and the suggested rate."""
    paths = sorted(glob.glob(os.path.join(glob.escape(run_dir), "find_lr_*.dat")))
    if not paths:
        raise Skip("no find_lr_*.dat (run with -find-lr N to get one)")
    curves = []
    for path in paths:
        raw = read_table(path)
        if raw.shape[1] < 2 or not len(raw):
            continue
        smooth = read_table(path + ".smooth") if os.path.isfile(path + ".smooth") else None
        smooth = smooth[:, :2] if smooth is not None and smooth.shape[1] >= 2 else None
        curves.append((os.path.basename(path)[len("find_lr_"):-len(".dat")], raw[:, :2], smooth,
                       _suggestion(raw, path)))
    if not curves:
        raise Skip("the find_lr_*.dat files hold no (lr, loss) rows")
    return vf.draw_find_lr(curves)


def _suggestion(raw, path):
    """find_lr.suggest on a .dat as -find-lr made it (None if it cannot be computed)."""
    try:
        from n2d2py.find_lr import STOPPED_MARK, suggest
    except ImportError:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            stopped = any(line.startswith(STOPPED_MARK) for line in f)
        return suggest(raw[:, 0], raw[:, 1], stopped=stopped)
    except Exception:  # the suggestion is a bonus: a failure here must not hide the curve
        return None


# -- pages, output ------------------------------------------------------------------------------


def pages(run_dir, set_name="test", stimulus=None, target=None, log=print, debug=False):
    """[(file name, caption, Figure)] of everything this run folder can show; one printed line
    per figure skipped."""
    def stimulus_page():
        k = default_stimulus(run_dir, set_name, target) if stimulus is None else stimulus
        return f"stimulus_{k}.png", figure_stimulus(run_dir, set_name, k, target)

    wanted = [
        ("success curves", lambda: ("curves.png", figure_curves(run_dir, target))),
        (f"confusion matrix ({set_name})",
         lambda: (f"confusion_{set_name}.png", figure_confusion(run_dir, set_name, target))),
        (f"misclassified gallery ({set_name})",
         lambda: (f"misclassified_{set_name}.png", figure_misclassified(run_dir, set_name, target))),
        (f"stimulus through the layers ({set_name})", stimulus_page),
        ("find-lr curve", lambda: ("find_lr.png", figure_find_lr(run_dir))),
    ]
    done = []
    for caption, make in wanted:
        try:
            name, fig = make()
            done.append((name, caption, fig))
        except Skip as why:
            log(f"skipped {caption}: {why}")
        except ViewerError:
            raise
        except Exception as exc:  # one broken figure must not cost the others
            if debug:
                raise
            log(f"skipped {caption}: {type(exc).__name__}: {exc}")
    return done


# -- command line -------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="test.py", description="Show what an n2d2py (or N2D2) run folder holds: curves, "
        "confusion matrix, misclassified stimuli, one stimulus through the layers, find-lr.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (the -o of n2d2py)")
    parser.add_argument("--save", metavar="OUT_DIR", help="write the figures as PNGs there")
    parser.add_argument("--html", metavar="FILE", help="write one self-contained HTML page")
    parser.add_argument("--set", dest="set_name", default="test", choices=list(SETS),
                        help="set of the confusion matrix, gallery and stimulus [test]")
    parser.add_argument("--stimulus", type=int, metavar="K", default=None,
                        help="position in the set of the stimulus to trace "
                        "[the first misclassified]")
    parser.add_argument("--target", default=None, help="target folder [the first found]")
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one line")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return _main(args)
    except ViewerError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _main(args):
    run_dir = args.run_dir
    if not os.path.isdir(run_dir):
        why = "no such folder" if not os.path.exists(run_dir) else "not a folder"
        raise ViewerError(f"{run_dir}: {why} (give the run folder, the -o of n2d2py)")
    if not target_folders(run_dir) and not glob.glob(os.path.join(glob.escape(run_dir),
                                                                   "find_lr_*.dat")):
        raise ViewerError(f"{run_dir}: not a run folder (no target folder with Success_*.dat or "
                          "ConfusionMatrix_*.dat, no find_lr_*.dat)")
    if args.stimulus is not None and args.stimulus < 0:
        raise ViewerError(f"--stimulus {args.stimulus}: a position in the set is 0 or more")
    if args.target is not None:
        target_dir(run_dir, args.target)
    save, page = args.save, args.html
    if not save and not page:
        problem = display_problem()
        if problem:
            save = os.path.join(".", "view")
            print(f"{problem}: writing the figures to {save}/ instead")
    done = pages(run_dir, args.set_name, args.stimulus, args.target, debug=args.debug)
    if not done:
        print("nothing to show")
        return 0
    if save:
        save_pages(done, save)
    if page:
        write_html(done, page, run_dir)
    if not save and not page:
        print(f"{len(done)} figure(s) in a window: n/→ next, p/← previous, q quits "
              f"({', '.join(caption for _, caption, _ in done)})")
        try:
            show_interactive(done)
        except Exception as exc:  # a window that cannot open after all (e.g. a dead X server)
            print(f"no window ({type(exc).__name__}: {exc}): writing the figures to ./view/")
            save_pages(done, os.path.join(".", "view"))
    return 0


if __name__ == "__main__":
    main()
