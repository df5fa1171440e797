"""Segmentation overlays (N2D2's colours, spec §5.8) and the figure that shows them."""

import cv2
import numpy as np

from n2d2py.data.rois import ROI
from n2d2py.targets.boxes import Detection
from n2d2py.viewer import segmentation as seg


def hsv_of(rgb):
    return cv2.cvtColor(np.asarray(rgb, np.uint8).reshape(1, 1, 3), cv2.COLOR_RGB2HSV)[0, 0]


def test_hue_per_class_with_offset_no_display_and_masked_grey():
    labels = np.array([[0, 1, -1, 1]])
    shown = np.array([[True, True, True, False]])
    rgb = seg.colours(labels, 2, offset=90, no_display=0, shown=shown)
    face = hsv_of(rgb[0, 1])
    assert abs(int(face[0]) - 0) <= 1 and face[1] == 255 and face[2] == 255  # (180·1//2+90)%180
    background = hsv_of(rgb[0, 0])  # NoDisplayLabel: its hue, almost no saturation, half value
    assert background[1] <= 12 and abs(int(background[2]) - 127) <= 1
    for grey in (rgb[0, 2], rgb[0, 3]):  # ignored, masked
        assert tuple(grey) == (127, 127, 127)
    assert seg.hue(1, 3, 0) == 60 and seg.hue(2, 3, 150) == 90


def test_values_set_the_brightness_and_the_overlay_blends():
    rgb = seg.colours(np.array([[1, 1]]), 2, values=np.array([[1.0, 0.5]]))
    assert hsv_of(rgb[0, 0])[2] == 255 and abs(int(hsv_of(rgb[0, 1])[2]) - 127) <= 1
    image = np.array([[0.0, 1.0], [0.5, 1.0]])
    out = seg.overlay(image, np.full((1, 1, 3), 200, np.uint8))  # resized to the image
    assert out.shape == (2, 2, 3)
    assert out[0, 0, 0] == 50 and out[0, 1, 0] == int(0.75 * 255 + 50)


def test_box_colours_and_figure():
    truth = ROI(1, 2, 2, 9, 9)
    right = Detection(ROI(1, 2, 2, 9, 9), 5.0, match=truth)
    wrong = Detection(ROI(0, 2, 2, 9, 9), 5.0, match=truth)
    lone = Detection(ROI(1, 20, 2, 25, 9), 1.0)
    assert seg.box_colour(right, 1) == seg.BOX_COLOURS["right"]
    assert seg.box_colour(wrong, 1) == seg.BOX_COLOURS["wrong class"]
    assert seg.box_colour(lone, None) == seg.BOX_COLOURS["no match"]
    image = np.zeros((24, 32, 3), np.uint8)
    row = seg.SegmentationRow("test #0", image, image, [(right.box, "face 5", "g")],
                              [(truth, "M-30", seg.TRUTH_COLOUR)])
    fig = seg.draw_segmentation([row, row], "a title", [("0 background", (127, 127, 127))])
    assert len(fig.axes) == 4 and len(fig.axes[0].patches) == 1 and fig.axes[1].texts
