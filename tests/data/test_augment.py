"""ColorSpace, SliceExtraction, Distortion, Affine transformations and CSV_Database."""

import cv2
import numpy as np
import pytest

from n2d2py.data.augment import Affine, ColorSpace, Distortion, SliceExtraction, gaussian_kernel
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES, TRANSFORMATIONS

RNG = np.random.default_rng(0)


def from_ini(body, name="t.ini"):
    doc = parse_text(f"[sp.Transformation]\n{body}\n", name)
    sec = Section(doc, ["sp.Transformation"])
    return TRANSFORMATIONS.get(sec.get_str("Type"), where=sec.prop("Type")).from_section(sec)


def ramp(h=6, w=8, c=3):
    img = np.arange(h * w * c, dtype=np.uint8).reshape(h, w, c)
    return img if c > 1 else img[..., 0]


# -- ColorSpace ---------------------------------------------------------------------------------
def test_color_space_bgr_rgb_and_others():
    img = ramp()
    assert np.array_equal(ColorSpace("BGR").apply(img, RNG), img)
    assert np.array_equal(ColorSpace("RGB").apply(img, RNG), img[..., ::-1])
    gray = ramp(c=1)
    out = ColorSpace("BGR").apply(gray, RNG)
    assert out.shape == (6, 8, 3) and (out == gray[..., None]).all()
    bgra = np.dstack([img, np.full((6, 8), 9, np.uint8)])
    assert np.array_equal(ColorSpace("BGR").apply(bgra, RNG), img)
    batch = np.stack([img, img[::-1]])
    hsv = ColorSpace("HSV").apply_batch(batch, RNG)
    assert np.array_equal(hsv[1], cv2.cvtColor(np.ascontiguousarray(img[::-1]), cv2.COLOR_BGR2HSV))
    assert np.array_equal(ColorSpace("HSV").apply(gray, RNG), gray)  # gray: unchanged
    back = ColorSpace("YCrCb_to_BGR").apply(ColorSpace("YCrCb").apply(img, RNG), RNG)
    assert np.abs(back.astype(int) - img).max() <= 2
    assert from_ini("Type=ColorSpaceTransformation\nColorSpace=CIELab").color_space == "CIELab"
    with pytest.raises(N2D2PyError, match="one of"):
        from_ini("Type=ColorSpaceTransformation\nColorSpace=XYZ")


# -- SliceExtraction ----------------------------------------------------------------------------
def test_slice_fixed_offset_and_ini_keys():
    img = ramp(10, 12)
    t = from_ini("Type=SliceExtractionTransformation\nWidth=5\nHeight=4\nOffsetX=3\nOffsetY=2")
    assert np.array_equal(t.apply(img, RNG), img[2:6, 3:8])
    assert np.array_equal(t.apply_batch(np.stack([img, img]), RNG)[1], img[2:6, 3:8])
    with pytest.raises(N2D2PyError, match="two values") as info:
        from_ini("Type=SliceExtractionTransformation\nWidth=5\nHeight=4\nRandomScalingRange=1")
    assert info.value.key == "RandomScalingRange"


def test_slice_random_offsets_cover_the_image():
    img = np.tile(np.arange(12, dtype=np.uint8), (10, 1))  # value = column
    t = SliceExtraction(4, 10, random_offset=(True, False))
    rng = np.random.default_rng(1)
    starts = {int(t.apply(img, rng)[0, 0]) for _ in range(200)}
    assert starts == set(range(9))  # every offset 0..12-4 drawn


def test_slice_padding_needs_allow_padding():
    img = ramp(4, 4, 1)
    with pytest.raises(ValueError, match="AllowPadding"):
        SliceExtraction(6, 4).apply(img, RNG)
    out = SliceExtraction(6, 4, allow_padding=True, border_type="ConstantBorder",
                          border_value=(7,)).apply(img, RNG)
    assert out.shape == (4, 6) and (out[:, 4:] == 7).all() and np.array_equal(out[:, :4], img)


def test_slice_rotation_and_scaling():
    img = np.zeros((21, 21), np.float32)
    img[10, 10:] = 1.0  # a ray to the right of the centre
    t = SliceExtraction(21, 21, random_rotation=True, rotation_range=(90, 90))
    out = t.apply(img, RNG)
    assert out.shape == (21, 21)
    assert out[12:, 10:12].sum() > 8 and out[9:12, 13:].sum() < 1  # turned clockwise: now down
    scaled = SliceExtraction(10, 10, random_scaling=True, scaling_range=(2.0, 2.0))
    out = scaled.apply(ramp(21, 21, 1), RNG)
    assert out.shape == (10, 10)  # a 20x20 slice resized to 10x10


