"""BatchNorm: learning/test forward vs PyTorch, moving averages, gradients, keys, weight files."""

import os

import numpy as np
import pytest
import torch
from harness import build, check_gradients

from n2d2py import backend
from n2d2py.cells.base import Port
from n2d2py.cells.batchnorm import BatchNormCell
from n2d2py.errors import N2D2PyError
from n2d2py.weights import collect_state, load_weights, restore_state, save_weights

BN = "[bn]\nType=BatchNorm\nNbOutputs={c}\n{extra}\n[bn.config]\n{config}\n"


def bn(c=3, extra="", config="", shapes=None):
    text = BN.format(c=c, extra=extra, config=config)
    return build(BatchNormCell, text, "bn", shapes or [(c, 4, 5)], ["bn.config"])


def randomize(cell, seed=0):
    rng = np.random.default_rng(seed)
    c = cell.out_shape[0]
    cell.scale.data[...] = rng.uniform(0.5, 1.5, c)
    cell.bias.data[...] = rng.normal(size=c)
    cell.mean.data[...] = rng.normal(size=c)
    cell.variance.data[...] = rng.uniform(0.5, 2.0, c)
    return cell


def test_defaults_match_n2d2():
    cell = bn()
    assert (cell.epsilon, cell.momentum, cell.activation) == (1e-5, 0.1, None)
    assert [p.role for p in cell.params()] == ["Scale", "Bias"]
    assert [b.role for b in cell.buffers()] == ["Mean", "Variance"]
    assert (cell.scale.data == 1).all() and (cell.bias.data == 0).all()
    assert (cell.mean.data == 0).all() and (cell.variance.data == 0).all()  # N2D2 starts at 0
    assert cell.nb_synapses() == 6 and cell.out_shape == (3, 4, 5)


def test_learning_and_test_forward_match_torch():
    cell = randomize(bn(config="Epsilon=1e-3\nMovingAverageMomentum=0.2"))
    rm, rv = torch.tensor(cell.mean.data.copy()), torch.tensor(cell.variance.data.copy())
    w, b = torch.tensor(cell.scale.data.copy()), torch.tensor(cell.bias.data.copy())
    rng = np.random.default_rng(1)
    for _ in range(3):  # three learning batches: moving averages accumulate
        x = (rng.standard_normal((4, 3, 4, 5)) * 2 + 1).astype(np.float32)
        y = cell.forward([x], train=True)
        ref = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, w, b, True, 0.2, 1e-3)
        np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-5)
        assert y.dtype == np.float32
    np.testing.assert_allclose(cell.mean.data, rm.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cell.variance.data, rv.numpy(), rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    ref = torch.nn.functional.batch_norm(torch.tensor(x), rm, rv, w, b, False, 0.2, 1e-3)
    np.testing.assert_allclose(cell.forward([x]), ref.numpy(), rtol=1e-5, atol=1e-5)
    before = cell.mean.data.copy()
    cell.forward([x], train=False)
    np.testing.assert_array_equal(cell.mean.data, before)  # testing never moves the averages


def test_learning_gradients_match_torch():
    cell = randomize(bn())
    x = np.random.default_rng(2).standard_normal((3, 3, 4, 5)).astype(np.float32)
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    cell.forward([x], train=True)
    (dx,) = cell.backward(dy)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(cell.scale.data.copy(), requires_grad=True)
    tb = torch.tensor(cell.bias.data.copy(), requires_grad=True)
    y = torch.nn.functional.batch_norm(tx, None, None, tw, tb, True, 0.1, 1e-5)
    y.backward(torch.tensor(dy))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cell.scale.grad, tw.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cell.bias.grad, tb.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_finite_difference_gradients(train):
    cell = randomize(bn(extra="ActivationFunction=Tanh"))
    x = np.random.default_rng(4).standard_normal((3, 3, 2, 3))
    check_gradients(cell, [x], train=train)


def test_frozen_statistics_with_zero_momentum():
    cell = randomize(bn(config="MovingAverageMomentum=0"))
    mean, var = cell.mean.data.copy(), cell.variance.data.copy()
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(cell.forward([x], train=True), cell.forward([x], train=False))
    np.testing.assert_array_equal(cell.mean.data, mean)
    np.testing.assert_array_equal(cell.variance.data, var)
    check_gradients(cell, [x.astype(np.float64)], train=True)


def test_two_inputs_fc_shaped_input_and_no_backpropagate():
    cell = randomize(bn(c=5, shapes=[(2, 3, 3), (3, 3, 3)]))
    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((4, 3, 3, 3))]
    dxs = check_gradients(cell, xs, train=True)
    assert [dx.shape for dx in dxs] == [x.shape for x in xs]
    fc_like = randomize(bn(c=4, shapes=[(4, 1, 1)]))
    check_gradients(fc_like, [rng.standard_normal((5, 4, 1, 1))], train=True)
    frozen = bn(config="BackPropagate=0")
    y = frozen.forward([np.ones((2, 3, 4, 5), np.float32)], True)
    assert frozen.backward(np.ones_like(y)) == [None]


