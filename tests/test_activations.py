"""Activations (spec §3.4): values, finite-difference derivatives, INI parameters, errors.

Derivatives are checked in float64 by central differences (eps 1e-6, rtol 1e-6, atol 1e-8),
on points kept away from the kinks of Rectifier and Saturation.
"""

import io

import numpy as np
import pytest

from n2d2py import activations as act
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text

EPS = 1e-6


def section(body):
    doc = parse_text(f"[conv]\n{body}\n", "m.ini", Diagnostics(stream=io.StringIO()))
    return Section(doc, ["conv"])


def points(kinks=(0.0,)):
    x = np.random.default_rng(0).uniform(-4, 4, 200)
    for k in kinks:
        x = x[np.abs(x - k) > 1e-3]
    return x


CASES = [
    (act.Linear(), lambda x: x),
    (act.Rectifier(), lambda x: np.maximum(x, 0)),
    (act.Rectifier(0.1), lambda x: np.where(x > 0, x, 0.1 * x)),
    (act.Rectifier(0.2, 1.5), lambda x: np.where(x > 0, np.minimum(x, 1.5), 0.2 * x)),
    (act.Tanh(), np.tanh),
    (act.Tanh(0.5), lambda x: np.tanh(0.5 * x)),
    (act.TanhLeCun(), lambda x: 1.7159 * np.tanh(2 * x / 3)),
    (act.Logistic(), lambda x: 1 / (1 + np.exp(-x))),
    (act.Saturation(2.0), lambda x: np.clip(x, -2, 2)),
    (act.Softplus(), lambda x: np.log1p(np.exp(x))),
    (act.Swish(), lambda x: x / (1 + np.exp(-x))),
]


@pytest.mark.parametrize("fn, ref", CASES, ids=lambda c: repr(c) if isinstance(c, act.Activation) else "")
def test_values_and_derivatives(fn, ref):
    x = points((0.0, 1.5, -2.0, 2.0))
    np.testing.assert_allclose(fn.forward(x), ref(x), rtol=1e-12, atol=1e-12)
    dy = np.random.default_rng(1).standard_normal(x.shape)
    fn.forward(x)
    analytic = fn.backward(dy)
    numeric = (ref(x + EPS) - ref(x - EPS)) / (2 * EPS) * dy
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fn, ref", CASES)
def test_float32_in_float32_out(fn, ref):
    x = points().astype(np.float32)
    y = fn.forward(x)
    assert y.dtype == np.float32 and fn.backward(np.ones_like(x)).dtype == np.float32


def test_logistic_with_loss_passes_dy_and_is_stable():
    fn = act.LogisticWithLoss()
    x = np.array([-1000.0, 0.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(fn.forward(x), [0, 0.5, 1])
    dy = np.array([1.0, 2.0, 3.0], np.float32)
    assert fn.backward(dy) is dy


def test_make_activation_reads_parameters():
    assert act.make_activation(section("Type=Conv")) is None
    fn = act.make_activation(section("ActivationFunction=Rectifier\nActivationFunction.LeakSlope=0.01\n"
                                     "ActivationFunction.Clipping=6"))
    assert (fn.leak_slope, fn.clipping) == (0.01, 6.0)
    assert act.make_activation(section("ActivationFunction=Tanh\nActivationFunction.Alpha=2")).alpha == 2
    assert act.make_activation(section("ActivationFunction=Saturation\n"
                                       "ActivationFunction.Threshold=3")).threshold == 3
    assert repr(act.make_activation(section("ActivationFunction=Linear"))) == "Linear()"


def test_unknown_activation_is_located():
    with pytest.raises(N2D2PyError, match=r"m.ini:3: \[conv\] ActivationFunction: unknown activation "
                                          r"'ReLU'.*Rectifier"):
        act.make_activation(section("Type=Conv\nActivationFunction=ReLU"))
    with pytest.raises(N2D2PyError, match="Threshold: must be positive"):
        act.make_activation(section("ActivationFunction=Saturation\nActivationFunction.Threshold=0"))


@pytest.mark.parametrize("fn, ref", CASES, ids=lambda c: repr(c) if isinstance(c, act.Activation) else "")
def test_pieces_on_the_worker_threads_are_the_whole_expression(monkeypatch, fn, ref):
    """``chunked`` (an activation's numpy expressions piece by piece on the worker threads)
    gives the values of the expression on the whole arrays, float32 and float64."""
    from n2d2py import backend

    for dtype in (np.float32, np.float64):
        x = (np.random.default_rng(2).standard_normal((5, 3, 7, 11)) * 6).astype(dtype)
        x.flat[:4] = [0.0, -0.0, 90.0, -90.0]
        dy = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
        whole = (fn.forward(x).copy(), fn.backward(dy).copy())  # fewer than 2·CHUNK values
        monkeypatch.setattr(act, "CHUNK", 64)
        monkeypatch.setattr(backend, "_workers", backend._Pool(3))
        monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
        pieces = (fn.forward(x), fn.backward(dy))
        monkeypatch.undo()
        for a, b in zip(whole, pieces):
            assert a.dtype == dtype and np.array_equal(a, b)


def test_sigmoid_selects_by_sign_bits_as_where_would():
    x = np.concatenate([np.random.default_rng(4).standard_normal(1000) * 30,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45]])
    for dtype in (np.float32, np.float64):
        v = x.astype(dtype)
        e = np.exp(-np.abs(v))
        with np.errstate(invalid="ignore"):
            expected = np.where(v >= 0, 1 / (1 + e), e / (1 + e))
        assert np.array_equal(act._sigmoid(v), expected, equal_nan=True)
