"""Regions of interest (N2D2's rectangular ROIs) and the pixel-wise labels made from them.

``ROI`` is one labelled rectangle with INCLUSIVE corners (x0, y0)-(x1, y1) in the pixel
coordinates of the frame it belongs to (N2D2's RectangularROI). ``LabelMaps`` is what the
stimuli provider returns in place of the 1-D label array when ``CompositeStimuli=1``:
``maps`` (N, SizeY, SizeX) int32 on the host (-1 = ignore) and ``rois`` (one list of ROIs per
stimulus, in the transformed frame's coordinates).
"""

from dataclasses import dataclass, field

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
        """The ROI of a frame rescaled by (sx, sy): corners scaled as N2D2 does (truncated)."""
        return ROI(self.label, int(self.x0 * sx), int(self.y0 * sy),
                   int(self.x1 * sx), int(self.y1 * sy))

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
