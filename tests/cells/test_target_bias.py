"""TargetBias (AM-Softmax's margin): learning adds Bias at the marked outputs above −Bias."""

import numpy as np
import pytest
from harness import build

from n2d2py.cells.target_bias import TargetBiasCell
from n2d2py.errors import N2D2PyError

TEXT = "[m]\nType=TargetBias\nNbOutputs=4\nBias=-0.35\n"


def test_margin_only_while_learning_at_marked_outputs_above_minus_bias():
    cell = build(TargetBiasCell, TEXT, "m", [(4, 1, 1)])
    x = np.array([[0.9, 0.2, 0.5, -0.1], [0.3, 0.36, 0.1, 0.0]], np.float32).reshape(2, 4, 1, 1)
    marks = np.zeros_like(x)
    marks[0, 0] = marks[1, 1] = 1.0
    marks[0, 2] = 1.0  # a second mark in row 0, above the threshold
    marks[1, 0] = 1.0  # 0.3 < 0.35: unchanged
    cell.set_marks(marks)
    y = cell.forward([x], train=True).reshape(2, 4)
    expected = x.reshape(2, 4).copy()
    expected[0, 0] -= 0.35
    expected[0, 2] -= 0.35
    expected[1, 1] -= 0.35
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert (cell.forward([x], train=True) == x).all()  # marks are used once
    cell.set_marks(marks)
    assert (cell.forward([x], train=False) == x).all()  # inference: identity
    dy = np.random.default_rng(0).standard_normal(x.shape)
    assert (cell.backward(dy)[0] == dy).all()  # backward: identity
    assert cell.params() == [] and cell.takes_no_loss


def test_keys():
    with pytest.raises(N2D2PyError, match="Bias: required key is missing"):
        build(TargetBiasCell, "[m]\nType=TargetBias\nNbOutputs=4\n", "m", [(4, 1, 1)])
    with pytest.raises(N2D2PyError, match="NbOutputs: must equal the 4"):
        build(TargetBiasCell, TEXT.replace("=4", "=3"), "m", [(4, 1, 1)])


AM_SOFTMAX = """[sp]
SizeX=1
SizeY=1
NbChannels=6
BatchSize=3
[norm]
Input=sp
Type=Normalize
NbOutputs=6
Norm=L2
[fc]
Input=norm
Type=Fc
NbOutputs=4
ActivationFunction=Linear
ConfigSection=fc.config
[fc.config]
Normalize=1
NoBias=1
[m]
Input=fc
Type=TargetBias
NbOutputs=4
Bias=-0.35
[m.Target]
Type=Target
[s]
Input=m
Type=ElemWise
NbOutputs=4
Operation=Sum
Weights=30.0
[softmax]
Input=s
Type=Softmax
NbOutputs=4
WithLoss=1
[softmax.Target]
"""


def test_am_softmax_head_matches_torch():
    """Normalize → Fc(Normalize=1, NoBias) → TargetBias → ×30 → softmax, as in N2D2's
    AM-Softmax model: outputs and the Fc weight gradient against torch autograd of
    30·(cos θ − 0.35·[target and cos θ > 0.35]) with cross-entropy."""
    import torch

    from n2d2py import backend, network
    from n2d2py.ini import parse_text

    net = network.build(parse_text(AM_SOFTMAX, "am.ini"), backend.cpu(0), load_data=False)
    net.initialize()
    assert [t[0] for t in net.targets] == ["softmax.Target", "m.Target"]  # learning one first
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 1, 1)).astype(np.float32)
    labels = np.array([0, 2, 3])
    net.cells["fc"].weights.data[...] = rng.standard_normal((4, 6)).astype(np.float32)
    x[0, :, 0, 0] = net.cells["fc"].weights.data[0] + 0.1  # near its class: cos θ > 0.35
    x[1, :, 0, 0] = -net.cells["fc"].weights.data[2]  # far from its class: no margin
    net.zero_grad()
    outputs = net.forward(x, train=True, labels=labels)
    grads, losses = net.loss_grads(outputs, labels)
    assert losses[1] == 0.0  # the margin's target adds no loss
    net.backward(grads)
    w = torch.tensor(net.cells["fc"].weights.data.copy(), requires_grad=True)  # unit rows now
    cos = torch.nn.functional.normalize(torch.tensor(x.reshape(3, 6)), dim=1) @ w.T
    onehot = torch.nn.functional.one_hot(torch.tensor(labels), 4).float()
    margin = onehot * (cos > 0.35).float()
    assert margin[0, 0] == 1 and margin[1].sum() == 0
    logits = 30 * (cos - 0.35 * margin)
    torch.nn.functional.cross_entropy(logits, torch.tensor(labels), reduction="sum").backward()
    np.testing.assert_allclose(outputs["softmax"].reshape(3, 4),
                               torch.softmax(logits, 1).detach().numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.cells["fc"].weights.grad, w.grad.numpy(), rtol=1e-4,
                               atol=1e-5)
    inference = net.forward(x)["s"].reshape(3, 4)  # no margin when not learning
    np.testing.assert_allclose(inference, 30 * cos.detach().numpy(), rtol=1e-4, atol=1e-4)