# -- Distortion ---------------------------------------------------------------------------------
def test_gaussian_kernel_is_n2d2s():
    k = gaussian_kernel(15, 6.0)
    assert k.shape == (15, 15) and np.isclose(k[7, 7], 1 / (2 * np.pi * 36))
    assert np.allclose(k, k.T) and k.sum() < 1  # not renormalised


def test_distortion_identity_and_rotation():
    img = ramp(9, 9, 1)
    assert np.array_equal(Distortion().apply(img, RNG), img)  # all amplitudes 0
    rot = Distortion(rotation=90.0)
    rng = np.random.default_rng(3)
    out = rot.apply(img.astype(np.float32), rng)
    angle = 90.0 * np.random.default_rng(3).uniform(-1, 1, 2)[0]  # same draws as the field
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.isclose(out[4, 4], img[4, 4])  # the centre stays
    assert not np.allclose(out, img) or abs(angle) < 1


def test_distortion_elastic_keeps_type_range_and_moves_pixels():
    t = from_ini("Type=DistortionTransformation\nElasticGaussianSize=21\nElasticSigma=6.0\n"
                 "ElasticScaling=36.0\nScaling=10.0\nRotation=15.0")
    assert (t.gaussian_size, t.elastic_scaling, t.scaling, t.rotation) == (21, 36.0, 10.0, 15.0)
    img = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    batch = t.apply_batch(np.stack([img, img]), np.random.default_rng(5))
    assert batch.dtype == np.uint8 and batch.shape == (2, 28, 28, 3)
    assert not np.array_equal(batch[0], img) and not np.array_equal(batch[0], batch[1])


# -- Affine (matrix files) ----------------------------------------------------------------------
def test_affine_with_image_and_npy_files(tmp_path):
    img = np.full((4, 5), 100, np.uint8)
    mean = np.full((4, 5), 30, np.uint8)
    cv2.imwrite(str(tmp_path / "mean.png"), mean)
    np.save(tmp_path / "scale.npy", np.full((4, 5), 0.5, np.float32))
    t = from_ini(f"Type=AffineTransformation\nFirstOperator=Minus\nFirstValue={tmp_path}/mean.png\n"
                 f"SecondOperator=Multiplies\nSecondValue={tmp_path}/scale.npy")
    out = t.apply(img, RNG)
    assert out.dtype == np.float32 and np.allclose(out, 35.0)
    sat = Affine("Minus", np.full((4, 5), 150, np.uint8)).apply(img, RNG)
    assert sat.dtype == np.uint8 and (sat == 0).all()  # OpenCV saturates bytes
    with pytest.raises(ValueError, match="3x3, the stimulus 5x4"):
        Affine("Plus", np.zeros((3, 3))).apply(img, RNG)
    with pytest.raises(N2D2PyError, match="cannot read") as info:
        from_ini("Type=AffineTransformation\nFirstOperator=Plus\nFirstValue=/no/such.png")
    assert info.value.key == "FirstValue"


# -- CSV_Database -------------------------------------------------------------------------------
def test_csv_database(tmp_path):
    rows = ['"a","b","c","label"'] + [f"{i},{i * 2};{i * 3}\t\"{'yes' if i % 2 else 'no'}\""
                                      for i in range(20)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n\n")
    doc = parse_text(f"[database]\nType=CSV_Database\nDataPath={tmp_path}/d.csv\n"
                     "NbHeaderLines=1\nLearn=0.5\nValidation=0.2\nRandomPartitioning=0\n", "c.ini")
    db = DATABASES.get("CSV_Database").from_section(Section(doc, ["database"]))
    db.load(np.random.default_rng(0))
    assert db.label_names == ["no", "yes"]
    assert tuple(db.size(s) for s in ("Learn", "Validation", "Test")) == (10, 4, 6)
    x = db.images("Learn", [0, 1])
    assert x.shape == (2, 1, 3) and x.dtype == np.float32
    assert x[1, 0].tolist() == [1.0, 2.0, 3.0] and db.labels("Learn", [0, 1]).tolist() == [0, 1]
    (tmp_path / "bad.csv").write_text("1,2,x\n1,oops,y\n")
    doc = parse_text(f"[database]\nType=CSV_Database\nDataPath={tmp_path}/bad.csv\n", "c.ini")
    with pytest.raises(N2D2PyError, match="unreadable value") as info:
        DATABASES.get("CSV_Database").from_section(Section(doc, ["database"])).load(
            np.random.default_rng(0))
    assert info.value.line == 2
