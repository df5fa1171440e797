"""N2D2 .syntxt weights and checkpoints."""

import json
import os
import re

import numpy as np
import pytest

from n2d2py import backend, weights
from n2d2py.cells.base import Cell, Param
from n2d2py.errors import N2D2PyError
from n2d2py.solvers import SGD
from n2d2py.weights import (
    collect_state,
    load_state,
    load_weights,
    restore_state,
    rng_state,
    save_state,
    save_weights,
    set_rng_state,
)


class NormalFiller:
    def fill(self, shape, fan_in, fan_out, rng):
        return rng.normal(size=shape).astype(np.float32)


class TinyCell(Cell):
    """2 outputs × 3 inputs, with a bias."""

    def __init__(self, name, device, seed=0):
        super().__init__(name, [], (2, 1, 1), device)
        self.w = Param("weights", (2, 3), NormalFiller(), "Weights", fan_in=3, fan_out=2)
        self.b = Param("bias", (2,), NormalFiller(), "Bias")
        device.reseed(seed)
        for p in (self.w, self.b):
            p.initialize(device)
            p.solver = SGD(learning_rate=0.1, momentum=0.9)

    def params(self):
        return [self.w, self.b]


@pytest.fixture
def cells():
    device = backend.cpu()
    return [TinyCell("fc1", device, seed=1), TinyCell("fc2", device, seed=2)]


def test_roundtrip_is_exact(tmp_path, cells):
    save_weights(cells, tmp_path)
    assert sorted(os.listdir(tmp_path)) == [  # the manifest of the save (atomic.py) first
        ".n2d2py-folder.json", "fc1_biases.syntxt", "fc1_weights.syntxt", "fc2_biases.syntxt", "fc2_weights.syntxt",
    ]
    assert len((tmp_path / "fc1_weights.syntxt").read_text().splitlines()) == 2
    assert len((tmp_path / "fc1_biases.syntxt").read_text().splitlines()) == 2
    fresh = [TinyCell("fc1", backend.cpu(), seed=7), TinyCell("fc2", backend.cpu(), seed=8)]
    assert load_weights({c.name: c for c in fresh}, tmp_path) == []
    for a, b in zip(cells, fresh):
        np.testing.assert_array_equal(a.w.data, b.w.data)
        np.testing.assert_array_equal(a.b.data, b.b.data)


def test_hand_written_file(tmp_path, cells):
    (tmp_path / "fc1_weights.syntxt").write_text("1 2.5 -3e-1 \n\n4 5 6\n")
    (tmp_path / "fc1_biases.syntxt").write_text("0.5\n-0.5\n")
    load_weights(cells[:1], tmp_path)
    np.testing.assert_array_equal(cells[0].w.data, np.float32([[1, 2.5, -0.3], [4, 5, 6]]))
    np.testing.assert_array_equal(cells[0].b.data, [0.5, -0.5])


@pytest.mark.parametrize(
    "content, message, line",
    [
        ("1 2 3\n4 5\n", "expected 3 values on line 2, got 2", 2),
        ("1 2 3\n", "expected 2 rows (one per output), got 1", 1),
        ("1 2 3\n4 5 6\n7 8 9\n", "expected 2 rows, found more", 3),
        ("1 2 x\n4 5 6\n", '"x" is not a number', 1),
        ("1 2 1_0\n4 5 6\n", '"1_0" is not a number', 1),
        ("1 2 3\0", "binary", None),
    ],
)
def test_corrupt_files(tmp_path, cells, content, message, line):
    save_weights(cells, tmp_path)
    before = cells[1].w.data.copy()
    (tmp_path / "fc1_weights.syntxt").write_text(content)
    cells[1].w.data[...] = 0
    with pytest.raises(N2D2PyError, match=re.escape(message)) as info:
        load_weights(list(reversed(cells)), tmp_path)  # fc2 first: must stay untouched
    assert info.value.file.endswith("fc1_weights.syntxt") and info.value.line == line
    assert not cells[1].w.data.any() and before.any()