def test_activation_after_normalisation():
    cell = randomize(bn(extra="ActivationFunction=Rectifier"))
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    cell.activation, act = None, cell.activation
    z = cell.forward([x])
    cell.activation = act
    np.testing.assert_array_equal(cell.forward([x]), np.maximum(z, 0))


def test_errors():
    with pytest.raises(N2D2PyError, match="MovingAverageMomentum: must be in"):
        bn(config="MovingAverageMomentum=1")
    with pytest.raises(N2D2PyError, match="Epsilon: must be >= 0"):
        bn(config="Epsilon=-1")
    with pytest.raises(N2D2PyError, match="ScalesSharing is not supported"):
        bn(extra="ScalesSharing=bn0")
    with pytest.raises(N2D2PyError, match="NbOutputs: must equal the 3 input channels"):
        bn(c=4, shapes=[(3, 2, 2)])


def test_weight_files_and_checkpoint_hold_moving_averages(tmp_path):
    cell = randomize(bn())
    save_weights([cell], str(tmp_path))
    names = sorted(n for n in os.listdir(tmp_path) if not n.startswith("."))  # not the manifest
    assert names == [f"bn_{s}.syntxt" for s in ("biases", "means", "scales", "variances")]
    lines = (tmp_path / "bn_variances.syntxt").read_text().splitlines()
    assert len(lines) == 3 and float(lines[1]) == pytest.approx(float(cell.variance.data[1]))
    other = bn()
    load_weights([other], str(tmp_path))
    for a, b in zip(cell.params() + cell.buffers(), other.params() + other.buffers()):
        np.testing.assert_array_equal(a.data, b.data)
    params, _ = collect_state([cell])
    assert sorted(params) == ["bn/bias", "bn/mean", "bn/scale", "bn/variance"]
    fresh = bn()
    restore_state([fresh], params, {})
    np.testing.assert_array_equal(fresh.variance.data, cell.variance.data)
    (tmp_path / "bn_variances.syntxt").write_text("1\n-2\n3\n")
    with pytest.raises(N2D2PyError, match="negative value in the variances"):
        load_weights([other], str(tmp_path))


def test_direct_construction_and_repr():
    device = backend.cpu(0)
    cell = BatchNormCell("b", [Port("c", (2, 3, 3))], device, epsilon=1e-3)
    assert repr(cell) == "BatchNormCell(b <- c: (2, 3, 3) eps=0.001 momentum=0.1)"


def test_network_solvers_and_config_keys():
    import io

    from n2d2py import network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_text

    text = ("DefaultModel=Frame\n[sp]\nSizeX=5\nSizeY=5\n"
            "[conv]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=2\n"
            "[bn]\nInput=conv\nType=BatchNorm\nNbOutputs=[conv]NbOutputs\nConfigSection=bn.config\n"
            "Epsilon=0.1\n[bn.Target]\n"
            "[bn.config]\nSolvers.LearningRate=0.5\nScaleSolver.LearningRate=0.25\n"
            "MovingAverageMomentum=0.3\n")
    diag = Diagnostics(stream=io.StringIO())
    net = network.build(parse_text(text, "t.ini", diag), backend.cpu(1))
    cell = net.cells["bn"]
    assert [p.solver.learning_rate for p in cell.params()] == [0.25, 0.5]
    assert (cell.momentum, cell.epsilon) == (0.3, 1e-5)
    assert any("[bn] Epsilon: Epsilon is a configuration key" in m for m in diag.messages)


