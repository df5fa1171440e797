"""Transformation (N2D2: TransformationCell, spec §6.2): a data transformation applied to a
layer's outputs, per stimulus; no gradient. ``Transformation=`` names the transformation and its
keys sit in the same section. Only ``ThresholdTransformation`` is supported (keys
``Threshold``, ``Operation`` [Binary], ``MaxValue`` [1.0], ``OtsuMethod`` [0]); the others
(``MorphologyTransformation``, …) are refused by name.
"""

from n2d2py.cells.threshold import OPERATIONS, Thresholding, check_single_input
from n2d2py.registry import CELLS

SUPPORTED = ("ThresholdTransformation",)


@CELLS.register("Transformation")
class TransformationCell(Thresholding):
    transformation = "ThresholdTransformation"  # the only one supported

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_single_input(sec, inputs)
        kind = sec.get_str("Transformation")
        if kind not in SUPPORTED:
            raise sec.error("Transformation", f"{kind} in a Transformation cell is not supported "
                            f"yet (supported: {', '.join(SUPPORTED)})")
        if sec.get_bool("OtsuMethod", False):
            raise sec.error("OtsuMethod", "OtsuMethod=1 (Otsu's threshold) is not supported yet")
        return cls(sec.name, inputs, device, sec.get_float("Threshold"),
                   sec.get_enum("Operation", OPERATIONS, "Binary"), sec.get_float("MaxValue", 1.0))
