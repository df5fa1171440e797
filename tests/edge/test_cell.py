"""``Type=EdgeFc`` in a network: shapes, forward through the graph, INI errors on one line."""

import numpy as np
import pytest

from n2d2py import backend, network
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import parse_text

MODEL = """DefaultModel=Frame
[sp]
SizeX=4
SizeY=4
[fc1]
Input=sp
Type=Fc
NbOutputs=12
ActivationFunction=Rectifier
[edge]
Input=fc1
Type=EdgeFc
NbOutputs=3
{edge}
[edge.Target]
"""
GOOD = "NumWeights=5\nNeuronsPerClass=4\nLearningCompetition=0.2\nInputThreshold=0.1"


def build(edge):
    diag = Diagnostics(stream=open("/dev/null", "w"))
    doc = parse_text(MODEL.format(edge=edge), "t.ini", diag)
    return network.build(doc, backend.cpu(1))


def test_edge_cell_builds_and_scores_classes():
    net = build(GOOD)
    cell = net.cells["edge"]
    assert cell.out_shape == (3, 1, 1) and cell.params() == []
    assert (cell.layer.nb_inputs, cell.layer.neurons_per_class, cell.layer.num_weights) == (12, 4, 5)
    assert cell.layer.learning_competition == pytest.approx(0.2)
    rows = {r[0]: r for r in net.summary()}
    assert rows["edge"][1] == "EdgeFc" and rows["edge"][4] == 3 * 4 * 5
    net.initialize()
    x = np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32)
    outputs = net.forward(x)
    assert outputs["edge"].shape == (6, 3, 1, 1)
    assert (outputs["edge"] == -1).all()  # nothing learned yet
    bits = np.asarray(cell.binarize([outputs["fc1"]]))
    assert np.array_equal(bits, (outputs["fc1"].reshape(6, -1) > 0.1).astype(np.float32))
    cell.layer.fit(bits, [0, 1, 2, 0, 1, 2])
    scores = net.forward(x)["edge"].reshape(6, 3)
    assert (scores.max(axis=1) >= 0).all()


def test_edge_cell_has_no_gradient():
    net = build(GOOD)
    net.initialize()
    outputs = net.forward(np.zeros((2, 1, 4, 4), np.float32))
    with pytest.raises(N2D2PyError, match="-edge-learn"):
        net.backward({"edge": np.zeros_like(outputs["edge"])})


@pytest.mark.parametrize("edge, key, message", [
    ("NumWeights=13", "NumWeights", "between 1 and the 12 inputs of fc1, got 13"),
    ("NumWeights=0", "NumWeights", "between 1 and the 12 inputs"),
    ("NeuronsPerClass=2", "NumWeights", "missing"),
    ("NumWeights=5\nNeuronsPerClass=0", "NeuronsPerClass", "at least 1"),
    ("NumWeights=5\nLearningCompetition=1.5", "LearningCompetition", "between 0 and 1, got 1.5"),
    ("NumWeights=5\nLearningCompetition=lots", "LearningCompetition", "lots"),
    ("NumWeights=5\nInputThreshold=x", "InputThreshold", "x"),
])
def test_ini_errors_name_file_line_section_and_key(edge, key, message):
    with pytest.raises(N2D2PyError) as info:
        build(edge)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("t.ini:"), text
    assert f"[edge] {key}: " in text and message in text, text
