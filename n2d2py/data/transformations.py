"""Stimulus transformations, registered under N2D2's ``Type=`` names (spec §4.3).

One stimulus is a numpy array (H, W) or (H, W, C) — channels in BGR order as in N2D2 —
of uint8 or float32. ``apply(img, rng)`` returns the transformed stimulus; ``apply_batch``
does the same on a stack (N, H, W[, C]) of equally sized stimuli, vectorised where cheap.
A transformation that turns the data into real numbers (RangeAffine, Normalize) returns
float32: integer data still integer at the end are normalised to [0, 1] by the provider.

Composite stimuli (``CompositeStimuli=1``) carry a pixel label map and a list of ROIs next to
the image: ``apply_labelled(img, labels, rois, rng)`` transforms the three with the same
random draws (spec addendum §4.4). A photometric transformation leaves the labels alone; a
geometric one (``geometric = True``) moves them as it moves the image: label maps are
resampled nearest-neighbour and padded with -1, a 1×1 map (a stimulus that is not composite)
is left as it is.
"""

import math

import cv2
import numpy as np

from n2d2py.data import rois as roi_ops
from n2d2py.registry import TRANSFORMATIONS

APPLY_TO = ("All", "LearnOnly", "ValidationOnly", "TestOnly", "NoLearn", "NoValidation", "NoTest")


def applies(apply_to, set_name):
    """Whether ``ApplyTo=apply_to`` selects set ``set_name`` (Learn, Validation or Test)."""
    if apply_to == "All":
        return True
    if apply_to.endswith("Only"):
        return set_name == apply_to[: -len("Only")]
    return set_name != apply_to[len("No") :]


def _with_channels(img):
    """(H, W, C) view of a stimulus; (H, W) becomes (H, W, 1)."""
    return img[:, :, None] if img.ndim == 2 else img


def _like(out, img):
    """Give ``out`` (H', W'[, C]) the channel layout of ``img``."""
    if img.ndim == 2 and out.ndim == 3:
        return out[:, :, 0]
    if img.ndim == 3 and out.ndim == 2:
        return out[:, :, None]
    return out


class Transformation:
    """Base: ``ApplyTo`` handling and the per-stimulus loop of ``apply_batch``."""

    section = None  # the INI section it was read from (locates errors found while applying)
    geometric = False  # moves pixels: must transform label maps and ROIs (apply_labelled)

    def __init__(self, apply_to="All"):
        if apply_to not in APPLY_TO:
            raise ValueError(f"ApplyTo must be one of {', '.join(APPLY_TO)}")
        self.apply_to = apply_to

    @classmethod
    def from_section(cls, sec):
        obj = cls(**cls._read_keys(sec), apply_to=sec.get_enum("ApplyTo", APPLY_TO, "All"))
        obj.section = sec
        return obj

    @classmethod
    def _read_keys(cls, sec):
        return {}

    def applies_to(self, set_name):
        return applies(self.apply_to, set_name)

    def apply(self, img, rng):
        raise NotImplementedError

    def apply_batch(self, imgs, rng):
        return np.stack([self.apply(img, rng) for img in imgs])

    def apply_labelled(self, img, labels, rois, rng):
        """(image, int label map (H, W) or (1, 1), list of ROI) after the transformation."""
        if self.geometric:
            raise NotImplementedError(f"{self.type_name} does not transform label maps")
        return self.apply(img, rng), labels, rois

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "section")
        return f"{self.type_name}({fields})"


