"""Boxes (spec §7.2–7.6): connected components on hand-made maps, filters, merging, frames,
IoU matching with duplicates and misses, the box-level confusion."""

import numpy as np
import pytest

from n2d2py.data.rois import ROI
from n2d2py.targets import boxes
from n2d2py.targets.boxes import BoxRules, Detection


def test_components_are_8_connected_per_value_in_increasing_order():
    m = np.array([[1, 0, 0, 0, 2],
                  [0, 1, 0, 0, 2],
                  [0, 0, 0, 0, 0],
                  [1, 1, 0, 2, 0]])
    got = boxes.components(m)
    assert got == [ROI(1, 0, 0, 1, 1), ROI(1, 0, 3, 1, 3), ROI(2, 4, 0, 4, 1), ROI(2, 3, 3, 3, 3)]


def test_min_size_counts_without_the_last_row_and_column():
    m = np.zeros((5, 5), int)
    m[0:3, 0:3] = 1  # 3×3 component: N2D2 counts rows/columns [0, 2) → 4 pixels
    assert boxes.components(m, min_size=4) == [ROI(1, 0, 0, 2, 2)]
    assert boxes.components(m, min_size=5) == []


def test_size_and_aspect_ratio_filters():
    b = [ROI(1, 0, 0, 4, 4), ROI(1, 0, 0, 9, 3), ROI(1, 0, 0, 1, 1)]  # 5×5, 10×4, 2×2
    assert boxes.filter_size(b, BoxRules()) == b
    assert boxes.filter_size(b, BoxRules(min_width=3, min_height=3)) == b[:2]
    assert boxes.filter_size(b, BoxRules(min_aspect_ratio=0.5, max_aspect_ratio=1.5)) == [b[0], b[2]]


def test_merge_overlapping_not_touching_with_the_default_gap():
    a, b = ROI(1, 0, 0, 2, 2), ROI(1, 2, 1, 4, 3)  # overlap in rows and columns
    assert boxes.merge([a, b]) == [ROI(1, 0, 0, 4, 3)]
    c = ROI(1, 3, 0, 5, 2)  # touching a (gap max(x0) - min(x1) = 1): kept apart
    assert boxes.merge([a, c]) == [a, c]
    assert boxes.merge([a, c], max_h=2) == [ROI(1, 0, 0, 5, 2)]
    other = ROI(2, 1, 1, 3, 3)  # other class: never merged
    assert boxes.merge([a, other]) == [a, other]


def test_frames_round_trip():
    box = ROI(1, 2, 1, 4, 3)  # output pixels, inclusive
    big = boxes.to_label_frame(box, 8, 8)
    assert big == ROI(1, 16, 8, 39, 31)
    assert boxes.to_output_frame(big, 8, 8) == (2, 1, 5, 4)
    assert boxes.to_label_frame(ROI(1, 0, 0, 0, 0), 2.5, 2.5) == ROI(1, 0, 0, 2, 2)  # round half up


def test_iou_clips_the_truth_to_the_map():
    gt = ROI(5, -10, 0, 9, 9)  # 20×10, half outside: clipped to 10×10
    assert boxes.iou(gt, ROI(1, 0, 0, 9, 9), 100, 100) == 1.0
    assert boxes.iou(ROI(5, 0, 0, 9, 9), ROI(1, 5, 0, 14, 9), 100, 100) == pytest.approx(50 / 150)
    assert boxes.iou(ROI(5, 0, 0, 9, 9), ROI(1, 10, 0, 19, 9), 100, 100) == 0.0


def test_matching_duplicates_misses_and_confusion():
    truths = [ROI(3, 0, 0, 9, 9), ROI(4, 50, 50, 59, 59)]
    best = Detection(ROI(1, 0, 0, 9, 9), 9.0)
    dup = Detection(ROI(0, 1, 1, 9, 9), 5.0)
    lone = Detection(ROI(1, 80, 80, 89, 89), 2.0)
    # IoU exactly at MinOverlap is not a match (strict >)
    edge = Detection(ROI(1, 0, 0, 4, 9), 1.0)  # IoU 0.5 with the first truth
    missed = boxes.match([best, dup, lone, edge], truths, 0.5, 100, 100)
    assert best.match is truths[0] and not best.duplicate
    assert dup.match is truths[0] and dup.duplicate
    assert lone.match is None and edge.match is None
    assert missed == [truths[1]]
    m = np.zeros((2, 2), int)
    boxes.count(m, [best, dup, lone, edge], missed, lambda label: {3: 1, 4: 1}.get(label, -1))
    # best → (1, 1); lone and edge are false positives → (0, 1); the missed truth → (1, 0)
    np.testing.assert_array_equal(m, [[0, 2], [1, 1]])


def test_truths_from_a_raw_label_map():
    m = np.zeros((8, 8), int)
    m[0:5, 0:5] = 2  # a ring of 2 around a 3×3 block of 3: the ring's box holds 16 twos
    m[1:4, 1:4] = 3
    m[6:8, 5:8] = -1  # padding components are boxed but dropped (label < 0)
    got = boxes.truths_from_map(m, BoxRules(), lambda l: l)
    assert got == [ROI(2, 0, 0, 4, 4), ROI(3, 1, 1, 3, 3)]
    # with WeakTarget, a box whose first label maps to it takes the runner-up
    got = boxes.truths_from_map(m, BoxRules(), lambda l: l, weak_target=2)
    assert got[0] == ROI(3, 0, 0, 4, 4)
