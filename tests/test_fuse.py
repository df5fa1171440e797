"""-fuse: Conv → BatchNorm folded into one Conv gives the same test outputs; what is skipped."""

import io

import numpy as np
import pytest

from n2d2py import backend, network
from n2d2py.errors import Diagnostics
from n2d2py.fuse import fuse_batchnorm
from n2d2py.ini import parse_text

NET = """DefaultModel=Frame
[sp]
SizeX=7
SizeY=7
NbChannels=3
[conv1]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4
Padding=1
ConfigSection=nobias
[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=4
ActivationFunction=Rectifier
[conv2]
Input=bn1
Type=Conv
KernelDims=3 3
NbOutputs=4
Mapping.ChannelsPerGroup=1
[bn2]
Input=conv2
Type=BatchNorm
NbOutputs=4
ActivationFunction=Tanh
[conv3]
Input=bn2
Type=Conv
KernelDims=1 1
NbOutputs=2
ActivationFunction=Rectifier
[bn3]
Input=conv3
Type=BatchNorm
NbOutputs=2
[fc]
Input=bn3,bn2
Type=Fc
NbOutputs=3
[fc.Target]
[nobias]
NoBias=1
"""


def build(text=NET):
    diag = Diagnostics(stream=io.StringIO())
    net = network.build(parse_text(text, "t.ini", diag), backend.cpu(3))
    net.initialize()
    rng = np.random.default_rng(0)
    for cell in net.cells.values():
        if cell.buffers():  # the BatchNorm cells
            c = cell.out_shape[0]
            cell.scale.data[...] = rng.uniform(0.5, 2.0, c)
            cell.bias.data[...] = rng.normal(size=c)
            cell.mean.data[...] = rng.normal(size=c)
            cell.variance.data[...] = rng.uniform(0.2, 3.0, c)
    return net


def test_fused_network_gives_the_same_test_outputs():
    net = build()
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 7)).astype(np.float32)
    before = net.forward(x)
    fused = fuse_batchnorm(net)
    # conv3 has its own Rectifier: bn3 cannot be folded into it
    assert fused == [("conv1", "bn1"), ("conv2", "bn2")]
    assert list(net.cells) == ["conv1", "conv2", "conv3", "bn3", "fc"]
    assert [p.name for p in net.cells["fc"].inputs] == ["bn3", "conv2"]
    assert [p.name for p in net.cells["conv3"].inputs] == ["conv2"]
    conv1 = net.cells["conv1"]
    assert conv1.bias is not None and type(conv1.activation).__name__ == "Rectifier"
    assert (conv1.weights.data.shape, conv1.out_shape) == ((4, 3, 3, 3), (4, 7, 7))
    w2 = net.cells["conv2"].weights.data
    assert (w2[~net.cells["conv2"].mask] == 0).all()  # depthwise map kept
    after = net.forward(x)
    np.testing.assert_allclose(after["fc"], before["fc"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(after["conv2"], before["bn2"], rtol=1e-5, atol=1e-5)


def test_targets_follow_the_fused_cell_and_shared_conv_is_kept():
    text = NET.replace("[fc.Target]", "[fc.Target]\n[bn1.Target]")
    net = build(text)
    fuse_batchnorm(net)
    assert ("bn1.Target", "conv1") in [(s, c) for s, c, _ in net.targets]
    shared = NET.replace("Input=bn3,bn2", "Input=bn3,conv2")  # conv2 also feeds fc
    net = build(shared)
    assert fuse_batchnorm(net) == [("conv1", "bn1")]
    assert "bn2" in net.cells


def test_cli_accepts_fuse():
    from n2d2py.cli import check_arguments

    check_arguments(["model.ini", "-test", "-fuse"])
    with pytest.raises(Exception, match="unknown option"):
        check_arguments(["model.ini", "-fusee"])


MNIST_BN = """DefaultModel=Frame
[database]
Type=MNIST_IDX_Database
Validation=0.0
[sp]
SizeX=28
SizeY=28
BatchSize=32
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=8
Stride=2
WeightsFiller=HeFiller
ConfigSection=common.config,nobias.config
[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=[conv1]NbOutputs
ActivationFunction=Rectifier
ConfigSection=common.config
[fc]
Input=bn1
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config
[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
[common.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
[nobias.config]
NoBias=1
"""


def test_learn_then_test_with_fuse_scores_the_same(tmp_path, capsys):
    from n2d2py import runner

    ini = tmp_path / "bn.ini"
    ini.write_text(MNIST_BN)
    out = str(tmp_path / "run")
    runner.run(runner.Options(str(ini), learn=1024, log=1024, seed=2, out=out, nb_test=500))
    for name in ("bn1_scales", "bn1_biases", "bn1_means", "bn1_variances"):
        assert (tmp_path / "run" / "weights" / f"{name}.syntxt").is_file(), name
    capsys.readouterr()

    def test_rate(**kw):
        runner.run(runner.Options(str(ini), test=True, out=out, nb_test=500, **kw))
        text = capsys.readouterr().out
        return text, next(l for l in text.splitlines() if l.startswith("Final recognition rate:"))

    plain_text, plain = test_rate()
    fused_text, fused = test_rate(fuse=True)
    assert "Fused 1 BatchNorm layer(s) into their Conv: bn1 -> conv1" in fused_text
    assert fused == plain and "Fused" not in plain_text
