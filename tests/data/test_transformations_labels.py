"""Label maps and ROIs through each transformation (spec addendum §4.4), on hand-made maps."""

import numpy as np
import pytest

from n2d2py.data.augment import Distortion, SliceExtraction
from n2d2py.data.rois import ROI
from n2d2py.data.transformations import (
    ChannelExtraction,
    Flip,
    Normalize,
    PadCrop,
    RangeAffine,
    Rescale,
)

RNG = np.random.default_rng(0)
# 4 rows x 6 columns; values name the position so every move is visible
MAP = np.arange(24, dtype=np.int32).reshape(4, 6)
IMG = (MAP * 10).astype(np.uint8)
BOX = [ROI(7, 1, 1, 3, 2)]


def test_rescale_nearest_label_map_and_rounded_roi_corners():
    img, labels, rois = Rescale(3, 2).apply_labelled(IMG, MAP, BOX, RNG)
    assert img.shape == (2, 3)
    np.testing.assert_array_equal(labels, [[0, 2, 4], [12, 14, 16]])  # OpenCV INTER_NEAREST
    assert rois == [ROI(7, 0, 0, 2, 1)]  # (1, 1, 3, 2) x (0.5, 0.5): rint 0.5->0, 1.5->2, 1->1
    up_img, up, up_rois = Rescale(12, 8).apply_labelled(IMG, MAP, BOX, RNG)
    np.testing.assert_array_equal(up, np.repeat(np.repeat(MAP, 2, 0), 2, 1))
    assert up_rois == [ROI(7, 2, 2, 6, 4)]


def test_rescale_keep_aspect_ratio_truncates_like_n2d2():
    # 6x4 into 5x5, fit: ratio 5/6, size (trunc(3.33), trunc(5)) = 3 rows x 5 columns
    t = Rescale(5, 5, keep_aspect_ratio=True)
    img, labels, rois = t.apply_labelled(IMG, MAP, BOX, RNG)
    assert img.shape == labels.shape == (3, 5)
    assert rois == [ROI(7, 1, 1, 2, 2)]  # 5/6: 0.83->1, 0.83->1, 2.5->2, 1.67->2
    cover = Rescale(5, 5, keep_aspect_ratio=True, resize_to_fit=False)
    assert cover.apply_labelled(IMG, MAP, BOX, RNG)[1].shape == (5, 7)  # ratio 1.25: 7.5 -> 7


def test_pad_crop_pads_labels_with_minus_one_and_shifts_rois():
    img, labels, rois = PadCrop(8, 5, border_type="ReplicateBorder").apply_labelled(
        IMG, MAP, BOX, RNG)
    # dh = 1: one row on top; dw = 2: one column each side
    assert img.shape == labels.shape == (5, 8)
    expect = np.full((5, 8), -1)
    expect[1:, 1:7] = MAP
    np.testing.assert_array_equal(labels, expect)
    assert img[0, 0] == IMG[0, 0]  # the image itself is padded with its BorderType
    assert rois == [ROI(7, 2, 2, 4, 3)]


def test_pad_crop_crops_labels_and_keeps_partly_outside_rois_unclipped():
    img, labels, rois = PadCrop(3, 3).apply_labelled(IMG, MAP, BOX + [ROI(2, 5, 0, 5, 0)],
                                                      RNG)
    # dw = -3: left = ceil(-1.5) = -1, right = -2; dh = -1: top = 0, bottom = -1
    np.testing.assert_array_equal(labels, MAP[0:3, 1:4])
    np.testing.assert_array_equal(img, IMG[0:3, 1:4])
    assert rois == [ROI(7, 0, 1, 2, 2)]  # the second one lands at x0 = 4 > 3: dropped


def test_flip_flips_map_and_rois_with_the_image():
    img, labels, rois = Flip(horizontal=True).apply_labelled(IMG, MAP, BOX, RNG)
    np.testing.assert_array_equal(labels, MAP[:, ::-1])
    np.testing.assert_array_equal(img, IMG[:, ::-1])
    assert rois == [ROI(7, 2, 1, 4, 2)]
    img, labels, rois = Flip(vertical=True).apply_labelled(IMG, MAP, BOX, RNG)
    np.testing.assert_array_equal(labels, MAP[::-1])
    assert rois == [ROI(7, 1, 1, 3, 2)]  # rows 1-2 of 4 map onto rows 1-2


def test_random_flip_draws_one_coin_for_image_map_and_rois():
    t = Flip(random_horizontal=True, random_vertical=True)
    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(40):
        img, labels, rois = t.apply_labelled(IMG, MAP, BOX, rng)
        np.testing.assert_array_equal(img, (labels * 10).astype(np.uint8))  # same flip
        h, v = labels[0, 0] in (5, 23), labels[0, 0] in (18, 23)
        assert rois == [BOX[0].flipped(6, 4, h, v)]
        seen.add((h, v))
    assert len(seen) == 4


