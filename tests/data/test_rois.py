"""ROIs (inclusive corners) and the label maps N2D2 draws from them (spec addendum §4.2)."""

import numpy as np
import pytest

from n2d2py.data.rois import ROI, LabelMaps, from_corners, label_map, pad_crop_rois


def test_roi_geometry_helpers():
    r = ROI(3, 2, 1, 5, 3)
    assert (r.width, r.height, r.area) == (4, 3, 12)
    assert r.shifted(-2, 4) == ROI(3, 0, 5, 3, 7)
    assert r.flipped(10, 8, True, False) == ROI(3, 4, 1, 7, 3)
    assert r.flipped(10, 8, False, True) == ROI(3, 2, 4, 5, 6)
    assert r.flipped(10, 8, True, True).flipped(10, 8, True, True) == r
    assert r.clipped(4, 2) == ROI(3, 2, 1, 3, 1)
    assert r.clipped(2, 8) is None
    assert r.with_label(7).label == 7


def test_scaling_rounds_each_corner_ties_to_even():
    # cv::Point *= double rounds (cvRound: half to even); 5 * 0.5 = 2.5 -> 2, 3 * 0.5 -> 2
    assert ROI(1, 5, 3, 9, 7).scaled(0.5, 0.5) == ROI(1, 2, 2, 4, 4)
    assert ROI(1, 1, 1, 2, 2).scaled(1.6, 3.0) == ROI(1, 2, 3, 3, 6)


def test_rotation_about_centre_gives_the_rotated_corners_box():
    r = ROI(1, 2, 4, 5, 5)  # 4 wide, 2 high
    # 90 degrees clockwise on screen about (4, 4): (x, y) -> (4 - (y - 4), 4 + (x - 4))
    assert r.rotated(4, 4, 90) == ROI(1, 3, 2, 4, 5)
    assert r.rotated(4, 4, 0) == r


def test_from_corners_truncates_and_treats_x1_y1_as_exclusive():
    assert from_corners(2, 10.7, 5.2, 20.9, 15.0) == ROI(2, 10, 5, 19, 13)  # w=10, h=int(9.8)=9
    assert from_corners(2, 10, 5, 10, 15) is None  # zero width: an empty ROI
    assert from_corners(2, 10, 5, 8, 15) is None


def test_pad_crop_rois_moves_and_drops_only_rois_entirely_outside():
    rois = [ROI(1, 0, 0, 3, 3), ROI(2, 8, 7, 9, 9), ROI(3, -5, 2, -2, 4)]
    out = pad_crop_rois(rois, 2, 1, 6, 6)
    # first: shifted, kept although it now starts at -2 (not clipped); second: x0 = 6 is not
    # > width 6 (nor y0 = 6 > height 6), kept; third: x1 + 1 = -3 < 0, dropped
    assert out == [ROI(1, -2, -1, 1, 2), ROI(2, 6, 6, 7, 8)]
    assert pad_crop_rois([ROI(1, 7, 0, 8, 1)], 0, 0, 6, 6) == []  # x0 = 7 > 6


def test_label_map_fill_overwrite_and_clip():
    rois = [ROI(1, 1, 1, 3, 2), ROI(2, 3, 2, 6, 4), ROI(3, 5, 0, 9, 0)]
    labels, warnings = label_map(5, 7, 0, rois)
    expect = np.array([
        [0, 0, 0, 0, 0, 3, 3],
        [0, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 2, 2, 2, 2],
        [0, 0, 0, 2, 2, 2, 2],
        [0, 0, 0, 2, 2, 2, 2],
    ])
    assert labels.dtype == np.int32 and warnings == []
    np.testing.assert_array_equal(labels, expect)


def test_label_map_margin_marks_a_band_of_minus_one_outside_the_box():
    labels, _ = label_map(7, 8, 0, [ROI(5, 3, 2, 4, 4)], margin=1, default=0)
    expect = np.array([
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, -1, -1, 0, 0, 0],
        [0, 0, -1, 5, 5, -1, 0, 0],
        [0, 0, -1, 5, 5, -1, 0, 0],
        [0, 0, -1, 5, 5, -1, 0, 0],
        [0, 0, 0, -1, -1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
    ])
    np.testing.assert_array_equal(labels, expect)
    # a margin never erases an earlier ROI (it is only drawn on default pixels)
    labels, _ = label_map(7, 8, 0, [ROI(7, 5, 2, 5, 4), ROI(5, 3, 2, 4, 4)], margin=1, default=0)
    assert (labels[2:5, 5] == 7).all()


def test_label_map_skips_rois_outside_with_a_warning_and_keeps_the_fill():
    labels, warnings = label_map(4, 4, 9, [ROI(1, 10, 10, 12, 12), ROI(1, 2, 2, 1, 1)])
    assert (labels == 9).all()
    assert len(warnings) == 1 and "ROI #0" in warnings[0] and "outside image area" in warnings[0]


def test_label_maps_container():
    maps = LabelMaps(np.zeros((3, 2, 2)), [[ROI(1, 0, 0, 0, 0)], [], []])
    assert len(maps) == 3 and maps.maps.dtype == np.int32
    sub = maps[1:]
    assert len(sub) == 2 and sub.rois == [[], []]
    assert LabelMaps(np.zeros((2, 1, 1))).rois == [[], []]
    with pytest.raises(ValueError):
        LabelMaps(np.zeros((2, 1, 1)), [[]])
