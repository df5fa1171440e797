"""N2D2's Faster R-CNN cells (``IMDBWIKI_FasterRCNN.ini``), refused by name: anchors over a
feature map, region proposals, ROI pooling. Their targets (``TargetBBox``, ``TargetRP``) are
refused in ``n2d2py.targets.rois``."""

from n2d2py.registry import CELLS

CELLS.refuse("Anchor", "Faster R-CNN anchors")
CELLS.refuse("RP", "Faster R-CNN region proposals")
CELLS.refuse("ROIPooling", "pooling of region proposals")
