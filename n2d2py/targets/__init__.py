"""Targets (spec §3.7, §5, §7): labels → output targets, the loss gradient, estimates, scores.

Importing the package registers every target type in ``TARGETS``.
"""

from n2d2py.targets.score import (  # noqa: F401
    METRICS,
    SCORE_COLUMNS,
    Scores,
    TargetScore,
    class_metrics,
    confusion_text,
    parse_labels_mapping,
    score_text,
)