def test_missing_file(tmp_path, cells):
    save_weights(cells[:1], tmp_path)
    with pytest.raises(N2D2PyError, match="-w-ignore") as info:
        load_weights(cells, tmp_path)
    assert info.value.file.endswith("fc2_weights.syntxt")
    missing = load_weights(cells, tmp_path, ignore_missing=True)
    assert [os.path.basename(p) for p in missing] == ["fc2_weights.syntxt", "fc2_biases.syntxt"]


# -- checkpoints ------------------------------------------------------------------------


def train_step(cells, rng):
    for cell in cells:
        for p in cell.params():
            p.grad[...] = rng.normal(size=p.shape).astype(np.float32)
            p.solver.update(p, 4)


def test_checkpoint_roundtrip_resumes_exactly(tmp_path, cells):
    rng = np.random.default_rng(5)
    train_step(cells, rng)
    params, solvers = collect_state(cells)
    save_state(tmp_path / "net_state", params, solvers, {"epoch": 3, "rng": rng_state(rng), "seed": 5})
    train_step(cells, rng)
    expected = [p.data.copy() for c in cells for p in c.params()]

    other = [TinyCell("fc1", backend.cpu(), seed=9), TinyCell("fc2", backend.cpu(), seed=9)]
    params, solvers, meta = load_state(tmp_path / "net_state")
    assert meta["epoch"] == 3 and meta["seed"] == 5
    restore_state(other, params, solvers)
    rng2 = np.random.default_rng(0)
    set_rng_state(rng2, meta["rng"])
    train_step(other, rng2)
    for e, p in zip(expected, [p for c in other for p in c.params()]):
        np.testing.assert_array_equal(e, p.data)
    assert other[0].w.solver.n == 2


def test_checkpoint_replaces_the_old_one_whole(tmp_path, cells):
    target = tmp_path / "net_state"
    params, solvers = collect_state(cells)
    save_state(target, params, solvers, {"step": 1})
    save_state(target, params, solvers, {"step": 2})
    assert sorted(os.listdir(tmp_path)) == ["net_state"]
    assert load_state(target)[2]["step"] == 2
    os.rename(target, tmp_path / ".net_state.old")  # interrupted between the two renames
    assert load_state(target)[2]["step"] == 2


def test_checkpoint_failure_keeps_the_previous(tmp_path, cells, monkeypatch):
    target = tmp_path / "net_state"
    params, solvers = collect_state(cells)
    save_state(target, params, solvers, {"step": 1})
    monkeypatch.setattr(weights.json, "dump", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_state(target, params, solvers, {"step": 2})
    assert load_state(target)[2]["step"] == 1
    assert sorted(os.listdir(tmp_path)) == ["net_state"]


@pytest.mark.parametrize("damage", ["no_json", "bad_json", "no_npz", "bad_npz", "other_format"])
def test_corrupt_checkpoint(tmp_path, cells, damage):
    target = tmp_path / "s"
    params, solvers = collect_state(cells)
    save_state(target, params, solvers, {})
    if damage == "no_json":
        os.remove(target / "state.json")
    elif damage == "bad_json":
        (target / "state.json").write_text("{ nope")
    elif damage == "no_npz":
        os.remove(target / "state.npz")
    elif damage == "bad_npz":
        (target / "state.npz").write_bytes(b"PK\3\4garbage")
    else:
        (target / "state.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(N2D2PyError, match="checkpoint"):
        load_state(target)


def test_missing_checkpoint_and_shape_mismatch(tmp_path, cells):
    with pytest.raises(N2D2PyError, match="checkpoint folder not found"):
        load_state(tmp_path / "none")
    params, solvers = collect_state(cells)
    params["fc1/weights"] = np.zeros((3, 3), dtype=np.float32)
    before = cells[1].w.data.copy()
    with pytest.raises(N2D2PyError, match=r"fc1/weights with shape \(3, 3\)"):
        restore_state(list(reversed(cells)), params, solvers)
    np.testing.assert_array_equal(before, cells[1].w.data)
    del params["fc1/weights"]
    with pytest.raises(N2D2PyError, match="no values for fc1/weights"):
        restore_state(cells, params, solvers)
