"""What the viewer shows of a run folder: one function per figure, reading the folder (and
the rebuilt network where needed) and drawing with ``viewer.figures``; ``pages`` lists them."""

import glob
import os

import numpy as np

from n2d2py.plots import draw_confusion
from n2d2py.viewer import figures as vf
from n2d2py.viewer.rebuild import rebuild
from n2d2py.viewer.run_folder import (SETS, Skip, ViewerError, _check_set, _valid_metric, load_info,
                                      read_confusion, read_misclassified, read_names, read_table,
                                      target_dir)

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
    return draw_confusion(matrix, names, f"{os.path.basename(folder)}: {set_name} set"
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
    if _spatial(rebuilt):
        raise Skip("a per-pixel target: its stimuli are on the segmentation pages")
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
    if _spatial(rebuilt):
        raise Skip("a per-pixel target: its stimuli are on the segmentation pages")
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


def pages(run_dir, set_name="test", stimulus=None, target=None, log=print, debug=False):
    """[(file name, caption, Figure)] of everything this run folder can show; one printed line
    per figure skipped."""
    def stimulus_page():
        k = default_stimulus(run_dir, set_name, target) if stimulus is None else stimulus
        return f"stimulus_{k}.png", figure_stimulus(run_dir, set_name, k, target)

    def segmentation_stimulus():
        k = 0 if stimulus is None else stimulus
        return f"segmentation_{k}.png", figure_segmentation(run_dir, set_name, [k], target)

    wanted = [
        ("success curves", lambda: ("curves.png", figure_curves(run_dir, target))),
        (f"confusion matrix ({set_name})",
         lambda: (f"confusion_{set_name}.png", figure_confusion(run_dir, set_name, target))),
        (f"misclassified gallery ({set_name})",
         lambda: (f"misclassified_{set_name}.png", figure_misclassified(run_dir, set_name, target))),
        (f"stimulus through the layers ({set_name})", stimulus_page),
        ("find-lr curve", lambda: ("find_lr.png", figure_find_lr(run_dir))),
    ]
    if _per_pixel(run_dir, target):  # segmentation pages instead of the gallery and stimulus
        wanted[2:4] = [
            (f"segmentation of a stimulus ({set_name})", segmentation_stimulus),
            (f"segmentation page ({set_name})", lambda: (
                f"segmentation_{set_name}.png", figure_segmentation(run_dir, set_name, None, target))),
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


# -- segmentation (spatial targets) -------------------------------------------------------------

SEGMENTATION_PAGE = 6  # stimuli on the segmentation page


def _spatial(rebuilt):
    return tuple(rebuilt.net.cells[rebuilt.cell_name].out_shape[1:]) != (1, 1)


def _per_pixel(run_dir, target):
    """Whether the viewed target scores a spatial output (False when the run cannot be rebuilt:
    the pages that need the network say why)."""
    try:
        return _spatial(rebuild(run_dir, target))
    except Exception:
        return False


def figure_segmentation(run_dir, set_name="test", positions=None, target=None):
    """Stimuli of the set with the target's estimated per-pixel classes and the boxes of the
    network's TargetROIs, beside their ground truth (per-pixel targets and true ROIs)."""
    from n2d2py.targets.rois import TargetROIs
    from n2d2py.viewer import segmentation as seg

    _check_set(set_name)
    rebuilt = rebuild(run_dir, target)
    if not _spatial(rebuilt):
        raise Skip(f"{rebuilt.section} scores 1×1 outputs (no segmentation to show)")
    size = rebuilt.net.provider.size(SETS[set_name])
    positions = list(range(min(SEGMENTATION_PAGE, size))) if positions is None else positions
    if not positions or not all(0 <= k < size for k in positions):
        raise ViewerError(f"--stimulus {positions}: the {set_name} set has {size} stimuli")
    x, labels, ids = rebuilt.read(set_name, positions)
    outputs = rebuilt.forward(x)
    for _, cell_name, t in rebuilt.net.targets:  # in link order: masks before the masked
        t.scores("view").clear()
        t.process("view", outputs[cell_name], labels, ids)
    t = rebuilt.target
    estimated, values, _ = t.last
    truth = t.pixel_targets(labels, estimated.shape[2:])
    shown = t.mask_ok(truth.shape)
    keys, n = t.keys, t.nb_targets
    rois_targets = [r for _, _, r in rebuilt.net.targets if isinstance(r, TargetROIs)]
    label_names = list(rebuilt.net.provider.label_names)
    rows = []
    for i, k in enumerate(positions):
        est = seg.colours(estimated[i, 0], n, keys.labels_hue_offset, keys.no_display_label,
                          values[i, 0] if keys.estimated_labels_value_display else None,
                          None if shown is None else shown[i])
        true = seg.colours(truth[i], n, keys.labels_hue_offset, keys.no_display_label)
        row = seg.SegmentationRow(f"{set_name} #{k} (id {int(ids[i])})",
                                  seg.overlay(x[i, 0], est), seg.overlay(x[i, 0], true))
        row.estimated_boxes = _estimated_boxes(rois_targets, i, seg)
        rois = labels.rois[i] if hasattr(labels, "rois") else []
        row.true_boxes = [(r, label_names[r.label] if 0 <= r.label < len(label_names)
                           else str(r.label), seg.TRUTH_COLOUR) for r in rois]
        rows.append(row)
    legend = [(f"{c} {name}", seg.colours(np.array([[c]]), n, keys.labels_hue_offset,
                                          keys.no_display_label)[0, 0])
              for c, name in enumerate(t.output_names())]
    legend.append(("ignored" + (" / masked" if shown is not None else ""), (127, 127, 127)))
    title = (f"[{rebuilt.section}] {set_name} set: estimated classes per pixel and the boxes of "
             f"{', '.join(r.name for r in rois_targets) or 'no TargetROIs'} (left), targets and "
             f"true ROIs (right); weights {os.path.basename(rebuilt.weights_dir)}/")
    return seg.draw_segmentation(rows, title, legend)


def _estimated_boxes(rois_targets, i, seg):
    """The boxes of the first TargetROIs for stimulus i, labelled with every TargetROIs' class
    for the same box (e.g. face and gender), coloured by the first one's match."""
    if not rois_targets:
        return []
    first = rois_targets[0]
    found = []
    for d in first.scores("view").detections[i][2]:
        texts = []
        for r in rois_targets:
            same = [e for e in r.scores("view").detections[i][2] if e.box.x0 == d.box.x0
                    and e.box.y0 == d.box.y0 and e.box.x1 == d.box.x1 and e.box.y1 == d.box.y1]
            if same:
                texts.append(f"{r.class_names()[same[0].box.label]} {same[0].score:.3g}")
        expected = first.output_of(d.match.label) if d.match is not None else None
        found.append((d.box, " | ".join(texts), seg.box_colour(d, expected)))
    return found
