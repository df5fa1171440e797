"""Shared test helpers: INI sections without a network, the two ends of the tiny MNIST INI
files the end-to-end tests write, and a finite-difference gradient check (Chainer's
FunctionTestCase idea, in a few functions).

Gradients are checked in float64: parameters and inputs are cast to float64 copies (the cells
keep the dtype they are given), central differences use eps = 1e-6, and analytic and numeric
gradients must agree within rtol = 1e-5, atol = 1e-7.
"""

import io

import numpy as np

from n2d2py import backend
from n2d2py.cells.base import Port
from n2d2py.errors import Diagnostics
from n2d2py.ini import Section, parse_text

EPS = 1e-6
RTOL = 1e-5
ATOL = 1e-7

# LeNet's partial table from the N2D2 tutorial: rows = 6 input maps, columns = 16 outputs.
LENET_TABLE = """\
1 0 0 0 1 1 1 0 0 1 1 1 1 0 1 1 \\
1 1 0 0 0 1 1 1 0 0 1 1 1 1 0 1 \\
1 1 1 0 0 0 1 1 1 0 0 1 0 1 1 1 \\
0 1 1 1 0 0 1 1 1 1 0 0 1 0 1 1 \\
0 0 1 1 1 0 0 1 1 1 1 0 1 1 0 1 \\
0 0 0 1 1 1 0 0 1 1 1 1 0 1 1 1"""


def mnist_head(database="", sp=""):
    """The start of a tiny INI file on MNIST: ``DefaultModel=Frame``, a [database] of type
    MNIST_IDX_Database with the key lines ``database``, an [sp] with the key lines ``sp``."""
    return f"DefaultModel=Frame\n[database]\nType=MNIST_IDX_Database\n{database}[sp]\n{sp}"


def softmax_tail(last, fc="", config=None):
    """The end of a tiny classifier INI file: [fc1] (10 outputs on ``last``, with the key
    lines ``fc``), a [softmax] with its loss and its [softmax.Target]; with ``config`` (key
    lines, without the final newline), fc1 reads a [common.config] holding them."""
    section = "" if config is None else "ConfigSection=common.config\n"
    common = "" if config is None else f"[common.config]\n{config}\n"
    return (f"[fc1]\nInput={last}\nType=Fc\nNbOutputs=10\n{fc}{section}"
            "[softmax]\nInput=fc1\nType=Softmax\nNbOutputs=10\nWithLoss=1\n[softmax.Target]\n"
            + common)


def make_section(text, name, config=None, strict=False):
    """Section ``name`` of INI ``text``; ``sec.config`` is the chain ``config`` (list of names)."""
    diagnostics = Diagnostics(strict=strict, stream=io.StringIO())
    doc = parse_text(text, "m.ini", diagnostics)
    sec = Section(doc, [name])
    sec.config = Section(doc, list(config or []), label=name)
    return sec


def build(cls, text, name, shapes, config=None, seed=0, names=None, device=None):
    """Cell ``name`` of type ``cls`` from INI ``text`` on inputs of ``shapes``, initialised
    (on the CPU seeded by ``seed`` unless a ``device`` is given)."""
    sec = make_section(text, name, config)
    names = names or ["sp"] + [f"in{i}" for i in range(1, len(shapes))]
    device = device or backend.cpu(seed)
    cell = cls.from_section(sec, [Port(n, tuple(s)) for n, s in zip(names, shapes)], device)
    initialize(cell, device)
    return cell


def conv_cell(ini, shape, seed=0):
    """A Conv cell from the ``ini`` lines of its section, on an input of ``shape`` (C, H, W)."""
    from n2d2py.cells.conv import ConvCell

    return build(ConvCell, f"[conv]\nType=Conv\n{ini}\n[cfg]\n", "conv", [shape], ["cfg"],
                 seed=seed)


def learning_step(cell, x, dy):
    """(y, dx, weight gradient, bias gradient or None) of one forward and backward of
    ``cell`` on x with the output gradient dy, from zeroed gradients."""
    cell.zero_grad()
    y = cell.forward([x], train=True)
    dx = cell.backward(dy)[0]
    bias = None if cell.bias is None else cell.bias.grad.copy()
    return y, dx, cell.weights.grad.copy(), bias


def initialize(cell, device=None):
    for p in cell.params():
        p.initialize(device or cell.device)
    return cell


def to_float64(cell):
    for p in cell.params():
        p.data = p.data.astype(np.float64)
        p.grad = np.zeros_like(p.data)
    return cell


def numeric_grad(loss, array, eps=EPS):
    """d loss / d array by central differences, perturbing ``array`` in place."""
    grad = np.zeros_like(array)
    flat, gflat = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(cell, xs, train=False, seed=0, before_forward=None, skip_params=()):
    """Compare backward() with finite differences for every input and every parameter."""
    rng = np.random.default_rng(seed)
    to_float64(cell)
    xs = [np.asarray(x, dtype=np.float64).copy() for x in xs]

    def forward():
        if before_forward is not None:
            before_forward()
        return cell.forward(xs, train)

    dy = rng.standard_normal(forward().shape)

    def loss():
        return float((forward() * dy).sum())

    cell.zero_grad()
    forward()
    dxs = cell.backward(dy)
    analytic = {p.name: p.grad.copy() for p in cell.params()}
    for i, (x, dx) in enumerate(zip(xs, dxs)):
        np.testing.assert_allclose(dx, numeric_grad(loss, x), RTOL, ATOL, err_msg=f"input {i}")
    for p in cell.params():
        if p.name in skip_params:
            continue
        numeric = numeric_grad(loss, p.data)  # 0 on unmapped weights: forward uses W·mask
        np.testing.assert_allclose(analytic[p.name], numeric, RTOL, ATOL, err_msg=p.name)
    return dxs
