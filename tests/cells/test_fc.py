"""Fc: forward vs a plain matrix product, gradients, several inputs, config keys, rows."""

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py.cells.fc import FcCell
from n2d2py.errors import N2D2PyError

FC = "[fc]\nType=Fc\nNbOutputs=5\n{}\n[cfg]\n{}\n"


def test_forward_gradients_and_counts():
    cell = build(FcCell, FC.format("", ""), "fc", [(2, 3, 4)], ["cfg"])
    assert cell.out_shape == (5, 1, 1) and cell.weights.shape == (5, 24)
    assert (cell.weights.fan_in, cell.weights.fan_out) == (24, 5)
    x = np.random.default_rng(0).standard_normal((3, 2, 3, 4)).astype(np.float32)
    y = cell.forward([x])
    ref = x.reshape(3, -1) @ cell.weights.data.T + cell.bias.data
    np.testing.assert_allclose(y.reshape(3, 5), ref, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32
    assert cell.nb_synapses() == 5 * 24 + 5 and cell.nb_virtual_synapses() == 5 * 24
    check_gradients(cell, [x])


def test_two_inputs_are_flattened_then_concatenated():
    cell = build(FcCell, FC.format("", "NoBias=1"), "fc", [(2, 2, 2), (3, 1, 1)], ["cfg"])
    assert cell.bias is None and cell.weights.shape == (5, 11)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 2, 2, 2)), rng.standard_normal((2, 3, 1, 1))]
    flat = np.concatenate([x.reshape(2, -1) for x in xs], axis=1)
    np.testing.assert_allclose(cell.forward(xs).reshape(2, 5), flat @ cell.weights.data.T, 1e-5, 1e-6)
    dxs = check_gradients(cell, xs)
    assert [dx.shape for dx in dxs] == [x.shape for x in xs]


def test_rows_are_one_per_output_in_chw_order():
    cell = build(FcCell, FC.format("", ""), "fc", [(2, 1, 3)], ["cfg"])
    rows = cell.export_rows(cell.weights)
    assert rows.shape == (5, 6)
    cell.weights.data[...] = 0
    cell.import_rows(cell.weights, rows)
    np.testing.assert_array_equal(cell.weights.data, rows)


def test_back_propagate_zero_and_activation():
    text = FC.format("ActivationFunction=Tanh\nActivationFunction.Alpha=0.5", "BackPropagate=0")
    cell = build(FcCell, text, "fc", [(4, 1, 1)], ["cfg"])
    y = cell.forward([np.ones((1, 4, 1, 1), np.float32)], True)
    assert np.abs(y).max() < 1 and cell.backward(np.ones_like(y)) == [None]


@pytest.mark.parametrize(
    "config, message",
    [("DropConnect=0.5", "DropConnect other than 1.0"), ("WeightsExportFormat=CO", "only OC")],
)
def test_unsupported_config(config, message):
    with pytest.raises(N2D2PyError, match=message):
        build(FcCell, FC.format("", config), "fc", [(4, 1, 1)], ["cfg"])


def test_normalize_rescales_weight_rows_before_each_forward():
    """Normalize=1 (AM-Softmax's fc2): each output's weights are set to unit L2 norm in place
    (÷ sqrt(Σw² + 1e-6)) before the product; with NoBias the outputs are cosines."""
    cell = build(FcCell, FC.format("", "Normalize=1\nNoBias=1"), "fc", [(4, 1, 1)], ["cfg"])
    w = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32) * 3
    cell.weights.data[...] = w
    x = np.random.default_rng(4).standard_normal((2, 4, 1, 1)).astype(np.float32)
    y = cell.forward([x]).reshape(2, 5)
    unit = w / np.sqrt((w * w).sum(axis=1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(cell.weights.data, unit, rtol=1e-6)
    ref = torch.nn.functional.linear(torch.tensor(x.reshape(2, 4)),
                                     torch.nn.functional.normalize(torch.tensor(w), dim=1))
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-6)
    xn = x.reshape(2, 4) / np.linalg.norm(x.reshape(2, 4), axis=1, keepdims=True)
    assert np.abs(cell.forward([xn.reshape(2, 4, 1, 1)])).max() <= 1 + 1e-6  # cosines
    # backward sees the stored (already unit) weights as plain weights, as N2D2: the input
    # gradient by finite differences, the weight gradient is dy^T x
    check_gradients(cell, [x.astype(np.float64)], skip_params=("weights",))
    cell.zero_grad()
    dy = np.ones((2, 5, 1, 1))
    cell.forward([x.astype(np.float64)])
    cell.backward(dy)
    np.testing.assert_allclose(cell.weights.grad, dy.reshape(2, 5).T @ x.reshape(2, 4), 1e-12)
