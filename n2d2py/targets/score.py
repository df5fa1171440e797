"""TargetScore (spec §3.7, §5): labels → output targets, the loss gradient, estimates and scores,
per stimulus on 1×1 outputs and per pixel on spatial ones.

A target lives in section ``[<cell>.Target*]``; its files go to ``<run dir>/<section name>/``.
"""

import os

import numpy as np

from n2d2py.backend import array_module, to_host
from n2d2py.data.rois import LabelMaps
from n2d2py.errors import N2D2PyError
from n2d2py.registry import TARGETS
from n2d2py.targets import display, spatial
from n2d2py.targets.mapping import parse_labels_mapping
from n2d2py.targets.metrics import Scores, confusion_text, score_text
from n2d2py.atomic import atomic_write_text


@TARGETS.register("TargetScore", "Target")
class TargetScore:
    """Classification target: one class per stimulus (1×1 outputs) or per pixel (spatial
    outputs), argmax (or threshold) decision."""

    spatial_seen = False  # scored a spatial output: per-pixel logs
    image_format = "jpg"  # ImageLogFormat of the test images ("": the stimulus' own)
    name_of = None  # stimulus id → name (the database's), for the logs

    def __init__(self, name, cell_name, nb_outputs, label_names=(), target_value=1.0,
                 default_value=0.0, top_n=1, mapping=None, default_target=None,
                 binary_threshold=0.5, where=None, keys=None):
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
        self.keys = keys or spatial.SpatialKeys()
        self.mask_target = None  # the TargetScore named by MaskLabelTarget, once linked
        self.last = None  # (estimated (N,TopN,H,W), values, host outputs) of the last batch
        self._cached = (None, None, None)  # (labels, output H×W, targets) of the last batch
        self.link_where = {}  # key → (file, line, section, key) of the links' INI lines

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
        target = cls(
            sec.name, cell_name, nb_outputs, labels,
            target_value=sec.get_float("TargetValue", 1.0),
            default_value=sec.get_float("DefaultValue", 0.0),
            top_n=top_n, mapping=mapping, default_target=default,
            binary_threshold=sec.get_float("BinaryThreshold", 0.5),
            where=(err.file, err.line, err.section),
            keys=spatial.SpatialKeys.from_section(sec),
        )
        target.image_format = sec.get_str("ImageLogFormat", "jpg")
        target.link_where = {key: _where(sec.error(key, "")) for key in ("MaskLabelTarget",
                                                                         "ROIsLabelTarget")}
        return target

    # -- links between targets (MaskLabelTarget, ROIsLabelTarget) ------------------------
    def links(self):
        """(key, section name) of the targets this one reads; they are processed before it."""
        return [("MaskLabelTarget", self.keys.mask_target)] if self.keys.mask_target else []

    def link(self, key, target):
        if key == "MaskLabelTarget":
            self.mask_target = target

    @property
    def masked(self):
        return self.mask_target is not None and self.keys.masked_label >= 0

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
        """Output indices of database labels (any shape), −1 where ignored."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size == 0:
            return labels.copy()
        low = min(int(labels.min()), -1)
        present = np.bincount((labels - low).ravel())
        table = np.full(len(present), -1, dtype=np.int64)
        for k in np.nonzero(present)[0]:
            table[k] = self.output_of(int(k) + low)
        return table[labels - low]

    @staticmethod
    def is_spatial(y, labels):
        """Per-pixel scoring: an output larger than 1×1, or pixel-wise labels."""
        return y.ndim == 4 and (y.shape[2] * y.shape[3] > 1 or isinstance(labels, LabelMaps))

    def pixel_targets(self, labels, out_hw):
        """Targets (N, H, W) of an output of size ``out_hw`` (spec §5.3), cached per batch."""
        labels_seen, hw, cached = self._cached
        if labels_seen is labels and hw == tuple(out_hw):
            return cached
        if isinstance(labels, LabelMaps):
            t = spatial.pixel_targets(self.targets_of(labels.maps), out_hw, self.nb_targets,
                                      self.keys.weak_target)
        else:  # one label per stimulus: every pixel gets it
            t = spatial.broadcast_targets(self.targets_of(labels).reshape(-1), out_hw)
        self._cached = (labels, tuple(out_hw), t)
        return t

    def loss_grad(self, y, labels):
        """(dy, loss): dy = output − target (0 on ignored rows), loss = Σ(target − output)²/B."""
        if self.is_spatial(y, labels):
            t = self.pixel_targets(labels, y.shape[2:])
            return spatial.loss_grad(y, t, self.nb_targets, self.target_value, self.default_value)
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
            self.sets[set_name] = Scores(self.nb_targets, self.top_n, self.window, self.masked)
        return self.sets[set_name]

    def process(self, set_name, y, labels, ids=None, names=None):
        """Score one batch of outputs ``y`` against ``labels``; returns the top-1 estimates."""
        if self.is_spatial(y, labels):
            return self._process_spatial(set_name, y, labels, ids, names)
        targets = self.targets_of(labels)
        estimated, values = self.estimate(y)
        outputs = to_host(y).reshape(y.shape[0], -1)
        self.scores(set_name).add(targets, estimated, values, outputs, ids, names)
        return estimated[:, 0]

    def _process_spatial(self, set_name, y, labels, ids, names):
        v = to_host(y).astype(np.float32, copy=False)
        t = self.pixel_targets(labels, y.shape[2:])
        estimated, values = spatial.estimate(v, self.binary_threshold, self.top_n)
        self.last = (estimated, values, v)
        self.spatial_seen = True
        self.scores(set_name).add_spatial(t, estimated, self.mask_ok(t.shape), ids, names)
        return estimated[:, 0]

    def mask_ok(self, shape):
        """(N, H, W) True where the mask target's last estimate is ``MaskedLabel``; None
        without a mask."""
        if not self.masked:
            return None
        if self.mask_target.last is None:
            raise self._error(f"MaskLabelTarget {self.mask_target.name} has no estimates yet")
        mask = self.mask_target.last[0][:, 0]
        if mask.shape != tuple(shape):
            raise self._error(
                f"mask dims {mask.shape[1:]} from MaskLabelTarget {self.mask_target.name} do not "
                f"match this target's dims {tuple(shape[1:])}")
        return mask == self.keys.masked_label

    def log_images(self, run_dir, set_name, x, ids):
        """``<set>/<stem>_target.<fmt>`` and ``_estimated.<fmt>`` of the last batch (§5.8):
        per-pixel targets and estimates over the input; spatial targets only."""
        if not self.spatial_seen or self.last is None:
            return
        estimated, values, _ = self.last
        t = self._cached[2]
        x = to_host(x)
        shown = self.mask_ok(t.shape)
        k = self.keys
        folder = os.path.join(self.folder(run_dir), set_name)
        for i, sid in enumerate(ids):
            name = self.name_of(int(sid)) if self.name_of else ""
            ext = self.image_format or os.path.splitext(name)[1].lstrip(".") or "png"
            stem = os.path.join(folder, display.stem(name, sid))
            truth = display.colours(t[i], self.nb_targets, k.labels_hue_offset, k.no_display_label)
            est = display.colours(estimated[i, 0], self.nb_targets, k.labels_hue_offset,
                                  k.no_display_label,
                                  values[i, 0] if k.estimated_labels_value_display else None,
                                  None if shown is None else shown[i])
            display.write_rgb(f"{stem}_target.{ext}", display.overlay(x[i, 0], truth))
            display.write_rgb(f"{stem}_estimated.{ext}", display.overlay(x[i, 0], est))

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

    def matrix_names(self):
        """A name per row of the confusion matrix: the outputs, then "∅" (masked) if any."""
        return self.output_names() + (["∅"] if self.masked else [])

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
        if self.spatial_seen:  # the colours of the per-pixel images
            display.write_rgb(os.path.join(folder, "labels_legend.png"), display.legend(
                self.output_names(), self.keys.labels_hue_offset, self.keys.no_display_label))
        if not self.spatial_seen:  # per-stimulus lines: not for per-pixel scores
            atomic_write_text(os.path.join(folder, set_name, "classif.log"),
                              "".join(line + "\n" for line in s.classif))

    def __repr__(self):
        return f"TargetScore({self.name} on {self.cell_name}, {self.nb_outputs} outputs)"


def _where(err):
    return (err.file, err.line, err.section, err.key)


def _write_rows(path, rows):
    atomic_write_text(path, "".join(f"{step} {value:g}\n" for step, value in rows))
