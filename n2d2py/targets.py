"""Targets (spec §3.7, §5): labels → output targets, the loss gradient, estimates and scores.

A target lives in section ``[<cell>.Target*]``; its files go to ``<run dir>/<section name>/``.
"""

import os
import re
from collections import deque

import numpy as np

from n2d2py.backend import array_module, to_host
from n2d2py.errors import N2D2PyError
from n2d2py.registry import TARGETS
from n2d2py.atomic import atomic_write_text

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

    def __init__(self, nb_targets, top_n=1, window=10000):
        self.nb_targets = nb_targets
        self.top_n = top_n
        self.recent = deque(maxlen=max(1, window))  # per-stimulus hits for the -ws average
        self.recent_top_n = deque(maxlen=max(1, window))
        self.history = []  # (step, success) rows of Success_<set>.dat
        self.history_top_n = []
        self.clear()

    def clear(self):
        """Forget the confusion matrix, counts and logs (not the moving window or history)."""
        self.matrix = np.zeros((self.nb_targets, self.nb_targets), dtype=np.int64)
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
            for i, (sid, name) in enumerate(zip(ids, names)):
                row = " ".join(f"{v:g}" for v in outputs[i])
                lines.append(f'{sid} "{name}" {targets[i]} {estimated[i]} {values[i]:g} {row}')
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
        return class_metrics(self.matrix)

    def average(self, metric):
        """Class average of ``metric`` (one of METRICS)."""
        if metric not in METRICS:
            raise N2D2PyError(f"unknown metric '{metric}' (known: {', '.join(METRICS)})")
        return float(np.mean(self.metrics()[metric])) if self.nb_targets else 0.0


# -- LabelsMapping files ----------------------------------------------------------------


def _wildcard(name):
    """N2D2 label wildcards: ``*`` any characters, ``+`` exactly one."""
    pattern = "".join(".*" if c == "*" else "." if c == "+" else re.escape(c) for c in name)
    return re.compile(pattern, re.DOTALL)


def _mapping_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield number, line


def _split_mapping_line(line, path, number):
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            raise N2D2PyError("unterminated quoted label name", path, number)
        name, rest = line[1:end], line[end + 1 :].split()
    else:
        name, *rest = line.split()
    if len(rest) != 1 or not re.fullmatch(r"[+-]?\d+", rest[0]) or int(rest[0]) < -1:
        message = f'expected "<label name> <output index or -1>", got "{line}"'
        raise N2D2PyError(message, path, number)
    return name, int(rest[0])


def parse_labels_mapping(path, label_names, nb_targets, warn=None):
    """(label id → output, default output or None) from a LabelsMapping file.

    ``*`` alone names the "no label" id −1; other names with ``*``/``+`` are wildcards over
    ``label_names``; an explicit name beats a wildcard; output −1 means "ignore".
    """
    explicit, wild, default = {}, [], None
    ids = {name: i for i, name in enumerate(label_names)}
    for number, line in _mapping_lines(path):
        name, output = _split_mapping_line(line, path, number)
        if output >= nb_targets:
            raise N2D2PyError(f"output {output} out of range (0 to {nb_targets - 1})", path, number)
        if name == "default":
            if default is not None:
                raise N2D2PyError("a second 'default' mapping", path, number)
            default = output
        elif name == "*":
            _insert(explicit, -1, output, path, number, line)
        elif "*" in name or "+" in name:
            wild.append((_wildcard(name), output, number, line))
        elif name in ids:
            _insert(explicit, ids[name], output, path, number, line)
        elif label_names and warn is not None:
            warn(f"no label named '{name}' in the database (line {number} of {path})")
    mapping = {}
    for regex, output, number, line in wild:
        for name, label in ids.items():
            if regex.fullmatch(name) and label not in explicit:
                _insert(mapping, label, output, path, number, line)
    mapping.update(explicit)
    return mapping, default


def _insert(mapping, label, output, path, number, line):
    if label in mapping:
        raise N2D2PyError(f'a mapping already exists for this label: "{line}"', path, number)
    mapping[label] = output


# -- the target -------------------------------------------------------------------------


