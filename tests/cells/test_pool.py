"""Pool: max/average vs nested loops (one-to-one and general maps), gradients, errors."""

import numpy as np
import pytest
from harness import build, check_gradients

from n2d2py.cells.pool import PoolCell
from n2d2py.errors import N2D2PyError


def naive_pool(x, mask, pool, stride, pad, pooling):
    """Output o: max or mean over its mapped channels × window (padding counted as 0 in mean)."""
    n, c, h, w = x.shape
    fill = -np.inf if pooling == "Max" else 0.0
    xp = np.full((n, c, h + 2 * pad[0], w + 2 * pad[1]), fill)
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + w] = x
    ho = (h + 2 * pad[0] - pool[0] + stride[0]) // stride[0]
    wo = (w + 2 * pad[1] - pool[1] + stride[1]) // stride[1]
    y = np.zeros((n, mask.shape[0], ho, wo))
    for o in range(mask.shape[0]):
        chans = np.flatnonzero(mask[o])
        for i in range(ho):
            for j in range(wo):
                r, s = i * stride[0], j * stride[1]
                block = xp[:, chans, r : r + pool[0], s : s + pool[1]].reshape(n, -1)
                y[:, o, i, j] = block.max(axis=1) if pooling == "Max" else block.mean(axis=1)
    return y


def pool_ini(extra, outputs=3, pooling="Max"):
    return f"[pool]\nType=Pool\nNbOutputs={outputs}\nPooling={pooling}\n{extra}\n"


CASES = [
    ("PoolWidth=2\nPoolHeight=2\nStride=2", (2, 2), (2, 2), (0, 0)),
    ("PoolDims=3 2\nStrideX=2\nPadding=1", (2, 3), (1, 2), (1, 1)),
    ("PoolSize=3\nStride=1", (3, 3), (1, 1), (0, 0)),
]


@pytest.mark.parametrize("pooling", ["Max", "Average"])
@pytest.mark.parametrize("keys, pool, stride, pad", CASES)
def test_one_to_one_matches_loops_and_gradients(pooling, keys, pool, stride, pad):
    cell = build(PoolCell, pool_ini(keys + "\nMapping.Size=1", pooling=pooling), "pool", [(3, 7, 6)])
    assert cell.one_to_one and cell.params() == []
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6)).astype(np.float32)
    y = cell.forward([x])
    assert y.dtype == np.float32 and y.shape[1:] == cell.out_shape
    ref = naive_pool(x, np.eye(3, dtype=bool), pool, stride, pad, pooling)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    check_gradients(cell, [x])


@pytest.mark.parametrize("pooling", ["Max", "Average"])
def test_general_maps_match_loops_and_gradients(pooling):
    # Default (no Mapping key): every output pools over all channels.
    cell = build(PoolCell, pool_ini("PoolSize=2\nPadding=1", 2, pooling), "pool", [(3, 5, 5)])
    assert not cell.one_to_one
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    ref = naive_pool(x, np.ones((2, 3), dtype=bool), (2, 2), (1, 1), (1, 1), pooling)
    np.testing.assert_allclose(cell.forward([x]), ref, 1e-6)
    check_gradients(cell, [x])
    # Explicit partial map over two inputs: output 0 ← a0, b1; output 1 ← a0, b0, b1; 2 ← b0.
    text = pool_ini("PoolSize=2\nStride=2\nMapping(a)=1 1 0\nMapping(b)=0 1 1 1 1 0", 3, pooling)
    cell = build(PoolCell, text, "pool", [(1, 4, 6), (2, 4, 6)], names=["a", "b"])
    mask = np.array([[1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(cell.mask, mask)
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((2, 1, 4, 6)), rng.standard_normal((2, 2, 4, 6))]
    ref = naive_pool(np.concatenate(xs, axis=1), mask, (2, 2), (2, 2), (0, 0), pooling)
    np.testing.assert_allclose(cell.forward(xs), ref, 1e-6)
    check_gradients(cell, xs)
    assert cell.nb_virtual_synapses() == 6 * 4 * 2 * 3


def test_unconnected_output_is_zero_and_warned():
    text = pool_ini("PoolSize=2\nMapping(sp)=1 0 1 0", 2)
    cell = build(PoolCell, text, "pool", [(2, 4, 4)])
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 4))
    y = cell.forward([x])
    assert (y[:, 1] == 0).all()
    check_gradients(cell, [x])


def test_nb_outputs_differing_from_channels_with_canvas():
    cell = build(PoolCell, pool_ini("PoolSize=2\nStride=2\nMapping.Size=1", 4), "pool", [(2, 4, 4)])
    np.testing.assert_array_equal(cell.mask, [[1, 0], [0, 1], [1, 0], [0, 1]])
    assert cell.out_shape == (4, 2, 2)


def test_errors():
    with pytest.raises(N2D2PyError, match="Pooling: required key is missing"):
        build(PoolCell, "[pool]\nType=Pool\nNbOutputs=1\nPoolSize=2\n", "pool", [(1, 4, 4)])
    with pytest.raises(N2D2PyError, match="expected one of Max, Average"):
        build(PoolCell, pool_ini("PoolSize=2", 1, "Min"), "pool", [(1, 4, 4)])
    with pytest.raises(N2D2PyError, match=r"PoolWidth: pool 2×5 .* 4×4"):
        build(PoolCell, pool_ini("PoolWidth=5\nPoolHeight=2", 1), "pool", [(1, 4, 4)])
    with pytest.raises(N2D2PyError, match="PoolDims: missing PoolDims"):
        build(PoolCell, pool_ini("Stride=2", 1), "pool", [(1, 4, 4)])
