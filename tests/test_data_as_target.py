"""DataAsTarget: N2D2's distribution-weighted loss and gradient, the MSE score and the value
confusion matrix, each against a plain element-by-element reimplementation; INI errors."""

import math

import numpy as np
import pytest

from n2d2py import backend, network
from n2d2py.data_as_target import DataAsTarget, distribution_weighted_error, quantize
from n2d2py.errors import N2D2PyError
from n2d2py.ini import parse_text


@pytest.fixture(autouse=True)
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path / "none"))


def n2d2_round(v):
    return math.copysign(math.floor(abs(v) + 0.5), v)


def reference_loss(y, t, bins=20, lo=-1.0, hi=1.0):
    """Cell_Frame_Top::applyLossDistribWeighted, one element at a time."""
    flat_t, flat_y = t.reshape(-1), y.reshape(-1)
    index = [min(max(int(n2d2_round((bins - 1) * (v - lo) / (hi - lo))), 0), bins - 1)
             for v in flat_t]
    counts = [index.count(k) for k in range(bins)]
    errors = np.array([(tv - yv) / counts[k] for tv, yv, k in zip(flat_t, flat_y, index)])
    return errors.reshape(t.shape), float((errors ** 2).sum()) / t.shape[0]


def test_loss_and_gradient_match_the_element_loop():
    rng = np.random.default_rng(0)
    t = np.where(rng.random((3, 1, 5, 4)) < 0.7, 0.0, rng.random((3, 1, 5, 4)))
    t[0, 0, 0, :3] = [-1.5, 1.2, 1.0]  # outside [-1, 1]: first and last bins
    y = rng.standard_normal(t.shape)
    error, loss = distribution_weighted_error(y, t)
    ref_error, ref_loss = reference_loss(y, t)
    np.testing.assert_allclose(error, ref_error, rtol=1e-12)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert quantize(np.array([0.5 / 19 * 2 - 1 + 1e-12]), 20, -1, 1).tolist() == [1]  # half up
    assert quantize(np.array([-3.0, 3.0]), 10, 0, 1).tolist() == [0, 9]


MODEL = """[database]
Type=MNIST_IDX_Database
[sp]
SizeX=4
SizeY=4
BatchSize=2
[fc]
Input=sp
Type=Fc
NbOutputs=16
[r]
Input=fc
Type=Reshape
NbOutputs=1
Dims=4 4 1
[r.Target]
DataAsTarget=1
{}
"""


def build(extra="", model=MODEL):
    return network.build(parse_text(model.format(extra), "ae.ini"), backend.cpu(0),
                         load_data=False)


def test_through_the_network_score_and_confusion():
    net = build("ConfusionQuantSteps=4")
    net.initialize()
    target = net.targets[0][2]
    assert isinstance(target, DataAsTarget) and target.nb_targets == 4
    x = np.random.default_rng(1).random((2, 1, 4, 4)).astype(np.float32)
    outputs = net.forward(x)
    y = outputs["r"]
    dy, loss = target.loss_grad(y, np.zeros(2, np.int64))
    ref_error, ref_loss = reference_loss(y.astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(dy, -ref_error, rtol=1e-5, atol=1e-8)  # dL/dy = y − t, weighted
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    target.process("test", y, np.zeros(2, np.int64))
    scores = target.scores("test")
    mse = ((y - x) ** 2).reshape(2, -1).mean(axis=1)
    assert scores.success_rate() == pytest.approx(mse.mean(), rel=1e-6)
    expected = np.zeros((4, 4), np.int64)
    for tv, ev in zip(x.reshape(-1), y.reshape(-1)):
        bin_t, bin_e = (min(max(int(n2d2_round(3 * v)), 0), 3) for v in (tv, ev))
        expected[bin_t, bin_e] += 1
    np.testing.assert_array_equal(scores.matrix, expected)
    assert target.output_names() == ["0", "0.333", "0.667", "1"]


@pytest.mark.parametrize("extra, message", [
    ("TopN=2", "TopN has no meaning with DataAsTarget"),
    ("ConfusionQuantSteps=1", "at least 2"),
    ("ConfusionRangeMax=-1", "must exceed ConfusionRangeMin"),
])
def test_key_errors(extra, message):
    with pytest.raises(N2D2PyError, match=message):
        build(extra)


def test_output_must_have_the_input_size():
    with pytest.raises(N2D2PyError, match=r"wrong target size.*r \(1x2x8,.*\(1x4x4\)") as info:
        build(model=MODEL.replace("Dims=4 4 1", "Dims=8 2 1"))
    assert info.value.section == "r.Target"
