"""Confusion matrices and the scores read from them (spec §5.6): per-class metrics, the success
of a set, and the two files N2D2 writes from a matrix."""

from collections import deque

import numpy as np

from n2d2py.errors import N2D2PyError
from n2d2py.targets import spatial

# Per-class metrics, N2D2's names and order (-valid-metric takes any of them).
METRICS = (
    "Sensitivity", "Specificity", "Precision", "NegativePredictiveValue", "MissRate", "FallOut",
    "FalseDiscoveryRate", "FalseOmissionRate", "IU", "Accuracy", "F1Score", "Informedness",
    "Markedness",
)
# Columns of ConfusionMatrix_<set>_score.dat (N2D2's header names, IU last).
SCORE_COLUMNS = (("Sensitivity", "Sensitivity"), ("Specificity", "Specificity"),
                 ("Precision", "Precision"), ("Accuracy", "Accuracy"), ("F1Score", "F1-score"),
                 ("Informedness", "Informedness"), ("IU", "IU"))


def _ratio(num, den, when):
    """num/den where ``when`` holds, else 0 (N2D2 returns 0 for an empty count)."""
    return np.where(when, num / np.maximum(den, 1), 0.0)


def class_metrics(matrix):
    """Every metric of METRICS per class, from a confusion matrix (rows: target, cols: estimate)."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    fn = m.sum(axis=1) - tp
    fp = m.sum(axis=0) - tp
    tn = m.sum() - tp - fn - fp
    sens = _ratio(tp, tp + fn, tp > 0)
    spec = _ratio(tn, tn + fp, tn > 0)
    prec = _ratio(tp, tp + fp, tp > 0)
    npv = _ratio(tn, tn + fn, tn > 0)
    return {
        "Sensitivity": sens,
        "Specificity": spec,
        "Precision": prec,
        "NegativePredictiveValue": npv,
        "MissRate": 1.0 - sens,
        "FallOut": 1.0 - spec,
        "FalseDiscoveryRate": 1.0 - prec,
        "FalseOmissionRate": 1.0 - npv,
        "IU": _ratio(tp, tp + fp + fn, tp > 0),
        "Accuracy": _ratio(tp + tn, tp + tn + fp + fn, tp + tn > 0),
        "F1Score": _ratio(2.0 * prec * sens, prec + sens, tp > 0),
        "Informedness": sens + spec - 1.0,
        "Markedness": prec + npv - 1.0,
    }


class Scores:
    """Scores of one set (learning, validation, test): confusion matrix, success, logs."""

    def __init__(self, nb_targets, top_n=1, window=10000, masked=False):
        self.nb_targets = nb_targets
        self.masked = masked  # spatial target with a mask: one more row/column, "masked"
        self.top_n = top_n
        self.recent = deque(maxlen=max(1, window))  # per-stimulus hits for the -ws average
        self.recent_top_n = deque(maxlen=max(1, window))
        self.history = []  # (step, success) rows of Success_<set>.dat
        self.history_top_n = []
        self.clear()

    def clear(self):
        """Forget the confusion matrix, counts and logs (not the moving window or history)."""
        size = self.nb_targets + (1 if self.masked else 0)
        self.matrix = np.zeros((size, size), dtype=np.int64)
        self.total = 0
        self.correct = 0
        self.correct_top_n = 0
        self.misclassified = {}  # (id, target, estimated) -> [name, count]
        self._classif = []  # raw batches of <set>/classif.log

    @property
    def classif(self):
        """The lines of ``<set>/classif.log``: id, "name", target, estimated, value, outputs."""
        lines = []
        for ids, names, targets, estimated, values, outputs in self._classif:
            if not len(ids):
                continue
            # one %-format per line, columns as Python numbers: "%g" % float(v) is f"{v:g}" of
            # the float32/float64 v, about 5x faster than formatting each number apart
            columns = np.asarray(outputs).reshape(len(ids), -1).T.tolist()
            line = '%s "%s" %s %s %g ' + " ".join(["%g"] * len(columns))
            lines.extend(line % row for row in zip(ids, names, targets.tolist(), estimated.tolist(),
                                                  values.tolist(), *columns))
        return lines

    def add(self, targets, estimated, values, outputs, ids=None, names=None):
        """One batch: targets (N,) with −1 = ignored, estimated/values (N, TopN), outputs (N, O)."""
        targets = np.asarray(targets)
        if ids is None:
            ids = range(self.total, self.total + len(targets))
        names = names if names is not None else [""] * len(targets)
        # kept raw: the lines are formatted only when classif.log is written
        self._classif.append((list(ids), list(names), targets.copy(), estimated[:, 0].copy(),
                              values[:, 0].copy(), np.array(outputs, copy=True)))
        valid = targets >= 0
        t, est = targets[valid], estimated[valid]
        np.add.at(self.matrix, (t, est[:, 0]), 1)
        hits = est[:, 0] == t
        hits_top_n = (est == t[:, None]).any(axis=1)
        self.total += int(valid.sum())
        self.correct += int(hits.sum())
        self.correct_top_n += int(hits_top_n.sum())
        self.recent.extend(hits.tolist())
        self.recent_top_n.extend(hits_top_n.tolist())
        valid_ids = [sid for sid, ok in zip(ids, valid) if ok]
        valid_names = [n for n, ok in zip(names, valid) if ok]
        for k in np.nonzero(~hits)[0]:
            key = (valid_ids[k], int(t[k]), int(est[k, 0]))
            entry = self.misclassified.setdefault(key, [valid_names[k], 0])
            entry[1] += 1

    def add_spatial(self, targets, estimated, mask_ok=None, ids=None, names=None):
        """One batch of a spatial target (spec §5.6): targets (N, H, W) with −1 = ignored,
        estimated (N, TopN, H, W), ``mask_ok`` (N, H, W) True where the mask lets a pixel
        through (None: no mask). A stimulus' success is the mean over its classes of the
        fraction of their pixels estimated right; the matrix counts every pixel, masked-out
        target pixels in the last column, masked-in ignored pixels in the last row."""
        n = self.nb_targets
        size = len(self.matrix)
        if ids is None:
            ids = range(self.total, self.total + len(targets))
        names = names if names is not None else [""] * len(targets)
        for i, (sid, name) in enumerate(zip(ids, names)):
            t, e = targets[i], estimated[i, 0]
            ok = np.ones(t.shape, bool) if mask_ok is None else mask_ok[i]
            valid = t >= 0
            if mask_ok is None:
                rows, cols = t[valid], e[valid]
            else:
                rows = np.concatenate([t[valid & ok], t[valid & ~ok], np.full((~valid & ok).sum(), n)])
                cols = np.concatenate([e[valid & ok], np.full((valid & ~ok).sum(), n), e[~valid & ok]])
            pixels = np.bincount(rows * size + cols, minlength=size * size).reshape(size, size)
            self.matrix += pixels
            hits = (e == t) & ok
            hits_top_n = (estimated[i] == t[None]).any(axis=0) & ok
            success = spatial.stimulus_success(t, hits)
            success_top_n = spatial.stimulus_success(t, hits_top_n)
            self.total += 1
            self.correct += success
            self.correct_top_n += success_top_n
            self.recent.append(success)
            self.recent_top_n.append(success_top_n)
            for target, est in zip(*np.nonzero(pixels[:n])):  # per-stimulus confusion dump
                entry = self.misclassified.setdefault((sid, int(target), int(est)), [name, 0])
                entry[1] += int(pixels[target, est])

    def success_rate(self):
        """Fraction of correctly classified stimuli since the last clear()."""
        return self.correct / self.total if self.total else 0.0

    def top_n_rate(self):
        return self.correct_top_n / self.total if self.total else 0.0

    def window_success(self, top_n=False):
        """Success averaged over the last -ws stimuli (the learning rate shown while learning)."""
        recent = self.recent_top_n if top_n else self.recent
        return sum(recent) / len(recent) if recent else 0.0

    def metrics(self):
        """class_metrics of the matrix, for the target classes (not the "masked" one)."""
        return {k: v[: self.nb_targets] for k, v in class_metrics(self.matrix).items()}

    def average(self, metric):
        """Class average of ``metric`` (one of METRICS)."""
        if metric not in METRICS:
            raise N2D2PyError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})")
        return float(np.mean(self.metrics()[metric])) if self.nb_targets else 0.0


def confusion_text(matrix):
    """N2D2's ConfusionMatrix_<set>.dat: ``target estimated count fraction`` per cell."""
    rows = ["target estimated # %"]
    for t, row in enumerate(matrix):
        total = row.sum()
        for e, count in enumerate(row):
            rows.append(f"{t} {e} {count} {count / total if total else 0.0:g}")
    return "\n".join(rows) + "\n"


def score_text(matrix, names):
    """N2D2's ConfusionMatrix_<set>_score.dat: per-class metrics, then an AVG row; one row per
    name (a masked target's matrix has one more row, "masked", that is not scored)."""
    metrics = {k: v[: len(names)] for k, v in class_metrics(matrix).items()}
    rows = ["Target TargetName " + " ".join(title for _, title in SCORE_COLUMNS)]
    for t in range(len(names)):
        values = " ".join(f"{metrics[key][t]:g}" for key, _ in SCORE_COLUMNS)
        rows.append(f'{t} "{names[t]}" {values}')
    averages = " ".join(f"{float(np.mean(metrics[key])):g}" for key, _ in SCORE_COLUMNS)
    return "\n".join(rows) + "\n\n- AVG " + averages + "\n"
