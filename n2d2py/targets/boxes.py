"""Boxes from label maps and their matching (spec §7.2–7.6, N2D2's LSL_Box, ROI filters and
TargetROIs): connected components into boxes, size filters, merging, scaling to the label map,
IoU matching against ground truth and the box-level confusion.

A box here is an ``ROI`` (``n2d2py.data.rois``) with inclusive corners: ``label`` is its class,
(x0, y0)-(x1, y1) its columns and rows.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from n2d2py.data.rois import ROI


@dataclass
class BoxRules:
    """TargetROIs' keys that shape boxes (spec §7.1), in the pixels of the map boxed."""

    min_size: int = 0
    min_overlap: float = 0.5
    min_width: int = 0
    min_height: int = 0
    min_aspect_ratio: float = 0.0
    max_aspect_ratio: float = 0.0
    merge_h: int = 1
    merge_v: int = 1


def components(label_map, min_size=0):
    """One box per 8-connected component of each non-zero value of ``label_map`` (H, W), values
    in increasing order (0 is background and never boxed). ``min_size`` > 0 drops a box with
    fewer pixels of its value in its rows [y0, y1) × columns [x0, x1) (N2D2 leaves the last row
    and column out of that count)."""
    label_map = np.asarray(label_map)
    boxes = []
    for value in np.unique(label_map):
        if value == 0:
            continue
        mask = (label_map == value).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for left, top, width, height, _ in stats[1:count]:
            box = ROI(int(value), int(left), int(top), int(left + width - 1), int(top + height - 1))
            if min_size > 0 and mask[box.y0:box.y1, box.x0:box.x1].sum() < min_size:
                continue
            boxes.append(box)
    return boxes


def filter_size(boxes, rules):
    """Drop boxes narrower/lower than the minimum or outside the aspect-ratio range (w/h);
    nothing is filtered unless one of the four rules is set."""
    if not (rules.min_width or rules.min_height or rules.min_aspect_ratio or rules.max_aspect_ratio):
        return list(boxes)
    kept = []
    for b in boxes:
        ratio = b.width / b.height
        if (b.height < rules.min_height or b.width < rules.min_width
                or (rules.min_aspect_ratio > 0 and ratio < rules.min_aspect_ratio)
                or (rules.max_aspect_ratio > 0 and ratio > rules.max_aspect_ratio)):
            continue
        kept.append(b)
    return kept


def merge(boxes, max_h=1, max_v=1):
    """Merge boxes of one class into their union until none is left to merge: when their rows
    overlap and the horizontal gap max(x0) − min(x1) < ``max_h``, or their columns overlap and
    the vertical gap < ``max_v`` (N2D2's ``filterSeparability``, same visiting order)."""
    boxes = list(boxes)
    while True:
        before = len(boxes)
        for a in range(len(boxes) - 1, -1, -1):
            for b in range(a - 1, -1, -1):
                p, q = boxes[a], boxes[b]
                if p.label != q.label:
                    continue
                dx = max(p.x0, q.x0) - min(p.x1, q.x1)
                dy = max(p.y0, q.y0) - min(p.y1, q.y1)
                if (dy <= 0 and dx < max_h) or (dx <= 0 and dy < max_v):
                    boxes[b] = ROI(q.label, min(p.x0, q.x0), min(p.y0, q.y0),
                                   max(p.x1, q.x1), max(p.y1, q.y1))
                    del boxes[a]
                    break
        if len(boxes) == before:
            return boxes


def boxes_of(label_map, rules):
    """components → size filter → merge, as TargetROIs does on a map."""
    return merge(filter_size(components(label_map, rules.min_size), rules),
                 rules.merge_h, rules.merge_v)


def _round(x):
    """N2D2's Utils::round: half away from zero."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def to_label_frame(box, rx, ry):
    """An output-map box in label-map pixels: x0 = round(rx·x0), x1 = round(rx·(x1 + 1)) − 1
    (inclusive), the same for rows (spec §7.2 step 6)."""
    return ROI(box.label, _round(rx * box.x0), _round(ry * box.y0),
               _round(rx * (box.x1 + 1)) - 1, _round(ry * (box.y1 + 1)) - 1)


def to_output_frame(box, rx, ry):
    """(x0, y0, x1, y1) with x1, y1 exclusive: a label-map box back on the output map (§7.4)."""
    return (_round(box.x0 / rx), _round(box.y0 / ry),
            _round((box.x1 + 1) / rx), _round((box.y1 + 1) / ry))


def iou(gt, box, width, height):
    """Intersection over union, the ground truth clipped to the ``width``×``height`` map first;
    0 when they do not intersect."""
    g = gt.clipped(width, height)
    if g is None:
        return 0.0
    left, right = max(g.x0, box.x0), min(g.x1, box.x1) + 1
    top, bottom = max(g.y0, box.y0), min(g.y1, box.y1) + 1
    if left >= right or top >= bottom:
        return 0.0
    inter = (right - left) * (bottom - top)
    return inter / (g.area + box.area - inter)


@dataclass
class Detection:
    """A detected box (label-map pixels), its class score, its match and whether it repeats an
    earlier (higher-scored) box's match."""

    box: ROI
    score: float
    match: ROI = None
    overlap: float = 0.0
    duplicate: bool = False
    top_n: list = field(default_factory=list)  # (class, score) after the first, ScoreTopN > 1


def match(detections, truths, min_overlap, width, height):
    """Give each detection (sorted by score, best first) its best ground truth with IoU >
    ``min_overlap``; a truth claimed by a better detection makes the later ones duplicates.
    Returns the truths no detection claimed."""
    for d in detections:
        for gt in truths:
            overlap = iou(gt, d.box, width, height)
            if overlap > min_overlap and (d.match is None or overlap > d.overlap):
                d.match, d.overlap = gt, overlap
    left = list(truths)
    for d in detections:
        if d.match is None:
            continue
        claimed = next((i for i, gt in enumerate(left) if gt is d.match), None)
        d.duplicate = claimed is None
        if claimed is not None:
            del left[claimed]
    return left


def count(matrix, detections, missed, target_of):
    """The box-level confusion (spec §7.6): a match → (target of its truth, class); a box
    without match → (0, class); a missed truth → (its target, 0); duplicates count nothing."""
    for d in detections:
        if d.match is None:
            matrix[0, d.box.label] += 1
        elif not d.duplicate:
            t = target_of(d.match.label)
            if t >= 0:
                matrix[t, d.box.label] += 1
    for gt in missed:
        t = target_of(gt.label)
        if t >= 0:
            matrix[t, 0] += 1


def truths_from_map(label_map, rules, target_of, weak_target=-2):
    """Ground-truth boxes from the components of a raw label map (§7.3, GenerateLabelsROIs):
    each box takes the most frequent label inside it (with ``weak_target`` ≥ −1, the next one
    when the first maps to it); boxes whose label is < 0 are dropped."""
    truths = []
    for b in boxes_of(label_map, rules):
        values, counts = np.unique(label_map[b.y0:b.y1 + 1, b.x0:b.x1 + 1], return_counts=True)
        order = np.argsort(-counts, kind="stable")  # ties: the smallest label (map order)
        label = int(values[order[0]])
        if weak_target >= -1 and target_of(label) == weak_target and len(order) > 1:
            label = int(values[order[1]])
        if label >= 0:
            truths.append(b.with_label(label))
    return truths
