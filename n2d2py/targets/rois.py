"""TargetROIs (spec §7): boxes from a layer's estimated label map, their class and score, and
their matching against the ground-truth ROIs, scored as a box-level confusion matrix.

It gives no gradient (it sits on post-processing such as a Threshold cell) and no success rate:
its files are ``ConfusionMatrix_<set>.dat``, ``ConfusionMatrix_<set>_score.dat`` (per-class
recall, precision, …) and ``<set>.log``, one line per detected box:
``"<stimulus>" x y width height <class name> <score> <1 matched | 0>`` (N2D2 writes one such
file per stimulus and then concatenates them; only the concatenation is written here).
"""

import os

import cv2
import numpy as np

from n2d2py.backend import to_host
from n2d2py.data.rois import LabelMaps
from n2d2py.registry import TARGETS
from n2d2py.targets import boxes, display, spatial
from n2d2py.targets.metrics import Scores, confusion_text, score_text
from n2d2py.targets.score import TargetScore
from n2d2py.atomic import atomic_write_text


class BoxScores(Scores):
    """The box-level confusion of a set, and the detections behind it (for ``<set>.log``)."""

    def clear(self):
        super().clear()
        self.detections = []  # (id, name, [Detection]) per stimulus
        self.truths = 0  # ground-truth boxes with a target ≥ 0
        self.found = 0  # of them, claimed by a detection
        self.right_class = 0  # of those, with the detection's class = the truth's target

    def box_precision(self):
        """Detections that claimed a truth / detections (duplicates count as wrong)."""
        boxes_ = sum(len(d) for _, _, d in self.detections)
        return self.found / boxes_ if boxes_ else 0.0

    def box_recall(self):
        return self.found / self.truths if self.truths else 0.0

    def label_accuracy(self):
        """Among the truths found, the fraction whose box got the truth's class."""
        return self.right_class / self.found if self.found else 0.0


