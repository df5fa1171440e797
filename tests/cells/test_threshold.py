"""Threshold and Transformation cells: N2D2's five operations (strict >), no gradient, keys."""

import numpy as np
import pytest
from harness import build, make_section

from n2d2py.cells.base import Port
from n2d2py.cells.threshold import ThresholdCell
from n2d2py.cells.transformation import TransformationCell
from n2d2py import backend
from n2d2py.errors import N2D2PyError

X = np.array([[[[0.2, 0.75, 0.8, 1.5]]]], np.float32)
EXPECTED = {
    "Binary": [0, 0, 2, 2],
    "BinaryInverted": [2, 2, 0, 0],
    "Truncate": [0.2, 0.75, 0.75, 0.75],
    "ToZero": [0, 0, 0.8, 1.5],
    "ToZeroInverted": [0.2, 0.75, 0, 0],
}


@pytest.mark.parametrize("operation", sorted(EXPECTED))
def test_threshold_operations_from_the_config_section(operation):
    text = f"[t]\nType=Threshold\nNbOutputs=1\nThreshold=0.75\n[cfg]\nOperation={operation}\nMaxValue=2\n"
    cell = build(ThresholdCell, text, "t", [(1, 1, 4)], ["cfg"])
    y = cell.forward([X])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[0, 0, 0], EXPECTED[operation], rtol=1e-6)
    assert cell.backward(np.ones_like(y)) == [None]


@pytest.mark.parametrize("operation", sorted(EXPECTED))
def test_threshold_transformation(operation):
    text = (f"[t]\nType=Transformation\nNbOutputs=1\nTransformation=ThresholdTransformation\n"
            f"Operation={operation}\nThreshold=0.75\nMaxValue=2\n")
    cell = build(TransformationCell, text, "t", [(1, 1, 4)])
    np.testing.assert_allclose(cell.forward([X])[0, 0, 0], EXPECTED[operation], rtol=1e-6)


def test_operation_in_the_layer_section_is_honoured_with_a_warning():
    # N2D2's IMDBWIKI.ini writes Operation=ToZero in the layer section (N2D2 ignores it there)
    sec = make_section("[t]\nType=Threshold\nNbOutputs=1\nOperation=ToZero\nThreshold=0.75\n", "t")
    cell = ThresholdCell.from_section(sec, [Port("sp", (1, 1, 4))], backend.cpu(0))
    assert cell.operation == "ToZero"
    assert any("ConfigSection only" in m for m in sec.doc.diagnostics.messages)
    np.testing.assert_allclose(cell.forward([X])[0, 0, 0], EXPECTED["ToZero"], rtol=1e-6)


def test_default_is_binary_with_max_value_one():
    cell = build(ThresholdCell, "[t]\nType=Threshold\nNbOutputs=1\nThreshold=0.75\n", "t",
                 [(1, 1, 4)])
    np.testing.assert_array_equal(cell.forward([X])[0, 0, 0], [0, 0, 1, 1])


@pytest.mark.parametrize("cls, text, message", [
    (ThresholdCell, "[t]\nType=Threshold\nNbOutputs=2\nThreshold=0.5\n", "must equal the 1 input"),
    (ThresholdCell, "[t]\nType=Threshold\nNbOutputs=1\n", "Threshold: required key is missing"),
    (ThresholdCell, "[t]\nType=Threshold\nNbOutputs=1\nThreshold=0.5\nOperation=ToOne\n",
     "Operation"),
    (ThresholdCell, "[t]\nType=Threshold\nNbOutputs=1\nThreshold=0.5\nInputOffsetX=2\n",
     "not supported yet"),
    (TransformationCell, "[t]\nType=Transformation\nNbOutputs=1\n"
     "Transformation=MorphologyTransformation\n", "MorphologyTransformation in a Transformation"),
    (TransformationCell, "[t]\nType=Transformation\nNbOutputs=1\n"
     "Transformation=ThresholdTransformation\nThreshold=0.5\nOtsuMethod=1\n", "Otsu"),
])
def test_errors(cls, text, message):
    with pytest.raises(N2D2PyError, match=message):
        build(cls, text, "t", [(1, 3, 3)])


def test_two_inputs_refused():
    with pytest.raises(N2D2PyError, match="exactly one input"):
        build(ThresholdCell, "[t]\nType=Threshold\nNbOutputs=1\nThreshold=0.5\n", "t",
              [(1, 3, 3), (1, 3, 3)])
