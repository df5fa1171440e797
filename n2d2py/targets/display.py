"""N2D2's target images (spec §5.8): per-pixel classes as colours over the input, written for
every test stimulus as ``<target>/test/<stem>_target.<fmt>`` and ``<stem>_estimated.<fmt>``.

hue(t) = (180·t // n + ``LabelsHueOffset``) mod 180 on OpenCV's 0–179 scale; ``NoDisplayLabel``
pixels have almost no saturation, ignored and masked ones are grey; the estimated image's
brightness is the estimated value (``EstimatedLabelsValueDisplay``); the colours, resized
(nearest) to the input, are blended 0.25 over 0.75 of the input in grey (min–max 0–255).
"""

import os

import cv2
import numpy as np

from n2d2py.atomic import atomic_write_bytes
from n2d2py.errors import N2D2PyError


def hue(t, n, offset=0):
    return (180 * t // max(n, 1) + offset) % 180


def colours(labels, n, offset=0, no_display=-1, values=None, shown=None):
    """RGB uint8 (H, W, 3) of per-pixel classes ``labels`` (−1: none): full colour per class,
    brightness ``values`` (0–1) if given; ``no_display`` and pixels not ``shown`` grey."""
    labels = np.asarray(labels)
    hsv = np.zeros(labels.shape + (3,), np.uint8)
    valid = labels >= 0
    if shown is not None:
        valid &= shown
    hsv[..., 0] = np.where(valid, hue(np.maximum(labels, 0), n, offset), 0)
    full = valid & (labels != no_display)
    hsv[..., 1] = np.where(full, 255, np.where(valid, 10, 0))
    bright = 255 if values is None else np.clip(255 * np.asarray(values), 0, 255)
    hsv[..., 2] = np.where(full, bright, 127)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def overlay(image, rgb):
    """0.75·grey image (min–max to 0–255) + 0.25·colours resized (nearest) to the image."""
    image = np.asarray(image, np.float64)
    low, high = image.min(), image.max()
    grey = (image - low) / (high - low) * 255 if high > low else np.zeros_like(image)
    h, w = image.shape
    rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float64)
    return (0.75 * grey[..., None] + 0.25 * rgb).astype(np.uint8)


def stem(name, sid):
    """The file stem N2D2 uses: the stimulus file name without extension, else the id."""
    return os.path.splitext(os.path.basename(name))[0] if name else f"{int(sid):010d}"


def write_rgb(path, rgb):
    """An RGB image to ``path`` (format from its extension), written atomically."""
    ok, data = cv2.imencode(os.path.splitext(path)[1] or ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise N2D2PyError(f"cannot encode an image as {os.path.splitext(path)[1]!r} "
                          "(ImageLogFormat)", path)
    atomic_write_bytes(path, data.tobytes())


def legend(names, offset=0, no_display=-1):
    """``labels_legend.png``: 350 px wide, 50 px per target, its colour and ``<t> <name>``."""
    n = len(names)
    img = np.full((50 * n, 350, 3), 255, np.uint8)
    for t, name in enumerate(names):
        swatch = colours(np.array([[t]]), n, offset, no_display)[0, 0]
        img[50 * t + 5:50 * t + 45, 5:45] = swatch
        cv2.putText(img, f"{t} {name}", (55, 50 * t + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return img
