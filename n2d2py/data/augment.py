"""Colour-space, slice-extraction, distortion and file-affine transformations (spec §4.3).

Same conventions as ``transformations.py``: stimuli (H, W) or (H, W, C) in BGR order,
``apply(img, rng)`` for one, ``apply_batch`` for a stack, random draws from ``rng``.
"""

import math

import cv2
import numpy as np

from n2d2py.data.rois import pad_crop_rois
from n2d2py.data.transformations import _BORDERS, _OPERATORS, Transformation, _positive
from n2d2py.registry import TRANSFORMATIONS

_CV_BORDERS = {
    "MinusOneReflectBorder": cv2.BORDER_REFLECT_101,
    "ReflectBorder": cv2.BORDER_REFLECT,
    "ReplicateBorder": cv2.BORDER_REPLICATE,
    "WrapBorder": cv2.BORDER_WRAP,
    "ConstantBorder": cv2.BORDER_CONSTANT,
    "MeanBorder": cv2.BORDER_CONSTANT,
}

# ColorSpace -> {number of input channels: cv2 conversion}; absent = left unchanged.
_TO_BGR = {1: cv2.COLOR_GRAY2BGR, 4: cv2.COLOR_BGRA2BGR}
_COLOR_SPACES = {
    "BGR": _TO_BGR,
    "RGB": {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_RGBA2BGR},
    "HSV": {3: cv2.COLOR_BGR2HSV}, "HLS": {3: cv2.COLOR_BGR2HLS},
    "YCrCb": {3: cv2.COLOR_BGR2YCrCb}, "CIELab": {3: cv2.COLOR_BGR2Lab},
    "CIELuv": {3: cv2.COLOR_BGR2Luv},
    "RGB_to_BGR": {3: cv2.COLOR_RGB2BGR}, "RGB_to_HSV": {3: cv2.COLOR_RGB2HSV},
    "RGB_to_HLS": {3: cv2.COLOR_RGB2HLS}, "RGB_to_YCrCb": {3: cv2.COLOR_RGB2YCrCb},
    "RGB_to_CIELab": {3: cv2.COLOR_RGB2Lab}, "RGB_to_CIELuv": {3: cv2.COLOR_RGB2Luv},
    "HSV_to_BGR": {3: cv2.COLOR_HSV2BGR}, "HSV_to_RGB": {3: cv2.COLOR_HSV2RGB},
    "HLS_to_BGR": {3: cv2.COLOR_HLS2BGR}, "HLS_to_RGB": {3: cv2.COLOR_HLS2RGB},
    "YCrCb_to_BGR": {3: cv2.COLOR_YCrCb2BGR}, "YCrCb_to_RGB": {3: cv2.COLOR_YCrCb2RGB},
    "CIELab_to_BGR": {3: cv2.COLOR_Lab2BGR}, "CIELab_to_RGB": {3: cv2.COLOR_Lab2RGB},
    "CIELuv_to_BGR": {3: cv2.COLOR_Luv2BGR}, "CIELuv_to_RGB": {3: cv2.COLOR_Luv2RGB},
}


def _cv_ready(img):
    """OpenCV takes uint8, uint16 and float32 for colour conversions."""
    return img.astype(np.float32) if img.dtype not in (np.uint8, np.uint16, np.float32) else img


@TRANSFORMATIONS.register("ColorSpaceTransformation")
class ColorSpace(Transformation):
    """OpenCV colour conversion; ``BGR`` turns gray or BGRA images into 3-channel BGR."""

    def __init__(self, color_space, apply_to="All"):
        super().__init__(apply_to)
        if color_space not in _COLOR_SPACES:
            raise ValueError(f"ColorSpace must be one of {', '.join(_COLOR_SPACES)}")
        self.color_space = color_space

    @classmethod
    def _read_keys(cls, sec):
        return {"color_space": sec.get_enum("ColorSpace", tuple(_COLOR_SPACES))}

    def apply(self, img, rng):
        return self.apply_batch(img[None], rng)[0]

    def apply_batch(self, imgs, rng):
        channels = imgs.shape[3] if imgs.ndim == 4 else 1
        code = _COLOR_SPACES[self.color_space].get(channels)
        if code is None:
            return imgs
        n, h, w = imgs.shape[:3]
        tall = _cv_ready(imgs).reshape(n * h, w, channels)  # pixel-wise: one call per batch
        out = cv2.cvtColor(np.ascontiguousarray(tall), code)
        return out.reshape(n, h, w, -1) if out.ndim == 3 else out.reshape(n, h, w)