@TRANSFORMATIONS.register("RescaleTransformation")
class Rescale(Transformation):
    """Bilinear resize to Width×Height; with KeepAspectRatio, fit inside (ResizeToFit=1) or
    cover (ResizeToFit=0) that box."""

    def __init__(self, width, height, keep_aspect_ratio=False, resize_to_fit=True, apply_to="All"):
        super().__init__(apply_to)
        self.width, self.height = int(width), int(height)
        self.keep_aspect_ratio = keep_aspect_ratio
        self.resize_to_fit = resize_to_fit

    @classmethod
    def _read_keys(cls, sec):
        from n2d2py.limits import MAX_STIMULUS_VALUES

        width, height = _positive(sec, "Width"), _positive(sec, "Height")
        if width * height > MAX_STIMULUS_VALUES // 4:  # up to 4 channels
            raise sec.error("Width", f"{width}x{height} pixels is over the limit of "
                            f"{MAX_STIMULUS_VALUES // 4:,}")
        return {
            "width": width,
            "height": height,
            "keep_aspect_ratio": sec.get_bool("KeepAspectRatio", False),
            "resize_to_fit": sec.get_bool("ResizeToFit", True),
        }

    geometric = True

    def ratios(self, h, w):
        """(x ratio, y ratio) from an input of h×w (one ratio with KeepAspectRatio)."""
        rx, ry = self.width / w, self.height / h
        if self.keep_aspect_ratio:
            rx = ry = min(rx, ry) if self.resize_to_fit else max(rx, ry)
        return rx, ry

    def out_size(self, h, w):
        """(height, width) of the result for an input of h×w (truncated, as N2D2)."""
        if not self.keep_aspect_ratio:
            return self.height, self.width
        rx, ry = self.ratios(h, w)
        return max(1, int(h * ry)), max(1, int(w * rx))

    def apply(self, img, rng):
        h, w = self.out_size(*img.shape[:2])
        if (h, w) == img.shape[:2]:
            return img
        return _like(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR), img)

    def apply_labelled(self, img, labels, rois, rng):
        rx, ry = self.ratios(*img.shape[:2])
        out = self.apply(img, rng)
        if labels.size > 1 and labels.shape != out.shape[:2]:
            labels = cv2.resize(labels, out.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        return out, labels, [r.scaled(rx, ry) for r in rois]


_BORDERS = {
    "MinusOneReflectBorder": "reflect",  # cv2.BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba
    "ReflectBorder": "symmetric",  # cv2.BORDER_REFLECT: fedcba|abcdefgh|hgfedcb
    "ReplicateBorder": "edge",
    "WrapBorder": "wrap",
    "ConstantBorder": "constant",
    "MeanBorder": "mean",
}


@TRANSFORMATIONS.register("PadCropTransformation")
class PadCrop(Transformation):
    """Centred pad or crop to Width×Height: top = ceil(dh/2), left = ceil(dw/2) with
    dh = Height − h, the rest at the bottom/right. A negative margin removes rows/columns, so
    an odd padding puts the extra row at the top and an odd crop takes it from the bottom."""

    def __init__(self, width, height, border_type="MinusOneReflectBorder", border_value=(0.0,),
                 additive_wh=False, apply_to="All"):
        super().__init__(apply_to)
        if border_type not in _BORDERS:
            raise ValueError(f"BorderType must be one of {', '.join(_BORDERS)}")
        self.width, self.height = int(width), int(height)
        self.border_type = border_type
        self.border_value = tuple(border_value)
        self.additive_wh = additive_wh

    @classmethod
    def _read_keys(cls, sec):
        additive = sec.get_bool("AdditiveWH", False)
        return {
            "width": sec.get_int("Width") if additive else _positive(sec, "Width"),
            "height": sec.get_int("Height") if additive else _positive(sec, "Height"),
            "border_type": sec.get_enum("BorderType", tuple(_BORDERS), "MinusOneReflectBorder"),
            "border_value": sec.get_floats("BorderValue", [0.0]),
            "additive_wh": additive,
        }

    def _margins(self, h, w):
        dh, dw = self.height, self.width
        if not self.additive_wh:
            dh, dw = dh - h, dw - w
        top, left = math.ceil(dh / 2), math.ceil(dw / 2)
        return (top, dh - top), (left, dw - left)

    geometric = True

    def apply(self, img, rng):
        return self.apply_batch(img[None], rng)[0]

    def apply_labelled(self, img, labels, rois, rng):
        h, w = img.shape[:2]
        (top, bottom), (left, right) = self._margins(h, w)
        if labels.size > 1:
            labels = _pad_crop_labels(labels, top, bottom, left, right)
        out = self.apply(img, rng)
        return out, labels, roi_ops.pad_crop_rois(rois, -left, -top, *out.shape[1::-1])

    def apply_batch(self, imgs, rng):
        (top, bottom), (left, right) = self._margins(*imgs.shape[1:3])
        # Crop first (negative margins), then pad what is missing.
        h, w = imgs.shape[1:3]
        imgs = imgs[:, max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
        pads = [(0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
        pads += [(0, 0)] * (imgs.ndim - 3)
        if not any(a or b for a, b in pads):
            return imgs
        mode = _BORDERS[self.border_type]
        if mode not in ("constant", "mean"):
            return np.pad(imgs, pads, mode=mode)
        return self._pad_value(imgs, pads, mode)

    def _pad_value(self, imgs, pads, mode):
        shape = tuple(s + a + b for s, (a, b) in zip(imgs.shape, pads))
        channels = imgs.shape[3] if imgs.ndim == 4 else 1
        if mode == "mean":
            value = imgs.reshape(len(imgs), -1, channels).mean(axis=1)  # (N, C)
        else:
            value = np.resize(np.asarray(self.border_value, np.float64), channels)[None]
        value = value.reshape((-1, 1, 1) + ((channels,) if imgs.ndim == 4 else ()))
        if np.issubdtype(imgs.dtype, np.integer):
            info = np.iinfo(imgs.dtype)
            value = np.clip(np.rint(value), info.min, info.max)
        out = np.empty(shape, imgs.dtype)
        out[...] = value.astype(imgs.dtype)
        (_, _), (t, _), (l, _) = pads[:3]
        out[:, t : t + imgs.shape[1], l : l + imgs.shape[2]] = imgs
        return out


@TRANSFORMATIONS.register("FlipTransformation")
class Flip(Transformation):
    """Horizontal (left↔right) and/or vertical flip, each always or with probability 0.5."""

    def __init__(self, horizontal=False, vertical=False, random_horizontal=False,
                 random_vertical=False, apply_to="All"):
        super().__init__(apply_to)
        self.horizontal, self.vertical = horizontal, vertical
        self.random_horizontal, self.random_vertical = random_horizontal, random_vertical

    @classmethod
    def _read_keys(cls, sec):
        return {
            "horizontal": sec.get_bool("HorizontalFlip", False),
            "vertical": sec.get_bool("VerticalFlip", False),
            "random_horizontal": sec.get_bool("RandomHorizontalFlip", False),
            "random_vertical": sec.get_bool("RandomVerticalFlip", False),
        }

    def _draw(self, rng, n):
        """(flip columns, flip rows) booleans per stimulus."""
        cols = np.full(n, self.horizontal)
        rows = np.full(n, self.vertical)
        if self.random_horizontal:
            cols ^= rng.random(n) < 0.5
        if self.random_vertical:
            rows ^= rng.random(n) < 0.5
        return cols, rows

    geometric = True

    def apply(self, img, rng):
        return self.apply_batch(img[None], rng)[0]

    def apply_labelled(self, img, labels, rois, rng):
        cols, rows = (bool(v[0]) for v in self._draw(rng, 1))  # one coin for all three
        h, w = img.shape[:2]
        step = (-1 if rows else 1, -1 if cols else 1)
        img = img[:: step[0], :: step[1]]
        if labels.size > 1:
            labels = labels[:: step[0], :: step[1]]
        return img, labels, [r.flipped(w, h, cols, rows) for r in rois]

    def apply_batch(self, imgs, rng):
        cols, rows = self._draw(rng, len(imgs))
        if not cols.any() and not rows.any():
            return imgs
        out = imgs.copy()
        out[cols] = out[cols][:, :, ::-1]
        out[rows] = out[rows][:, ::-1]
        return out


_CS = {  # CSChannel -> (cv2 conversion or None, channel index)
    "Blue": (None, 0),
    "Green": (None, 1),
    "Red": (None, 2),
    "Gray": (cv2.COLOR_BGR2GRAY, 0),
    "Hue": (cv2.COLOR_BGR2HSV, 0),
    "Saturation": (cv2.COLOR_BGR2HSV, 1),
    "Value": (cv2.COLOR_BGR2HSV, 2),
    "Y": (cv2.COLOR_BGR2YCrCb, 0),
    "Cr": (cv2.COLOR_BGR2YCrCb, 1),
    "Cb": (cv2.COLOR_BGR2YCrCb, 2),
}


@TRANSFORMATIONS.register("ChannelExtractionTransformation")
class ChannelExtraction(Transformation):
    """One channel (H, W) of a BGR stimulus, possibly after a colour-space conversion.

    A single-channel stimulus is already gray: Gray, Y and Value return it unchanged.
    """

    def __init__(self, channel, apply_to="All"):
        super().__init__(apply_to)
        if channel not in _CS:
            raise ValueError(f"CSChannel must be one of {', '.join(_CS)}")
        self.channel = channel

    @classmethod
    def _read_keys(cls, sec):
        return {"channel": sec.get_enum("CSChannel", tuple(_CS))}

    def apply(self, img, rng):
        img = _with_channels(img)
        if img.shape[2] == 1:
            if self.channel in ("Gray", "Y", "Value"):
                return img[:, :, 0]
            raise ValueError(f"CSChannel={self.channel} needs a colour (BGR) stimulus")
        conversion, index = _CS[self.channel]
        if conversion is not None:
            img = cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), conversion)
            if img.ndim == 2:
                return img
        return np.ascontiguousarray(img[:, :, index])


_OPERATORS = {
    "Plus": np.add,
    "Minus": np.subtract,
    "Multiplies": np.multiply,
    "Divides": np.divide,
}


@TRANSFORMATIONS.register("RangeAffineTransformation")
class RangeAffine(Transformation):
    """``(x op1 v1) op2 v2`` in float32; values are scalars or one per channel.

    With Truncate=1 the result is rounded toward zero (N2D2's std::trunc, not a clip). The
    result stays float32: the implicit [0, 1] normalisation no longer applies.
    """

    def __init__(self, first_operator, first_value, second_operator="Plus", second_value=(0.0,),
                 truncate=False, apply_to="All"):
        super().__init__(apply_to)
        for op in (first_operator, second_operator):
            if op not in _OPERATORS:
                raise ValueError(f"operator must be one of {', '.join(_OPERATORS)}")
        self.first_operator, self.second_operator = first_operator, second_operator
        self.first_value = tuple(np.atleast_1d(first_value).tolist())
        self.second_value = tuple(np.atleast_1d(second_value).tolist())
        self.truncate = truncate

    @classmethod
    def _read_keys(cls, sec):
        ops = tuple(_OPERATORS)
        return {
            "first_operator": sec.get_enum("FirstOperator", ops),
            "first_value": sec.get_floats("FirstValue"),
            "second_operator": sec.get_enum("SecondOperator", ops, "Plus"),
            "second_value": sec.get_floats("SecondValue", [0.0]),
            "truncate": sec.get_bool("Truncate", False),
        }

    def apply(self, img, rng):
        return self.apply_batch(img[None], rng)[0]

    def apply_batch(self, imgs, rng):
        channels = imgs.shape[3] if imgs.ndim == 4 else 1
        out = imgs.astype(np.float32)
        for op, values in ((self.first_operator, self.first_value),
                           (self.second_operator, self.second_value)):
            out = _OPERATORS[op](out, _per_channel(values, channels, imgs.ndim), dtype=np.float32)
        if self.truncate:
            np.trunc(out, out=out)
        return out


@TRANSFORMATIONS.register("NormalizeTransformation")
class Normalize(Transformation):
    """Per stimulus (or per channel): MinMax maps [min, max] to [NormMin, NormMax]; L1, L2,
    Linf scale so that the norm equals NormValue. Result float32."""

    NORMS = ("MinMax", "L1", "L2", "Linf")

    def __init__(self, norm="MinMax", norm_value=1.0, norm_min=0.0, norm_max=1.0,
                 per_channel=False, apply_to="All"):
        super().__init__(apply_to)
        if norm not in self.NORMS:
            raise ValueError(f"Norm must be one of {', '.join(self.NORMS)}")
        self.norm, self.norm_value = norm, norm_value
        self.norm_min, self.norm_max = norm_min, norm_max
        self.per_channel = per_channel

    @classmethod
    def _read_keys(cls, sec):
        return {
            "norm": sec.get_enum("Norm", cls.NORMS, "MinMax"),
            "norm_value": sec.get_float("NormValue", 1.0),
            "norm_min": sec.get_float("NormMin", 0.0),
            "norm_max": sec.get_float("NormMax", 1.0),
            "per_channel": sec.get_bool("PerChannel", False),
        }

    def apply(self, img, rng):
        return self.apply_batch(img[None], rng)[0]

    def apply_batch(self, imgs, rng):
        x = imgs.astype(np.float64)
        axes = (1, 2) if self.per_channel and x.ndim == 4 else tuple(range(1, x.ndim))
        if self.norm == "MinMax":
            lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
            span = np.where(hi > lo, hi - lo, 1.0)
            out = self.norm_min + (x - lo) * (self.norm_max - self.norm_min) / span
        else:
            if self.norm == "L1":
                norm = np.abs(x).sum(axis=axes, keepdims=True)
            elif self.norm == "L2":
                norm = np.sqrt((x * x).sum(axis=axes, keepdims=True))
            else:
                norm = np.abs(x).max(axis=axes, keepdims=True)
            out = x * self.norm_value / np.where(norm > 0, norm, 1.0)
        return out.astype(np.float32)


def _per_channel(values, channels, ndim):
    """Broadcastable operand for (N, H, W[, C]) from one value or one per channel."""
    values = np.asarray(values, np.float32)
    if values.size == 1:
        return values.reshape(())
    if values.size != channels or ndim != 4:
        raise ValueError(f"{values.size} values given for a stimulus with {channels} channel(s)")
    return values.reshape(1, 1, 1, channels)


def _pad_crop_labels(labels, top, bottom, left, right):
    """A label map cropped by negative margins and padded with -1 by positive ones."""
    h, w = labels.shape
    labels = labels[max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
    pads = ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
    return np.pad(labels, pads, constant_values=-1) if any(map(any, pads)) else labels


def _positive(sec, key):
    from n2d2py.limits import MAX_SIDE

    value = sec.get_int(key)
    if value <= 0:
        raise sec.error(key, f"must be a positive size, got {value}")
    if value > MAX_SIDE:
        raise sec.error(key, f"{value:,} pixels is over the limit of {MAX_SIDE:,}")
    return value