def mobilenet_v1_ini(size=224):
    """MobileNet v1 1.0 written as N2D2's MobileNet_v1_batchnorm.ini does: Conv (NoBias, Linear)
    → BatchNorm (Rectifier), depthwise via Mapping.ChannelsPerGroup=1, global average Pool."""
    blocks = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5
    blocks += [(2, 1024), (1, 1024)]
    text = (f"DefaultModel=Frame\n[sp]\nSizeX={size}\nSizeY={size}\nNbChannels=3\nBatchSize=2\n"
            "[conv_def]\nType=Conv\nActivationFunction=Linear\nWeightsFiller=HeFiller\n"
            "ConfigSection=common.config\n[bn_def]\nType=BatchNorm\nActivationFunction=Rectifier\n"
            "[conv1] conv_def\nInput=sp\nKernelDims=3 3\nNbOutputs=32\nStride=2\nPadding=1\n"
            "[bn1] bn_def\nInput=conv1\nNbOutputs=[conv1]NbOutputs\n")
    prev, channels = "bn1", 32
    for i, (stride, outputs) in enumerate(blocks, 2):
        text += (f"[dw{i}] conv_def\nInput={prev}\nKernelDims=3 3\nNbOutputs={channels}\n"
                 f"Stride={stride}\nPadding=1\nMapping.ChannelsPerGroup=1\n"
                 f"[bn_dw{i}] bn_def\nInput=dw{i}\nNbOutputs=[dw{i}]NbOutputs\n"
                 f"[pw{i}] conv_def\nInput=bn_dw{i}\nKernelDims=1 1\nNbOutputs={outputs}\n"
                 f"[bn_pw{i}] bn_def\nInput=pw{i}\nNbOutputs=[pw{i}]NbOutputs\n")
        prev, channels = f"bn_pw{i}", outputs
    text += (f"[pool]\nInput={prev}\nType=Pool\nPoolDims=[{prev}]_OutputsWidth "
             f"[{prev}]_OutputsHeight\nNbOutputs=[{prev}]NbOutputs\nStride=1\nPooling=Average\n"
             "Mapping.ChannelsPerGroup=1\n"
             "[fc]\nInput=pool\nType=Fc\nNbOutputs=1000\nConfigSection=fc.config\n"
             "[softmax]\nInput=fc\nType=Softmax\nNbOutputs=1000\nWithLoss=1\n[softmax.Target]\n"
             "[common.config]\nNoBias=1\n[fc.config]\nNoBias=0\n")
    return text


def _build(text):
    import io

    from n2d2py import network
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_text

    diag = Diagnostics(stream=io.StringIO())
    return network.build(parse_text(text, "m.ini", diag), backend.cpu(0))


def test_mobilenet_v1_parameter_count_counts_connected_kernels_only():
    net = _build(mobilenet_v1_ini())
    rows = {name: (dims, params) for name, _, _, dims, params, _ in net.summary()}
    assert rows["dw2"] == ("32x112x112", 32 * 9)  # depthwise: one 3×3 kernel per channel
    assert rows["pw14"] == ("1024x7x7", 1024 * 1024)
    assert rows["bn_pw14"] == ("1024x7x7", 2 * 1024)  # scales + biases (moving stats not counted)
    assert rows["pool"] == ("1024x1x1", 0)
    total = sum(params for _, params in rows.values())
    batchnorm = sum(p for n, (_, p) in rows.items() if n.startswith("bn"))
    assert (total, batchnorm) == (4_231_976, 21_888)  # Keras' MobileNet(alpha=1) trainable count


def test_global_average_pool_head_as_written_in_n2d2_models():
    net = _build(mobilenet_v1_ini(size=32))  # 32×32 input: 1024×1×1 maps before the pool
    assert net.cells["pool"].pool == (1, 1) and net.cells["pool"].out_shape == (1024, 1, 1)
    net = _build(mobilenet_v1_ini(size=64))  # 2×2 maps: a real global pool
    net.initialize()
    pool = net.cells["pool"]
    assert pool.one_to_one and pool.pool == (2, 2) and pool.out_shape == (1024, 1, 1)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    outputs = net.forward(x, train=True)
    np.testing.assert_allclose(outputs["pool"], outputs["bn_pw14"].mean(axis=(2, 3), keepdims=True),
                               rtol=1e-5, atol=1e-6)
    assert outputs["softmax"].shape == (2, 1000, 1, 1)