@TRANSFORMATIONS.register("SliceExtractionTransformation")
class SliceExtraction(Transformation):
    """A Width×Height slice at (OffsetX, OffsetY), or at a random offset; optionally rotated
    by a random angle and taken at a random scale (then resized back to Width×Height)."""

    def __init__(self, width, height, offset=(0, 0), random_offset=(False, False),
                 random_rotation=False, rotation_range=(0.0, 360.0), random_scaling=False,
                 scaling_range=(0.8, 1.2), allow_padding=False,
                 border_type="MinusOneReflectBorder", border_value=(), apply_to="All"):
        super().__init__(apply_to)
        if border_type not in _BORDERS:
            raise ValueError(f"BorderType must be one of {', '.join(_BORDERS)}")
        self.width, self.height = int(width), int(height)
        self.offset, self.random_offset = tuple(offset), tuple(random_offset)
        self.random_rotation, self.rotation_range = random_rotation, tuple(rotation_range)
        self.random_scaling, self.scaling_range = random_scaling, tuple(scaling_range)
        self.allow_padding = allow_padding
        self.border_type, self.border_value = border_type, tuple(border_value)

    @classmethod
    def _read_keys(cls, sec):
        keys = {
            "width": sec.get_uint("Width"), "height": sec.get_uint("Height"),
            "offset": (sec.get_uint("OffsetX", 0), sec.get_uint("OffsetY", 0)),
            "random_offset": (sec.get_bool("RandomOffsetX", False),
                              sec.get_bool("RandomOffsetY", False)),
            "random_rotation": sec.get_bool("RandomRotation", False),
            "rotation_range": sec.get_floats("RandomRotationRange", [0.0, 360.0]),
            "random_scaling": sec.get_bool("RandomScaling", False),
            "scaling_range": sec.get_floats("RandomScalingRange", [0.8, 1.2]),
            "allow_padding": sec.get_bool("AllowPadding", False),
            "border_type": sec.get_enum("BorderType", tuple(_BORDERS), "MinusOneReflectBorder"),
            "border_value": sec.get_floats("BorderValue", []),
        }
        for key in ("RandomRotationRange", "RandomScalingRange"):
            name = "rotation_range" if "Rotation" in key else "scaling_range"
            if len(keys[name]) != 2:
                raise sec.error(key, "expected two values: min max")
        return keys

    def _draw(self, h, w, rng):
        """(x, y, slice width, slice height, angle, target width, target height)."""
        scale = rng.uniform(*self.scaling_range) if self.random_scaling else 1.0
        tw = self.width if self.width > 0 else int(w / scale)
        th = self.height if self.height > 0 else int(h / scale)
        sw, sh = int(math.floor(tw * scale + 0.5)), int(math.floor(th * scale + 0.5))
        x = (int(rng.integers(0, w - sw + 1)) if w > sw else 0) if self.random_offset[0] \
            else self.offset[0]
        y = (int(rng.integers(0, h - sh + 1)) if h > sh else 0) if self.random_offset[1] \
            else self.offset[1]
        if (x + sw > w or y + sh > h) and not self.allow_padding:
            raise ValueError(f"cannot extract a {sw}x{sh} slice at ({x}, {y}) from a {w}x{h} "
                             "stimulus without AllowPadding=1")
        angle = rng.uniform(*self.rotation_range) if self.random_rotation else 0.0
        return x, y, sw, sh, angle, tw, th

    def _border(self, img):
        if self.border_type == "MeanBorder":
            return tuple(float(v) for v in np.atleast_1d(img.reshape(-1, *img.shape[2:3])
                                                         .mean(axis=0)))
        return tuple(self.border_value) + (0.0,) * (4 - len(self.border_value))

    geometric = True

    def apply(self, img, rng):
        return self._extract(img, *self._draw(*img.shape[:2], rng))

    def apply_labelled(self, img, labels, rois, rng):
        draw = self._draw(*img.shape[:2], rng)
        out = self._extract(img, *draw)
        if labels.size > 1:  # same slice, nearest-neighbour, -1 where nothing was
            labels = self._extract(labels, *draw, labels=True)
        x, y, sw, sh, angle, tw, th = draw
        rois = pad_crop_rois(rois, x, y, sw, sh)
        if angle != 0.0:
            rois = pad_crop_rois([r.rotated(sw / 2.0, sh / 2.0, angle) for r in rois],
                                 0, 0, sw, sh)
        if (sw, sh) != (tw, th):
            rois = [r.scaled(tw / sw, th / sh) for r in rois]
        return out, labels, rois

    def _extract(self, img, x, y, sw, sh, angle, tw, th, labels=False):
        h, w = img.shape[:2]
        if labels:
            mode, value, interp = cv2.BORDER_CONSTANT, (-1.0,) * 4, cv2.INTER_NEAREST
        else:
            mode, value = _CV_BORDERS[self.border_type], self._border(img)
            interp = cv2.INTER_LINEAR
        if angle != 0.0:  # rotate about the slice centre (clockwise, as N2D2), then crop
            m = cv2.getRotationMatrix2D((x + sw / 2.0, y + sh / 2.0), -angle, 1.0)
            m[:, 2] += (sw / 2.0 - (x + sw / 2.0), sh / 2.0 - (y + sh / 2.0))
            # label maps warped as int32 whatever their cached type (int8/int16): OpenCV 5's
            # nearest-neighbour warp of int16 and int32 maps differs on border pixels
            src = img.astype(np.int32, copy=False) if labels else _cv_ready(img)
            out = cv2.warpAffine(src, m, (sw, sh), flags=interp, borderMode=mode,
                                 borderValue=value).astype(img.dtype)
        else:
            out = img[y : y + sh, x : x + sw]
            pad_h, pad_w = max(y + sh - h, 0), max(x + sw - w, 0)
            if pad_h or pad_w:
                out = cv2.copyMakeBorder(np.ascontiguousarray(out), 0, pad_h, 0, pad_w, mode,
                                         value=value)
        out = out.reshape(out.shape[:2] + img.shape[2:])
        if (sw, sh) != (tw, th):
            out = cv2.resize(out, (tw, th), interpolation=interp)
            out = out.reshape(out.shape[:2] + img.shape[2:])
        return out

    def apply_batch(self, imgs, rng):
        h, w = imgs.shape[1:3]
        draws = [self._draw(h, w, rng) for _ in range(len(imgs))]
        simple = all(d[4] == 0.0 and d[2:4] == d[5:7] and d[0] + d[2] <= w and d[1] + d[3] <= h
                     for d in draws)
        if simple:  # plain crops: slicing only
            return np.stack([img[y : y + sh, x : x + sw]
                             for img, (x, y, sw, sh, *_) in zip(imgs, draws)])
        return np.stack([self._extract(img, *d) for img, d in zip(imgs, draws)])


