"""Segmentation figures (spec §5.8, §7.7): a stimulus with the estimated per-pixel classes
overlaid beside its ground truth, the estimated boxes on the first and the true ROIs on the
second; one row per stimulus on a page.

Colours follow N2D2's target images: hue(t) = (180·t // n + LabelsHueOffset) mod 180 on
OpenCV's 0–179 hue scale; ``NoDisplayLabel`` pixels and masked ones are grey; brightness is
the estimated value (``EstimatedLabelsValueDisplay``); the overlay is 0.75·image + 0.25·colour
at the image's size. Drawn from plain arrays (the view in ``viewer.views`` reads the run).
"""

import textwrap
from dataclasses import dataclass, field

import numpy as np
from matplotlib.patches import Patch, Rectangle

from n2d2py.plots import _figure, _margins
from n2d2py.targets.display import colours, hue, overlay  # noqa: F401  (N2D2's colours)

BOX_COLOURS = {"right": "#2ca02c", "wrong class": "#e6b800", "duplicate": "#1f6f1f",
               "no match": "#d62728"}
TRUTH_COLOUR = "#1f77b4"


@dataclass
class SegmentationRow:
    """One stimulus: the two overlays and their boxes [(ROI, text, colour)]."""

    caption: str
    estimated: np.ndarray  # RGB overlay
    truth: np.ndarray
    estimated_boxes: list = field(default_factory=list)
    true_boxes: list = field(default_factory=list)


def _boxes(ax, boxes):
    for roi, text, colour in boxes:
        ax.add_patch(Rectangle((roi.x0 - 0.5, roi.y0 - 0.5), roi.width, roi.height, fill=False,
                               edgecolor=colour, linewidth=1.6))
        ax.text(roi.x0 - 0.5, roi.y0 - 1.5, text, color="white", fontsize=7, va="bottom",
                bbox={"facecolor": colour, "edgecolor": "none", "pad": 1, "alpha": 0.85})


def draw_segmentation(rows, title, legend):
    """Rows of [estimated overlay + boxes | ground truth + ROIs]; ``legend``: [(text, RGB)]."""
    h, w = rows[0].estimated.shape[:2]
    panel = 4.2
    height = panel * h / w
    fig = _figure(2 * panel + 0.6, len(rows) * (height + 0.3) + 1.7)
    _margins(fig, 0.15, 0.15, 0.55, 1.15, hspace=0.12, wspace=0.05)
    for r, row in enumerate(rows):
        for c, (image, boxes, what) in enumerate(((row.estimated, row.estimated_boxes, "estimated"),
                                                  (row.truth, row.true_boxes, "ground truth"))):
            ax = fig.add_subplot(len(rows), 2, 2 * r + c + 1)
            ax.imshow(image, interpolation="nearest")
            _boxes(ax, boxes)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{row.caption} — {what}", fontsize=8)
    handles = [Patch(facecolor=np.asarray(rgb) / 255, label=text) for text, rgb in legend]
    handles += [Patch(facecolor="none", edgecolor=c, label=f"box: {k}")
                for k, c in BOX_COLOURS.items()]
    handles.append(Patch(facecolor="none", edgecolor=TRUTH_COLOUR, label="true ROI"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=7,
               frameon=False)
    fig.suptitle(textwrap.fill(title, 110), fontsize=8.5)
    return fig


def box_colour(detection, expected):
    """Green: matched with the right class; yellow: wrong class; dark green: duplicate; red:
    no ground truth matched (N2D2's colours, §7.7)."""
    if detection.match is None:
        return BOX_COLOURS["no match"]
    if detection.duplicate:
        return BOX_COLOURS["duplicate"]
    return BOX_COLOURS["right" if detection.box.label == expected else "wrong class"]
