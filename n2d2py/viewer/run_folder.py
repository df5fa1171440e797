"""Reading a run folder: run.json, the target folders and their .dat files.

Nothing here needs the network; a figure that the folder cannot give raises ``Skip``.
"""

import glob
import json
import os
import re

import numpy as np

SETS = {"learning": "Learn", "validation": "Validation", "test": "Test"}


class ViewerError(Exception):
    """A bad command line or run folder: one line, exit status 2."""


class Skip(Exception):
    """A figure that this run folder cannot give; the message says why."""


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