@TARGETS.register("TargetScore", "Target")
class TargetScore:
    """Classification target: one class per stimulus, argmax (or threshold) decision."""

    def __init__(self, name, cell_name, nb_outputs, label_names=(), target_value=1.0,
                 default_value=0.0, top_n=1, mapping=None, default_target=None,
                 binary_threshold=0.5, where=None):
        self.name = name
        self.cell_name = cell_name
        self.nb_outputs = int(nb_outputs)
        self.nb_targets = self.nb_outputs if self.nb_outputs > 1 else 2
        self.label_names = list(label_names or ())
        self.target_value = float(target_value)
        self.default_value = float(default_value)
        self.top_n = int(top_n)
        self.mapping = mapping  # None: label id = output index
        self.default_target = default_target
        self.binary_threshold = float(binary_threshold)
        self.where = where  # (file, line, section) of the target section, for runtime errors
        self.window = 10000  # -ws
        self.sets = {}

    @classmethod
    def from_section(cls, sec, cell_name, nb_outputs, label_names):
        labels = list(label_names or ())
        nb_targets = nb_outputs if nb_outputs > 1 else 2
        top_n = sec.get_uint("TopN", 1)
        if top_n < 1 or top_n > (nb_outputs if nb_outputs > 1 else 1):
            raise sec.error("TopN", f"must be between 1 and the number of outputs ({nb_outputs})")
        path = sec.get_path("LabelsMapping", "")
        # Names absent from the database are skipped; CreateMissingLabels=1 only silences that.
        create_missing = sec.get_bool("CreateMissingLabels", False)
        mapping, default = None, None
        if path:
            if not os.path.isfile(path):
                raise sec.error("LabelsMapping", f"labels mapping file not found: {path}")
            prop = sec.prop("LabelsMapping")
            mapping, default = parse_labels_mapping(
                path, labels, nb_targets,
                warn=None if create_missing else (lambda msg: sec.doc.warn(msg, prop)),
            )
        err = sec.error(None, "")
        return cls(
            sec.name, cell_name, nb_outputs, labels,
            target_value=sec.get_float("TargetValue", 1.0),
            default_value=sec.get_float("DefaultValue", 0.0),
            top_n=top_n, mapping=mapping, default_target=default,
            binary_threshold=sec.get_float("BinaryThreshold", 0.5),
            where=(err.file, err.line, err.section),
        )

    def _error(self, message):
        file, line, section = self.where or (None, None, self.name)
        return N2D2PyError(message, file, line, section)

    def _label_name(self, label):
        return self.label_names[label] if 0 <= label < len(self.label_names) else str(label)

    def output_of(self, label):
        """The output index trained for database label ``label`` (−1: ignored)."""
        if self.mapping is None:
            out = label if label >= 0 else -1
        else:
            out = self.mapping.get(label, self.default_target)
            if out is None:
                if label < 0:
                    return -1
                raise self._error(
                    f"incomplete labels mapping: no output for label #{label} "
                    f"({self._label_name(label)}); add it or a 'default' line"
                )
        if out >= self.nb_targets:
            raise self._error(
                f"label #{label} ({self._label_name(label)}) maps to output {out}, but layer "
                f"{self.cell_name} has {self.nb_outputs} output(s); use LabelsMapping"
            )
        return out

    def targets_of(self, labels):
        """Output indices (N,) for database labels (N,), −1 where ignored."""
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        uniq, inverse = np.unique(labels, return_inverse=True)
        return np.array([self.output_of(int(l)) for l in uniq], dtype=np.int64)[inverse]

    def loss_grad(self, y, labels):
        """(dy, loss): dy = output − target (0 on ignored rows), loss = Σ(target − output)²/B."""
        xp = array_module(y)
        n = y.shape[0]
        out = y.reshape(n, -1)
        if out.shape[1] != self.nb_outputs:
            raise RuntimeError(f"{self.name}: expected {self.nb_outputs} outputs of size 1x1")
        t = self.targets_of(labels)
        valid = t >= 0
        target = np.full(out.shape, self.default_value, dtype=np.float32)
        if self.nb_outputs > 1:
            target[np.nonzero(valid)[0], t[valid]] = self.target_value
        else:
            target[valid & (t == 1), 0] = self.target_value
        mask = xp.asarray(valid.astype(np.float32))[:, None]
        dy = (out - xp.asarray(target)) * mask
        loss = float(xp.sum(dy * dy)) / n
        return dy.reshape(y.shape).astype(xp.float32, copy=False), loss

    def estimate(self, y):
        """(indices, values), each (N, TopN): best outputs first; one output: value > threshold."""
        v = to_host(y).reshape(y.shape[0], -1).astype(np.float32, copy=False)
        if v.shape[1] == 1:
            return (v > self.binary_threshold).astype(np.int64), v.copy()
        index = np.broadcast_to(np.arange(v.shape[1]), v.shape)
        # Descending values; on ties the larger index first, as N2D2's partial sort of pairs.
        order = np.lexsort((-index, -v), axis=-1)[:, : self.top_n]
        return order.astype(np.int64), np.take_along_axis(v, order, axis=1)

    def scores(self, set_name):
        """The Scores of ``set_name`` ("learning", "validation", "test"), created on first use."""
        if set_name not in self.sets:
            self.sets[set_name] = Scores(self.nb_targets, self.top_n, self.window)
        return self.sets[set_name]

    def process(self, set_name, y, labels, ids=None, names=None):
        """Score one batch of outputs ``y`` against ``labels``; returns the top-1 estimates."""
        targets = self.targets_of(labels)
        estimated, values = self.estimate(y)
        outputs = to_host(y).reshape(y.shape[0], -1)
        self.scores(set_name).add(targets, estimated, values, outputs, ids, names)
        return estimated[:, 0]

    # -- files --------------------------------------------------------------------------
    def folder(self, run_dir):
        return os.path.join(run_dir, self.name)

    def output_names(self):
        """A display name per output: its (first) label's name, 'default' or '*'."""
        names = []
        for output in range(self.nb_targets):
            if self.mapping is None:
                names.append(self._label_name(output) if self.label_names else str(output))
                continue
            if output == self.default_target:
                names.append("default")
                continue
            labels = sorted(l for l, o in self.mapping.items() if o == output)
            name = "" if not labels else "*" if labels[0] < 0 else self._label_name(labels[0])
            names.append(name + ("..." if len(labels) > 1 else ""))
        return names

    def write_labels_mapping(self, run_dir):
        """``labels_mapping.log.dat``: label id, name, output."""
        rows = ["label name output"]
        for label, name in enumerate(self.label_names):
            try:
                out = self.output_of(label)
            except N2D2PyError:
                out = "none"
            rows.append(f"{label} {name} {out}")
        atomic_write_text(os.path.join(self.folder(run_dir), "labels_mapping.log.dat"),
                          "\n".join(rows) + "\n")

    def record_success(self, run_dir, set_name, step, value=None):
        """Append (step, success) to ``Success_<set>.dat`` (learning: the -ws average)."""
        s = self.scores(set_name)
        learning = set_name == "learning"
        s.history.append((step, s.window_success() if value is None and learning
                          else s.success_rate() if value is None else value))
        _write_rows(os.path.join(self.folder(run_dir), f"Success_{set_name}.dat"), s.history)
        if self.top_n > 1:
            s.history_top_n.append((step, s.window_success(True) if learning else s.top_n_rate()))
            _write_rows(os.path.join(self.folder(run_dir), f"SuccessTopN_{set_name}.dat"),
                        s.history_top_n)

    def write_logs(self, run_dir, set_name):
        """Confusion matrix, its scores, Misclassified_<set>.dat and <set>/classif.log."""
        s = self.scores(set_name)
        folder = self.folder(run_dir)
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}.dat"),
                          confusion_text(s.matrix))
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}_score.dat"),
                          score_text(s.matrix, self.output_names()))
        lines = ["# name target estimated count"]
        for (sid, target, est), (name, count) in sorted(s.misclassified.items()):
            lines.append(f'{sid} "{name}" {target} {est} {count}')
        atomic_write_text(os.path.join(folder, f"Misclassified_{set_name}.dat"),
                          "\n".join(lines) + "\n")
        atomic_write_text(os.path.join(folder, set_name, "classif.log"),
                          "".join(line + "\n" for line in s.classif))

    def __repr__(self):
        return f"TargetScore({self.name} on {self.cell_name}, {self.nb_outputs} outputs)"


def confusion_text(matrix):
    """N2D2's ConfusionMatrix_<set>.dat: ``target estimated count fraction`` per cell."""
    rows = ["target estimated # %"]
    for t, row in enumerate(matrix):
        total = row.sum()
        for e, count in enumerate(row):
            rows.append(f"{t} {e} {count} {count / total if total else 0.0:g}")
    return "\n".join(rows) + "\n"


def score_text(matrix, names):
    """N2D2's ConfusionMatrix_<set>_score.dat: per-class metrics, then an AVG row."""
    metrics = class_metrics(matrix)
    rows = ["Target TargetName " + " ".join(title for _, title in SCORE_COLUMNS)]
    for t in range(len(matrix)):
        values = " ".join(f"{metrics[key][t]:g}" for key, _ in SCORE_COLUMNS)
        rows.append(f'{t} "{names[t]}" {values}')
    averages = " ".join(f"{float(np.mean(metrics[key])):g}" for key, _ in SCORE_COLUMNS)
    return "\n".join(rows) + "\n\n- AVG " + averages + "\n"


def _write_rows(path, rows):
    atomic_write_text(path, "".join(f"{step} {value:g}\n" for step, value in rows))