@TARGETS.register("TargetROIs")
class TargetROIs(TargetScore):
    """Connected components of the estimated map → boxes; class from this target or from
    ``ROIsLabelTarget``; matched to ground truth by IoU > ``MinOverlap``."""

    rules = boxes.BoxRules()
    generate_labels_rois = True
    score_top_n = 1
    label_target_name = ""

    @classmethod
    def from_section(cls, sec, cell_name, nb_outputs, label_names):
        target = super().from_section(sec, cell_name, nb_outputs, label_names)
        target.rules = boxes.BoxRules(
            min_size=sec.get_uint("MinSize", 0),
            min_overlap=sec.get_float("MinOverlap", 0.5),
            min_width=sec.get_uint("FilterMinWidth", 0),
            min_height=sec.get_uint("FilterMinHeight", 0),
            min_aspect_ratio=sec.get_float("FilterMinAspectRatio", 0.0),
            max_aspect_ratio=sec.get_float("FilterMaxAspectRatio", 0.0),
            merge_h=sec.get_uint("MergeMaxHDist", 1),
            merge_v=sec.get_uint("MergeMaxVDist", 1),
        )
        target.generate_labels_rois = sec.get_bool("GenerateLabelsROIs", True)
        target.score_top_n = sec.get_uint("ScoreTopN", 1)
        target.label_target_name = sec.get_str("ROIsLabelTarget", "")
        return target

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_target = None  # the TargetScore named by ROIsLabelTarget, once linked

    def links(self):
        extra = [("ROIsLabelTarget", self.label_target_name)] if self.label_target_name else []
        return super().links() + extra

    def link(self, key, target):
        super().link(key, target)
        if key == "ROIsLabelTarget":
            self.label_target = target

    @property
    def decider(self):
        """The target whose outputs decide a box's class: ROIsLabelTarget, or this one."""
        return self.label_target or self

    @property
    def nb_classes(self):
        return self.decider.nb_targets

    def scores(self, set_name):
        if set_name not in self.sets:
            self.sets[set_name] = BoxScores(self.nb_classes, 1, self.window)
        return self.sets[set_name]

    def loss_grad(self, y, labels):
        return None, 0.0  # scoring only: nothing flows back from a TargetROIs

    # -- one batch ------------------------------------------------------------------------
    def process(self, set_name, y, labels, ids=None, names=None):
        v = to_host(y).astype(np.float32, copy=False)
        estimated, values = spatial.estimate(v, self.binary_threshold, 1)
        self.last = (estimated, values, v)
        n, _, out_h, out_w = v.shape
        label_h, label_w = labels.maps.shape[1:] if isinstance(labels, LabelMaps) else (1, 1)
        rx, ry = label_w / out_w, label_h / out_h
        scores = self.scores(set_name)
        found = scores.detections
        ids = list(ids) if ids is not None else list(range(scores.total, scores.total + n))
        self._last_truths = []  # per stimulus of the batch, for the images
        for i in range(n):
            detections = []
            for box in boxes.boxes_of(estimated[i, 0], self.rules):
                detection = self._classify(boxes.to_label_frame(box, rx, ry), i, label_w, label_h)
                detections.append(detection)
            detections.sort(key=lambda d: -d.score)  # stable: equal scores keep map order
            truths = self._count(scores.matrix, detections, labels, i, label_w, label_h)
            self._last_truths.append(truths or [])
            scores.total += 1
            scores.truths += sum(1 for gt in truths or () if self.output_of(gt.label) >= 0)
            for d in detections:
                if d.match is not None and not d.duplicate and self.output_of(d.match.label) >= 0:
                    scores.found += 1
                    scores.right_class += int(d.box.label == self.output_of(d.match.label))
            name = names[i] if names is not None else (self.name_of(int(ids[i])) if self.name_of
                                                        else "")
            found.append((ids[i], name, detections))
        return estimated[:, 0]

    def _classify(self, box, i, label_w, label_h):
        """The box's class and score from the deciding target's outputs (spec §7.4)."""
        decider = self.decider
        if decider.last is None:
            raise self._error(f"ROIsLabelTarget {decider.name} has no per-pixel estimates (its "
                              f"layer {decider.cell_name} gives 1×1 outputs)")
        _, _, v = decider.last
        rx, ry = label_w / v.shape[3], label_h / v.shape[2]
        x0, y0, x1, y1 = boxes.to_output_frame(box, rx, ry)
        if x1 <= x0 or y1 <= y0:
            raise self._error(f"a detected box {box} is empty on {decider.cell_name}'s map")
        if x1 > v.shape[3] or y1 > v.shape[2]:
            raise self._error(f"a detected box {box} falls outside {decider.cell_name}'s map")
        window = v[i, :, y0:y1, x0:x1].astype(np.float64)
        if window.shape[0] == 1:  # one output: class 0 gets 1 − v, class 1 gets v
            window = np.concatenate([1.0 - window, window])
        ok = decider.mask_ok(v[:, 0].shape)
        if ok is not None:
            weight = ok[i, y0:y1, x0:x1].astype(np.float64)
            if decider.keys.masked_label_value:
                weight = weight * decider.mask_target.last[1][i, 0, y0:y1, x0:x1]
            window = window * weight[None]
        sums = window.reshape(window.shape[0], -1).sum(axis=1)
        order = np.argsort(-sums, kind="stable")
        top = [(int(c), float(sums[c])) for c in order[: self.score_top_n]]
        return boxes.Detection(box.with_label(top[0][0]), top[0][1], top_n=top[1:])

    def _count(self, matrix, detections, labels, i, label_w, label_h):
        """Match and count (spec §7.5–7.6); a whole-stimulus label counts every box."""
        if not isinstance(labels, LabelMaps):
            t = int(self.targets_of(np.asarray(labels)[i : i + 1])[0])
            if t >= 0:
                for d in detections:
                    matrix[t, d.box.label] += 1
            return
        truths = list(labels.rois[i])
        if not truths and self.generate_labels_rois:
            truths = boxes.truths_from_map(labels.maps[i], self.rules, self.output_of,
                                           self.keys.weak_target)
        missed = boxes.match(detections, truths, self.rules.min_overlap, label_w, label_h)
        boxes.count(matrix, detections, missed, self.output_of)
        return truths

    def log_images(self, run_dir, set_name, x, ids):
        """``<set>/<stem>.<fmt>`` of the last batch (§7.7): the input in grey with the true
        ROIs in blue and the boxes coloured by their match, labelled with their class."""
        x = to_host(x)
        names = self.class_names()
        batch = self.scores(set_name).detections[-len(ids):]
        colour = {None: (255, 0, 0), "right": (0, 255, 0), "duplicate": (0, 127, 0),
                  "wrong": (0, 255, 255), "none": (0, 0, 255)}  # BGR
        for i, (sid, name, detections) in enumerate(batch):
            img = display.overlay(x[i, 0], np.zeros((1, 1, 3), np.uint8)) * (4 / 3)
            img = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
            for gt in self._last_truths[i]:
                cv2.rectangle(img, (gt.x0, gt.y0), (gt.x1, gt.y1), colour[None], 1)
            for d in detections:
                kind = ("none" if d.match is None else "duplicate" if d.duplicate else
                        "right" if d.box.label == self.output_of(d.match.label) else "wrong")
                b = d.box
                cv2.rectangle(img, (b.x0, b.y0), (b.x1, b.y1), colour[kind], 1)
                cv2.putText(img, f"{b.label} {names[b.label]}", (b.x0, max(b.y0 - 2, 8)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour[kind], 1)
            ext = self.image_format or os.path.splitext(name)[1].lstrip(".") or "png"
            path = os.path.join(self.folder(run_dir), set_name, f"{display.stem(name, sid)}.{ext}")
            display.write_rgb(path, cv2.cvtColor(img, cv2.COLOR_BGR2RGB))

    # -- reports and files ----------------------------------------------------------------
    def box_rates(self, set_name):
        """(precision, recall) per class ≥ 1 of the box-level matrix (class 0 is "nothing")."""
        m = self.scores(set_name).matrix.astype(np.float64)
        tp = np.diag(m)
        precision = np.divide(tp, m.sum(axis=0), out=np.zeros_like(tp), where=m.sum(axis=0) > 0)
        recall = np.divide(tp, m.sum(axis=1), out=np.zeros_like(tp), where=m.sum(axis=1) > 0)
        return precision, recall

    def summary_lines(self, set_name):
        """What the test prints for this target: boxes found and per-class precision/recall."""
        s = self.scores(set_name)
        nb_boxes = sum(len(d) for _, _, d in s.detections)
        lines = [f"    {nb_boxes} boxes on {len(s.detections)} stimuli; {s.found} of {s.truths} "
                 f"ground-truth ROIs found (IoU > {self.rules.min_overlap:g}): box precision "
                 f"{100 * s.box_precision():.2f}% / recall {100 * s.box_recall():.2f}% / "
                 f"class of the found boxes right {100 * s.label_accuracy():.2f}%",
                 "    from the box confusion matrix (row/column 0 also counts misses and false "
                 "boxes, as N2D2's):"]
        precision, recall = self.box_rates(set_name)
        names = self.class_names()
        for c in range(len(precision)):
            lines.append(f"    class {c} \"{names[c]}\": precision {100 * precision[c]:.2f}% / "
                         f"recall {100 * recall[c]:.2f}%")
        return lines

    def class_names(self):
        names = self.output_names()
        return names + [str(c) for c in range(len(names), self.nb_classes)]

    def matrix_names(self):
        return self.class_names()

    def record_success(self, run_dir, set_name, step, value=None):
        """TargetROIs has no success rate (N2D2 writes no Success_<set>.dat for it)."""

    def write_labels_mapping(self, run_dir):
        super().write_labels_mapping(run_dir)
        if self.label_target is not None:
            atomic_write_text(os.path.join(self.folder(run_dir), "target_rois_label.dat"),
                              self.label_target.name + "\n")

    def write_logs(self, run_dir, set_name):
        s = self.scores(set_name)
        folder = self.folder(run_dir)
        names = self.class_names()
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}.dat"),
                          confusion_text(s.matrix))
        atomic_write_text(os.path.join(folder, f"ConfusionMatrix_{set_name}_score.dat"),
                          score_text(s.matrix, names))
        lines = []
        for sid, name, detections in s.detections:
            stimulus = name or f"{sid:010d}"
            for d in detections:
                b = d.box
                lines.append(f'"{stimulus}" {b.x0} {b.y0} {b.width} {b.height} '
                             f'{names[b.label]} {d.score:g} {int(d.match is not None)}')
        atomic_write_text(os.path.join(folder, f"{set_name}.log"), "".join(l + "\n" for l in lines))

    def __repr__(self):
        return f"TargetROIs({self.name} on {self.cell_name})"


TARGETS.refuse("TargetBBox", "Faster R-CNN box regression target")
TARGETS.refuse("TargetRP", "Faster R-CNN region proposal target")