def gaussian_kernel(size, sigma):
    """N2D2's GaussianKernel: exp(-r²/2σ²)/(2πσ²) centred on (size-1)/2, not renormalised."""
    c = (size - 1) / 2.0
    d = np.arange(size) - c
    r2 = d[None, :] ** 2 + d[:, None] ** 2
    return np.exp(-r2 / (2.0 * sigma * sigma)) / (2.0 * math.pi * sigma * sigma)


@TRANSFORMATIONS.register("DistortionTransformation")
class Distortion(Transformation):
    """Random elastic distortion, scaling and rotation, as one displacement field.

    Per stimulus: two fields of uniform [-1, 1] noise smoothed by an ElasticGaussianSize²
    Gaussian (σ = ElasticSigma) and multiplied by ElasticScaling; plus a scaling by up to
    ±Scaling % per axis and a rotation by up to ±Rotation degrees about the centre. Pixel
    (i, j) takes the bilinear value at (i − dy, j − dx), clamped inside the image; integer
    results are truncated, as N2D2 stores them. (N2D2 clamps one row and column short of the
    border, which copies the next-to-last row and column over the last ones even without
    distortion; n2d2py does not reproduce that.)
    """

    def __init__(self, gaussian_size=15, sigma=6.0, elastic_scaling=0.0, scaling=0.0,
                 rotation=0.0, ignore_missing_data=True, apply_to="All"):
        super().__init__(apply_to)
        self.gaussian_size, self.sigma = int(gaussian_size), float(sigma)
        self.elastic_scaling, self.scaling = float(elastic_scaling), float(scaling)
        self.rotation = float(rotation)
        self.ignore_missing_data = ignore_missing_data  # only affects pixel-wise labels
        self._kernel = gaussian_kernel(self.gaussian_size, self.sigma)

    @classmethod
    def _read_keys(cls, sec):
        return {
            "gaussian_size": _positive(sec, "ElasticGaussianSize") if sec.has(
                "ElasticGaussianSize") else 15,
            "sigma": sec.get_float("ElasticSigma", 6.0),
            "elastic_scaling": sec.get_float("ElasticScaling", 0.0),
            "scaling": sec.get_float("Scaling", 0.0),
            "rotation": sec.get_float("Rotation", 0.0),
            "ignore_missing_data": sec.get_bool("IgnoreMissingData", True),
        }

    def __repr__(self):
        fields = {k: v for k, v in vars(self).items() if k not in ("section", "_kernel")}
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"

    def field(self, h, w, rng):
        """Displacements (dx, dy), each (h, w) float64."""
        dx, dy = np.zeros((h, w)), np.zeros((h, w))
        if self.elastic_scaling > 0.0:
            for d in (dx, dy):
                noise = rng.uniform(-1.0, 1.0, (h, w))
                d += self.elastic_scaling * cv2.filter2D(
                    noise, -1, self._kernel, borderType=cv2.BORDER_CONSTANT)
        sx, sy = (self.scaling / 100.0) * rng.uniform(-1.0, 1.0, 2)
        angle = math.radians(self.rotation * rng.uniform(-1.0, 1.0))
        x = (np.arange(w) - w // 2)[None, :].astype(np.float64)
        y = (np.arange(h) - h // 2)[:, None].astype(np.float64)
        if self.scaling > 0.0:
            dx += sx * x
            dy += sy * y
        if self.rotation > 0.0:
            cos, sin = math.cos(angle), math.sin(angle)
            dx += x * (cos - 1.0) + y * sin
            dy += y * (cos - 1.0) - x * sin
        return dx, dy

    geometric = True

    def apply(self, img, rng):
        h, w = img.shape[:2]
        if h < 2 or w < 2:
            return img
        return self._warp(img, *self.field(h, w, rng))

    def apply_labelled(self, img, labels, rois, rng):
        """The image and its label map through the same field; the ROIs are not moved
        (N2D2: the boxes no longer match a distorted image)."""
        h, w = img.shape[:2]
        if h < 2 or w < 2:
            return img, labels, rois
        dx, dy = self.field(h, w, rng)
        out = self._warp(img, dx, dy)
        if labels.size > 1:
            labels = self._warp_labels(labels, dx, dy)
        return out, labels, rois

    def _warp_labels(self, labels, dx, dy):
        """Nearest of the four bilinear neighbours (N2D2's tie rule); with
        IgnoreMissingData, -1 where the source falls outside the map."""
        h, w = labels.shape
        si, sj = np.arange(h)[:, None] - dy, np.arange(w)[None, :] - dx
        missing = (si < 0) | (si > h - 1) | (sj < 0) | (sj > w - 1)
        si, sj = np.clip(si, 0.0, h - 1.0), np.clip(sj, 0.0, w - 1.0)
        i0 = np.minimum(si.astype(np.int64), h - 2)
        j0 = np.minimum(sj.astype(np.int64), w - 2)
        di, dj = si - i0, sj - j0
        d00, d10, d01, d11 = (1 - di) * (1 - dj), di * (1 - dj), (1 - di) * dj, di * dj
        left = np.maximum(d00, d10) > np.maximum(d01, d11)
        rows = np.where(left, np.where(d00 > d10, i0, i0 + 1), np.where(d01 > d11, i0, i0 + 1))
        cols = np.where(left, j0, j0 + 1)
        out = labels[rows, cols]
        if self.ignore_missing_data:
            out = np.where(missing, -1, out).astype(labels.dtype)
        return out

    def _warp(self, img, dx, dy):
        h, w = img.shape[:2]
        # N2D2 clamps to h-2 (so its last row always repeats the one before); we clamp to h-1
        si = np.clip(np.arange(h)[:, None] - dy, 0.0, h - 1.0)
        sj = np.clip(np.arange(w)[None, :] - dx, 0.0, w - 1.0)
        i0 = np.minimum(si.astype(np.int64), h - 2)
        j0 = np.minimum(sj.astype(np.int64), w - 2)
        di, dj = si - i0, sj - j0
        src = img.astype(np.float64)
        if img.ndim == 3:
            di, dj = di[..., None], dj[..., None]
        out = (src[i0, j0] * (1 - di) * (1 - dj) + src[i0 + 1, j0] * di * (1 - dj)
               + src[i0, j0 + 1] * (1 - di) * dj + src[i0 + 1, j0 + 1] * di * dj)
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            out = np.clip(np.trunc(out), info.min, info.max)
        return out.astype(img.dtype)


def read_value_file(path):
    """A value matrix for AffineTransformation: an image file (as stored) or a .npy array."""
    if str(path).lower().endswith(".bin"):
        raise ValueError("N2D2's binary matrix files (.bin) are not supported: use an image "
                         "or a .npy file")
    if str(path).lower().endswith(".npy"):
        return np.load(path, allow_pickle=False)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"cannot read value file {path}")
    return img


@TRANSFORMATIONS.register("AffineTransformation")
class Affine(Transformation):
    """``(x op1 V1) op2 V2`` with V1, V2 whole matrices read from files (e.g. a mean image),
    of the stimulus size. Integer stimulus and integer matrix: saturated integer result, as
    OpenCV computes it; otherwise real."""

    def __init__(self, first_operator, first_value, second_operator="Plus", second_value=None,
                 apply_to="All"):
        super().__init__(apply_to)
        for op in (first_operator, second_operator):
            if op not in _OPERATORS:
                raise ValueError(f"operator must be one of {', '.join(_OPERATORS)}")
        self.first_operator, self.second_operator = first_operator, second_operator
        self.first_value = np.asarray(first_value)
        self.second_value = None if second_value is None else np.asarray(second_value)

    @classmethod
    def _read_keys(cls, sec):
        ops = tuple(_OPERATORS)
        values = {}
        for key in ("FirstValue", "SecondValue"):
            path = sec.get_path(key, "" if key == "SecondValue" else None)
            if path is None:
                raise sec.error(key, "required key is missing (a matrix file)")
            try:
                values[key] = read_value_file(path) if path else None
            except ValueError as exc:
                raise sec.error(key, str(exc)) from None
        return {
            "first_operator": sec.get_enum("FirstOperator", ops),
            "first_value": values["FirstValue"],
            "second_operator": sec.get_enum("SecondOperator", ops, "Plus"),
            "second_value": values["SecondValue"],
        }

    def __repr__(self):
        shapes = [None if v is None else v.shape for v in (self.first_value, self.second_value)]
        return (f"{self.type_name}({self.first_operator} {shapes[0]}, "
                f"{self.second_operator} {shapes[1]})")

    def apply(self, img, rng):
        out = _matrix_op(img, self.first_operator, self.first_value)
        if self.second_value is not None:
            out = _matrix_op(out, self.second_operator, self.second_value)
        return out


def _matrix_op(img, op, value):
    if value.shape[:2] != img.shape[:2]:
        raise ValueError(f"value matrix is {value.shape[1]}x{value.shape[0]}, the stimulus "
                         f"{img.shape[1]}x{img.shape[0]}")
    value = value.reshape(value.shape[:2] + img.shape[2:]) if value.size == img.size else value
    if np.issubdtype(img.dtype, np.integer) and np.issubdtype(value.dtype, np.integer):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _OPERATORS[op](img.astype(np.float64), value.astype(np.float64))
        out = np.nan_to_num(np.rint(out), nan=0.0, posinf=0.0, neginf=0.0)
        info = np.iinfo(img.dtype)
        return np.clip(out, info.min, info.max).astype(img.dtype)
    dtype = img.dtype if np.issubdtype(img.dtype, np.floating) else np.float32
    return _OPERATORS[op](img.astype(dtype), value.astype(dtype)).astype(dtype)