def test_slice_extraction_crops_pads_minus_one_and_moves_rois():
    t = SliceExtraction(4, 3, offset=(3, 2), allow_padding=True, border_type="ConstantBorder")
    img, labels, rois = t.apply_labelled(IMG, MAP, BOX + [ROI(1, 0, 0, 0, 0)], RNG)
    expect = np.full((3, 4), -1)
    expect[:2, :3] = MAP[2:4, 3:6]
    np.testing.assert_array_equal(labels, expect)
    assert img[2, 0] == 0 and img[0, 0] == IMG[2, 3]
    assert rois == [ROI(7, -2, -1, 0, 0)]  # the 1x1 ROI at (0, 0) -> (-3, -2): dropped


def test_slice_extraction_random_offset_same_for_image_and_map():
    t = SliceExtraction(3, 2, random_offset=(True, True))
    rng = np.random.default_rng(1)
    for _ in range(10):
        img, labels, rois = t.apply_labelled(IMG, MAP, [ROI(1, 0, 0, 5, 3)], rng)
        np.testing.assert_array_equal(img, (labels * 10).astype(np.uint8))
        y, x = divmod(int(labels[0, 0]), 6)
        assert rois == [ROI(1, -x, -y, 5 - x, 3 - y)]


def test_slice_extraction_scaling_resizes_map_nearest():
    t = SliceExtraction(2, 2, random_scaling=True, scaling_range=(2.0, 2.0))
    img, labels, rois = t.apply_labelled(IMG, MAP, [ROI(1, 0, 0, 3, 3)], RNG)
    # a 4x4 slice at (0, 0) brought back to 2x2
    np.testing.assert_array_equal(labels, [[0, 2], [12, 14]])
    assert rois == [ROI(1, 0, 0, 2, 2)]  # corners x 0.5: 1.5 -> 2


def test_slice_extraction_rotation_fills_minus_one_and_keeps_labels_integral():
    t = SliceExtraction(6, 4, random_rotation=True, rotation_range=(45.0, 45.0))
    img, labels, rois = t.apply_labelled(IMG, MAP, [ROI(1, 2, 1, 3, 2)], RNG)
    assert labels.shape == (4, 6) and labels.dtype == np.int32
    assert (labels == -1).any() and set(np.unique(labels)) <= set(range(-1, 24))
    assert len(rois) == 1


def test_distortion_moves_map_with_the_image_and_marks_missing_pixels():
    t = Distortion(rotation=30.0)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    ramp = np.arange(256, dtype=np.int32).reshape(16, 16)  # value = 16 i + j, linear
    img, labels, rois = t.apply_labelled(ramp.astype(np.uint8), ramp, BOX, rng_a)
    assert rois == BOX  # N2D2 does not move ROIs in a distortion
    assert (labels == -1).any()
    # the same draws give the same image as apply() alone
    np.testing.assert_array_equal(img, t.apply(ramp.astype(np.uint8), rng_b))
    # bilinear interpolation of a linear ramp is exact, so the nearest of the four source
    # pixels differs from it by at most half a row and half a column (16/2 + 1/2, + 1 for
    # the truncation of the image)
    inside = labels >= 0
    assert inside.sum() > 100
    assert np.abs(img[inside].astype(int) - labels[inside]).max() <= 9
    zero = Distortion().apply_labelled(IMG, MAP, BOX, RNG)
    np.testing.assert_array_equal(zero[1], MAP)
    keep = Distortion(rotation=30.0, ignore_missing_data=False)
    out = keep.apply_labelled(ramp.astype(np.uint8), ramp, BOX, np.random.default_rng(3))
    assert (out[1] >= 0).all()


@pytest.mark.parametrize("t", [
    ChannelExtraction("Gray"),
    RangeAffine("Divides", 255.0, "Minus", 0.5),
    Normalize(),
], ids=lambda t: type(t).__name__)
def test_photometric_transformations_leave_labels_alone(t):
    colour = np.repeat(IMG[:, :, None], 3, axis=2)
    img, labels, rois = t.apply_labelled(colour, MAP, BOX, RNG)
    assert labels is MAP and rois is BOX
    assert img.shape[:2] == (4, 6)


@pytest.mark.parametrize("t", [
    Rescale(3, 2), PadCrop(8, 8), Flip(horizontal=True), SliceExtraction(2, 2),
    Distortion(rotation=10.0),
], ids=lambda t: type(t).__name__)
def test_a_single_label_is_never_resampled(t):
    one = np.full((1, 1), 4, np.int32)
    _, labels, _ = t.apply_labelled(IMG, one, [], np.random.default_rng(0))
    assert labels.shape == (1, 1) and labels[0, 0] == 4


@pytest.mark.parametrize("t", [
    Rescale(3, 2), PadCrop(8, 8), Flip(horizontal=True), SliceExtraction(8, 6, allow_padding=True),
    SliceExtraction(6, 4, random_rotation=True, rotation_range=(30.0, 30.0)),
    Distortion(rotation=10.0),
], ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("dtype", [np.int8, np.int16])
def test_compact_cached_maps_keep_their_type_and_values(t, dtype):
    """The cache stores maps as int8/int16; on-the-fly steps must give the int32 result."""
    wide = t.apply_labelled(IMG, MAP, BOX, np.random.default_rng(4))[1]
    small = t.apply_labelled(IMG, MAP.astype(dtype), BOX, np.random.default_rng(4))[1]
    assert small.dtype == dtype
    np.testing.assert_array_equal(small, wide)
