"""Regions of interest (N2D2's rectangular ROIs) and the pixel-wise labels made from them.

``ROI`` is one labelled rectangle with INCLUSIVE corners (x0, y0)-(x1, y1) in the pixel
coordinates of the frame it belongs to (N2D2's RectangularROI). ``LabelMaps`` is what the
stimuli provider returns in place of the 1-D label array when ``CompositeStimuli=1``:
``maps`` (N, SizeY, SizeX) int32 on the host (-1 = ignore) and ``rois`` (one list of ROIs per
stimulus, in the transformed frame's coordinates).
"""

import math
from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass(frozen=True)
class ROI:
    """A labelled rectangle with inclusive corners (N2D2's Rectangle / RectangularROI)."""

    label: int
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self):
        return self.x1 - self.x0 + 1

    @property
    def height(self):
        return self.y1 - self.y0 + 1

    @property
    def area(self):
        return max(self.width, 0) * max(self.height, 0)

    def with_label(self, label):
        return ROI(int(label), self.x0, self.y0, self.x1, self.y1)

    def shifted(self, dx, dy):
        """The ROI moved by (dx, dy) pixels."""
        return ROI(self.label, self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def scaled(self, sx, sy):
        """The ROI of a frame rescaled by (sx, sy): each corner scaled and rounded to the
        nearest integer, ties to even (N2D2 scales its integer cv::Point corners)."""
        x0, x1 = (int(np.rint(v * sx)) for v in (self.x0, self.x1))
        y0, y1 = (int(np.rint(v * sy)) for v in (self.y0, self.y1))
        return ROI(self.label, x0, y0, x1, y1)

    def rotated(self, cx, cy, degrees):
        """Bounding box of the corners rotated by ``degrees`` (clockwise on screen, y down)
        about (cx, cy), each rounded half away from zero as N2D2 rounds them."""
        a = math.radians(degrees)
        xs, ys = [], []
        for x, y in ((self.x0, self.y0), (self.x1, self.y0), (self.x1, self.y1),
                     (self.x0, self.y1)):
            px = cx + (x - cx) * math.cos(a) - (y - cy) * math.sin(a)
            py = cy + (x - cx) * math.sin(a) + (y - cy) * math.cos(a)
            xs.append(_round(px))
            ys.append(_round(py))
        return ROI(self.label, min(xs), min(ys), max(xs), max(ys))

    def flipped(self, width, height, horizontal, vertical):
        """The ROI of a frame of ``width`` x ``height`` flipped left-right and/or up-down."""
        x0, x1, y0, y1 = self.x0, self.x1, self.y0, self.y1
        if horizontal:
            x0, x1 = width - 1 - x1, width - 1 - x0
        if vertical:
            y0, y1 = height - 1 - y1, height - 1 - y0
        return ROI(self.label, x0, y0, x1, y1)

    def clipped(self, width, height):
        """The part inside a ``width`` x ``height`` frame, or None when nothing is left."""
        x0, y0 = max(self.x0, 0), max(self.y0, 0)
        x1, y1 = min(self.x1, width - 1), min(self.y1, height - 1)
        if x1 < x0 or y1 < y0:
            return None
        return ROI(self.label, x0, y0, x1, y1)


@dataclass
class LabelMaps:
    """Pixel-wise labels of a batch: ``maps`` (N, H, W) int32 (-1 = ignore), ``rois``."""

    maps: np.ndarray
    rois: list = field(default_factory=list)

    def __post_init__(self):
        self.maps = np.asarray(self.maps, np.int32)
        if not self.rois:
            self.rois = [[] for _ in range(len(self.maps))]
        if len(self.rois) != len(self.maps):
            raise ValueError(f"{len(self.rois)} ROI lists for {len(self.maps)} label maps")

    def __len__(self):
        return len(self.maps)

    def __getitem__(self, index):
        """The maps and ROIs of a slice or index array of the batch."""
        idx = np.arange(len(self))[index]
        if np.ndim(idx) == 0:
            idx = np.array([idx])
        return LabelMaps(self.maps[idx], [self.rois[i] for i in idx])


def _round(x):
    """Half away from zero (N2D2's Utils::round)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def from_corners(label, x0, y0, x1, y1):
    """ROI of N2D2's RectangularROI(label, (x0, y0), width=x1-x0, height=y1-y0) built from
    real coordinates with (x1, y1) exclusive: every value truncated toward zero as C++
    converts them; None when the width or height is not positive (an empty ROI)."""
    left, top = int(x0), int(y0)
    width, height = int(x1 - x0), int(y1 - y0)
    if width <= 0 or height <= 0:
        return None
    return ROI(int(label), left, top, left + width - 1, top + height - 1)


def pad_crop_rois(rois, offset_x, offset_y, width, height):
    """N2D2's padCropLabelsROI: ROIs moved by (-offset_x, -offset_y) into a ``width`` x
    ``height`` frame; an ROI is dropped only when it lies entirely outside (N2D2's test
    on its bounding rectangle, bottom-right exclusive); the others are kept unclipped."""
    out = []
    for roi in rois:
        r = roi.shifted(-offset_x, -offset_y)
        if r.x0 > width or r.y0 > height or r.x1 + 1 < 0 or r.y1 + 1 < 0:
            continue
        out.append(r)
    return out


def label_map(height, width, fill, rois, margin=0, default=-1):
    """The int32 pixel labels of a ``height`` x ``width`` frame (N2D2's
    loadStimulusLabelsData + PolygonalROI::append): ``fill`` everywhere, then each ROI in
    order filled with its label (boundary included; later ROIs overwrite earlier ones; the
    part outside the frame clipped). With ``margin`` > 0, a band of -1 about ``margin``
    pixels wide is first drawn around each ROI, on pixels that still hold ``default``.
    Returns (map, warnings)."""
    labels = np.full((height, width), fill, np.int32)
    warnings = []
    for i, roi in enumerate(rois):
        x0 = max(0, roi.x0 - 2 * margin)
        y0 = max(0, roi.y0 - 2 * margin)
        w = min(width - x0, roi.width + 4 * margin)
        h = min(height - y0, roi.height + 4 * margin)
        if roi.width <= 0 or roi.height <= 0:
            continue
        if w <= 0 or h <= 0:
            warnings.append(f"ROI #{i} bounding rect outside image area: {roi.width}x"
                            f"{roi.height} from ({roi.x0}, {roi.y0})")
            continue
        pts = np.array([[roi.x0, roi.y0], [roi.x1, roi.y0], [roi.x1, roi.y1],
                        [roi.x0, roi.y1]], np.int32) - np.array([x0, y0], np.int32)
        area = labels[y0 : y0 + h, x0 : x0 + w]  # a view: drawing writes into ``labels``
        if margin > 0:
            band = area.copy()
            cv2.polylines(band, [pts], True, -1, 2 * margin)
            keep = area == default
            area[keep] = band[keep]
        cv2.fillPoly(area, [pts], int(roi.label))
    return labels, warnings
