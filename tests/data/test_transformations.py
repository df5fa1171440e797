"""Each transformation on small arrays against hand-computed results."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n2d2py.data.transformations import (
    APPLY_TO,
    ChannelExtraction,
    Flip,
    Normalize,
    PadCrop,
    RangeAffine,
    Rescale,
    applies,
)
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import TRANSFORMATIONS

RNG = np.random.default_rng(0)


def from_ini(body):
    doc = parse_text(f"[sp.Transformation]\n{body}\n", "t.ini")
    sec = Section(doc, ["sp.Transformation"])
    return TRANSFORMATIONS.get(sec.get_str("Type"), where=sec.prop("Type")).from_section(sec)


# -- Rescale ----------------------------------------------------------------------------------


def test_rescale_sizes_and_layout():
    t = Rescale(width=3, height=2)
    assert t.apply(np.zeros((4, 6), np.uint8), RNG).shape == (2, 3)
    assert t.apply(np.zeros((4, 6, 1), np.uint8), RNG).shape == (2, 3, 1)
    out = t.apply(np.zeros((4, 6, 3), np.float32), RNG)
    assert out.shape == (2, 3, 3) and out.dtype == np.float32
    assert t.apply(np.zeros((4, 6), np.uint8), RNG).dtype == np.uint8


def test_rescale_keep_aspect_ratio():
    img = np.zeros((10, 20), np.uint8)
    assert Rescale(8, 8, keep_aspect_ratio=True).apply(img, RNG).shape == (4, 8)
    cover = Rescale(8, 8, keep_aspect_ratio=True, resize_to_fit=False)
    assert cover.apply(img, RNG).shape == (8, 16)


def test_rescale_is_bilinear_with_half_pixel_centres():
    img = np.array([[0, 0], [100, 100]], np.uint8)
    out = Rescale(2, 4).apply(img, RNG)
    assert out[:, 0].tolist() == [0, 25, 75, 100]
    batch = Rescale(2, 4).apply_batch(np.stack([img, img]), RNG)
    assert batch.shape == (2, 4, 2) and np.array_equal(batch[1], out)


def test_rescale_from_ini():
    t = from_ini("Type=RescaleTransformation\nWidth=32\nHeight=24\nKeepAspectRatio=1")
    assert (t.width, t.height, t.keep_aspect_ratio, t.resize_to_fit) == (32, 24, True, True)
    with pytest.raises(N2D2PyError, match="required key is missing"):
        from_ini("Type=RescaleTransformation\nWidth=32")
    with pytest.raises(N2D2PyError, match="positive"):
        from_ini("Type=RescaleTransformation\nWidth=0\nHeight=3")


# -- PadCrop ----------------------------------------------------------------------------------


def test_padcrop_pads_centred_top_left_ceil():
    img = np.array([[1, 2], [3, 4]], np.uint8)
    out = PadCrop(5, 5, "ConstantBorder", [9]).apply(img, RNG)
    assert out.shape == (5, 5)
    assert np.array_equal(out[2:4, 2:4], img)  # dh = dw = 3: top = left = ceil(1.5) = 2
    assert (out[:2] == 9).all() and (out[4] == 9).all() and (out[:, :2] == 9).all()


def test_padcrop_crops_centred():
    img = np.arange(25, dtype=np.uint8).reshape(5, 5)
    out = PadCrop(2, 2).apply(img, RNG)  # dh = -3: one row off the top, two off the bottom
    assert np.array_equal(out, img[1:3, 1:3])
    out = PadCrop(3, 5).apply(img, RNG)  # crop width only
    assert np.array_equal(out, img[:, 1:4])


def test_padcrop_mixed_pad_and_crop():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = PadCrop(2, 5, "ConstantBorder", [0]).apply(img, RNG)
    assert out.shape == (5, 2)
    assert np.array_equal(out[1:4], img[:, 1:3]) and (out[0] == 0).all() and (out[4] == 0).all()


@pytest.mark.parametrize(
    "border, row",
    [
        ("MinusOneReflectBorder", [3, 2, 1, 2, 3, 2, 1]),
        ("ReflectBorder", [2, 1, 1, 2, 3, 3, 2]),
        ("ReplicateBorder", [1, 1, 1, 2, 3, 3, 3]),
        ("WrapBorder", [2, 3, 1, 2, 3, 1, 2]),
        ("ConstantBorder", [7, 7, 1, 2, 3, 7, 7]),
        ("MeanBorder", [2, 2, 1, 2, 3, 2, 2]),
    ],
)
def test_padcrop_border_types(border, row):
    img = np.array([[1, 2, 3]], np.uint8)
    out = PadCrop(7, 1, border, [7]).apply(img, RNG)
    assert out[0].tolist() == row


def test_padcrop_per_channel_value_and_additive():
    img = np.zeros((1, 1, 3), np.uint8)
    out = PadCrop(3, 1, "ConstantBorder", [10, 20, 30]).apply(img, RNG)
    assert out[0, 0].tolist() == [10, 20, 30] and out[0, 1].tolist() == [0, 0, 0]
    t = from_ini("Type=PadCropTransformation\nWidth=4\nHeight=2\nAdditiveWH=1")
    assert t.apply(np.zeros((3, 5), np.uint8), RNG).shape == (5, 9)


def test_padcrop_from_ini_defaults():
    t = from_ini("Type=PadCropTransformation\nWidth=4\nHeight=2")
    assert t.border_type == "MinusOneReflectBorder" and t.border_value == (0.0,)
    with pytest.raises(N2D2PyError, match="one of"):
        from_ini("Type=PadCropTransformation\nWidth=4\nHeight=2\nBorderType=Mirror")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from(["MinusOneReflectBorder", "ReflectBorder", "ReplicateBorder",
                        "WrapBorder", "ConstantBorder", "MeanBorder"]))
def test_padcrop_shape_and_round_trip(h, w, th, tw, border):
    img = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    out = PadCrop(tw, th, border).apply(img, RNG)
    assert out.shape == (th, tw)
    back = PadCrop(w, h).apply(out, RNG)
    if th >= h and tw >= w and (th - h) % 2 == 0 and (tw - w) % 2 == 0:
        assert np.array_equal(back, img)  # centred padding, then the centred crop back
    if th >= h and tw >= w:  # odd margins: padding adds the extra row/column at the top/left,
        top, left = -(-(th - h) // 2), -(-(tw - w) // 2)  # cropping removes it at the bottom/right
        assert np.array_equal(out[top : top + h, left : left + w], img)


# -- Flip -------------------------------------------------------------------------------------


def test_flip_horizontal_vertical():
    img = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    assert Flip(horizontal=True).apply(img, RNG).tolist() == [[3, 2, 1], [6, 5, 4]]
    assert Flip(vertical=True).apply(img, RNG).tolist() == [[4, 5, 6], [1, 2, 3]]
    assert Flip(True, True).apply(img, RNG).tolist() == [[6, 5, 4], [3, 2, 1]]
    assert np.array_equal(Flip().apply(img, RNG), img)


def test_random_flip_half_the_time_and_seeded():
    imgs = np.tile(np.array([[1, 2]], np.uint8), (2000, 1, 1))
    a = Flip(random_horizontal=True).apply_batch(imgs, np.random.default_rng(5))
    b = Flip(random_horizontal=True).apply_batch(imgs, np.random.default_rng(5))
    flipped = a[:, 0, 0] == 2
    assert 0.45 < flipped.mean() < 0.55 and np.array_equal(a, b)
    assert imgs[:, 0, 0].tolist() == [1] * 2000  # input untouched


# -- ChannelExtraction ------------------------------------------------------------------------


def test_channel_extraction_bgr():
    img = np.zeros((2, 2, 3), np.uint8) + np.array([10, 20, 30], np.uint8)  # B, G, R
    names = ("Blue", "Green", "Red", "Gray")
    values = {c: int(ChannelExtraction(c).apply(img, RNG)[0, 0]) for c in names}
    assert values == {"Blue": 10, "Green": 20, "Red": 30, "Gray": 22}  # .299 R + .587 G + .114 B
    assert ChannelExtraction("Value").apply(img, RNG).shape == (2, 2)
    assert int(ChannelExtraction("Value").apply(img, RNG)[0, 0]) == 30


def test_channel_extraction_of_gray_input():
    img = np.arange(4, dtype=np.uint8).reshape(2, 2)
    assert np.array_equal(ChannelExtraction("Gray").apply(img, RNG), img)
    with pytest.raises(ValueError, match="colour"):
        ChannelExtraction("Red").apply(img, RNG)


# -- RangeAffine ------------------------------------------------------------------------------


def test_range_affine():
    img = np.array([[0, 128, 255]], np.uint8)
    out = RangeAffine("Minus", 128, "Divides", 128).apply(img, RNG)
    assert out.dtype == np.float32
    assert out.tolist() == [[-1.0, 0.0, 127 / 128]]
    out = RangeAffine("Multiplies", [2.0]).apply(img, RNG)
    assert out.tolist() == [[0.0, 256.0, 510.0]]


def test_range_affine_truncate_and_per_channel():
    img = np.array([[[100, 200]]], np.uint8)  # 1x1, 2 channels
    out = RangeAffine("Plus", [100, -150], truncate=True).apply(img, RNG)
    assert out.tolist() == [[[200.0, 50.0]]]
    out = RangeAffine("Multiplies", 2, truncate=True).apply(img, RNG)
    assert out.tolist() == [[[200.0, 400.0]]]  # N2D2 truncates toward zero, no clipping
    out = RangeAffine("Divides", 3, "Minus", [40, 70], truncate=True).apply(img, RNG)
    assert out.tolist() == [[[-6.0, -3.0]]]  # 33.3 - 40 = -6.7 -> -6; 66.7 - 70 -> -3
    with pytest.raises(ValueError, match="3 values"):
        RangeAffine("Plus", [1, 2, 3]).apply(img, RNG)


def test_range_affine_from_ini():
    t = from_ini("Type=RangeAffineTransformation\nFirstOperator=Divides\nFirstValue=255.0")
    assert (t.first_operator, t.first_value, t.second_operator, t.second_value) == (
        "Divides", (255.0,), "Plus", (0.0,))
    with pytest.raises(N2D2PyError, match="did you mean 'Divides'"):
        from_ini("Type=RangeAffineTransformation\nFirstOperator=Divide\nFirstValue=2")


# -- Normalize --------------------------------------------------------------------------------


def test_normalize_norms():
    img = np.array([[0, 5, 10]], np.uint8)
    assert Normalize().apply(img, RNG).tolist() == [[0.0, 0.5, 1.0]]
    assert Normalize(norm_min=-1, norm_max=1).apply(img, RNG).tolist() == [[-1.0, 0.0, 1.0]]
    assert Normalize("L1", norm_value=3).apply(img, RNG).tolist() == [[0.0, 1.0, 2.0]]
    assert Normalize("Linf").apply(img, RNG).tolist() == [[0.0, 0.5, 1.0]]
    l2 = Normalize("L2").apply(np.array([[3.0, 4.0]], np.float32), RNG)
    assert np.allclose(l2, [[0.6, 0.8]])
    assert Normalize().apply(np.full((2, 2), 7, np.uint8), RNG).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_normalize_per_channel():
    img = np.array([[[0, 10], [4, 30]]], np.float32)  # 1x2, 2 channels
    joint = Normalize().apply(img, RNG)
    per = Normalize(per_channel=True).apply(img, RNG)
    assert np.allclose(joint[..., 0], [[0.0, 4 / 30]])
    assert np.allclose(per[..., 0], [[0.0, 1.0]]) and np.allclose(per[..., 1], [[0.0, 1.0]])


# -- ApplyTo and the registry ----------------------------------------------------------------


@pytest.mark.parametrize(
    "apply_to, sets",
    [
        ("All", {"Learn", "Validation", "Test"}),
        ("LearnOnly", {"Learn"}),
        ("ValidationOnly", {"Validation"}),
        ("TestOnly", {"Test"}),
        ("NoLearn", {"Validation", "Test"}),
        ("NoValidation", {"Learn", "Test"}),
        ("NoTest", {"Learn", "Validation"}),
    ],
)
def test_apply_to(apply_to, sets):
    assert {s for s in ("Learn", "Validation", "Test") if applies(apply_to, s)} == sets
    t = from_ini(f"Type=FlipTransformation\nHorizontalFlip=1\nApplyTo={apply_to}")
    assert {s for s in ("Learn", "Validation", "Test") if t.applies_to(s)} == sets


def test_apply_to_rejects_unknown():
    assert len(APPLY_TO) == 7
    with pytest.raises(N2D2PyError, match="did you mean 'LearnOnly'"):
        from_ini("Type=FlipTransformation\nApplyTo=LearnOnyl")


def test_registry_names_and_unknown_type():
    for name in ("RescaleTransformation", "PadCropTransformation", "FlipTransformation",
                 "ChannelExtractionTransformation", "RangeAffineTransformation",
                 "NormalizeTransformation"):
        assert name in TRANSFORMATIONS
    with pytest.raises(N2D2PyError, match="did you mean 'RescaleTransformation'") as info:
        from_ini("Type=RescaleTransformatio\nWidth=3\nHeight=3")
    assert info.value.file == "t.ini" and info.value.line == 2
