"""Targets (spec §3.7, §5, §7): labels → output targets, the loss gradient, estimates, scores.

Modules: ``mapping`` (LabelsMapping files), ``metrics`` (confusion matrices, Scores),
``spatial`` (per-pixel targets, error and success), ``score`` (TargetScore), ``boxes``
(connected components, filters, merging, matching), ``rois`` (TargetROIs). Importing the
package registers every target type in ``TARGETS``.
"""

from n2d2py.targets.mapping import parse_labels_mapping  # noqa: F401
from n2d2py.targets.metrics import (  # noqa: F401
    METRICS,
    SCORE_COLUMNS,
    Scores,
    class_metrics,
    confusion_text,
    score_text,
)
from n2d2py.targets.score import TargetScore  # noqa: F401
from n2d2py.targets.links import link_targets  # noqa: F401
from n2d2py.targets.rois import TargetROIs  # noqa: F401  (registers TargetROIs)
