"""network.build: shapes, counts, generated keys, order, warnings; LeNet against PyTorch."""

from pathlib import Path

import numpy as np
import pytest

from n2d2py import backend, network
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import parse_file, parse_text

MODELS = Path(__file__).parents[1] / "models"


def build(path_or_text, strict=False, **kw):
    diag = Diagnostics(strict=strict, stream=open("/dev/null", "w"))
    if isinstance(path_or_text, Path):
        doc = parse_file(path_or_text, diag)
    else:
        doc = parse_text(path_or_text, "t.ini", diag)
    return network.build(doc, backend.cpu(1), **kw), diag


@pytest.fixture(scope="module")
def lenet():
    return build(MODELS / "LeNet.ini")[0]


def test_lenet_shapes_parameters_and_macs(lenet):
    rows = {name: (dims, params, macs) for name, _, _, dims, params, macs in lenet.summary()}
    # hand-computed: NoBias=1 everywhere; conv2 reads 60 of the 6x16 pool1->conv2 pairs
    assert rows["conv1"] == ("6x28x28", 6 * 25, 6 * 25 * 28 * 28)
    assert rows["pool1"] == ("6x14x14", 0, 6 * 4 * 14 * 14)
    assert rows["conv2"] == ("16x10x10", 60 * 25, 60 * 25 * 10 * 10)
    assert rows["pool2"] == ("16x5x5", 0, 16 * 4 * 5 * 5)
    assert rows["conv3"] == ("120x1x1", 120 * 16 * 25, 120 * 16 * 25)
    assert rows["fc1"] == ("84x1x1", 120 * 84, 120 * 84)
    assert rows["fc2"] == ("10x1x1", 84 * 10, 84 * 10)
    assert sum(r[1] for r in rows.values()) == 60_570


def test_partial_mapping_has_fewer_weights_than_full():
    text = (MODELS / "LeNet.ini").read_text()
    start = text.index("Mapping(pool1)=")
    end = text.index("ConfigSection", start)
    full, _ = build(text[:start] + text[end:])
    assert full.cells["conv2"].nb_synapses() == 96 * 25


def test_generated_keys_are_written(lenet):
    doc = lenet.doc
    get = lambda s, k: doc.prop(s, k).raw
    assert get("sp", "_EpochSize") == "48000"
    assert (get("conv1", "_OutputsWidth"), get("conv1", "_OutputsHeight"), get("conv1", "_NbOutputs")) == ("28", "28", "6")
    assert get("conv2", "_NbChannels") == "6" and get("conv2", "_ChannelsWidth") == "14"


SMALL = """DefaultModel=Frame
[sp]
SizeX=8
SizeY=8
{layers}
[softmax.Target]
"""


def test_topological_order_does_not_depend_on_file_order():
    layers = ("[softmax]\nInput=fc\nType=Softmax\nNbOutputs=4\nWithLoss=1\n"
              "[fc]\nInput=conv\nType=Fc\nNbOutputs=4\n"
              "[conv]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=2\n")
    net, _ = build(SMALL.format(layers=layers))
    assert list(net.cells) == ["conv", "fc", "softmax"]
    assert net.cells["fc"].inputs[0].shape == (2, 6, 6)


def test_layers_with_several_inputs_and_aliases():
    layers = ("[a]\nInput=env\nType=Conv\nKernelDims=3 3\nNbOutputs=2\nPadding=1\n"
              "[b]\nInput=sp\nType=Conv\nKernelDims=1 1\nNbOutputs=2\n"
              "[sum]\nInput=a,b\nType=ElemWise\nNbOutputs=2\nOperation=Sum\n"
              "[fc]\nInput=sum,a\nType=Fc\nNbOutputs=4\n"
              "[softmax]\nInput=fc\nType=Softmax\nNbOutputs=4\n")
    net, _ = build(SMALL.format(layers=layers))
    assert net.cells["sum"].out_shape == (2, 8, 8)
    assert net.cells["fc"].nb_synapses() == (2 * 64 * 2) * 4 + 4
    y = net.forward(_init(net))["softmax"]
    assert y.shape == (3, 4, 1, 1)


def _init(net):
    net.initialize()
    return np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)


def test_unused_keys_are_reported_with_suggestions():
    layers = ("[conv]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=2\nNoBias=1\nConfigSection=cfg\nActivationFuncton=Rectifier\n"
              "[softmax]\nInput=conv\nType=Softmax\nNbOutputs=2\n[cfg]\nSolvers.LearningRate=0.1\n[orphan]\nX=1\n")
    _, diag = build(SMALL.format(layers=layers))
    text = "\n".join(diag.messages)
    assert "t.ini:10: [conv] NoBias: NoBias is a configuration key" in text
    assert "ActivationFuncton" in text and "did you mean 'ActivationFunction'" in text
    assert "[orphan] section is never used" in text
    with pytest.raises(N2D2PyError, match="configuration key"):
        build(SMALL.format(layers=layers), strict=True)


def test_resnet_template_model_builds():
    net, _ = build(MODELS / "ResNet-MNIST.ini")
    assert "block2_1x1_proj" in net.cells and "block1_1x1_proj" not in net.cells
    assert [p.name for p in net.cells["block2_sum"].inputs] == ["block2_3x3_2", "block2_1x1_proj"]
    assert net.cells["pool"].out_shape == (64, 1, 1)


def test_lenet_matches_pytorch(lenet):
    """Forward and every weight gradient of LeNet against an independent PyTorch graph."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    net = lenet
    net.initialize()
    cells = net.cells
    x = np.random.default_rng(0).random((8, 1, 32, 32)).astype(np.float32)
    labels = np.arange(8) % 10
    outputs = net.forward(x, train=False)
    w = {n: torch.tensor(np.array(cells[n].weights.data), requires_grad=True) for n in ("conv1", "conv2", "conv3", "fc1", "fc2")}
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), w["conv1"])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w["conv2"])), 2)
    h = F.relu(F.conv2d(h, w["conv3"])).flatten(1)
    logits = F.relu(h @ w["fc1"].T) @ w["fc2"].T
    np.testing.assert_allclose(np.array(outputs["softmax"]).reshape(8, 10), torch.softmax(logits, 1).detach().numpy(), atol=1e-6)
    F.cross_entropy(logits, torch.tensor(labels), reduction="sum").backward()
    dy, _ = net.targets[0][2].loss_grad(outputs["softmax"], labels)
    net.zero_grad()
    net.backward({"softmax": dy})
    for name, tensor in w.items():
        mask = cells[name].weights.mask
        expected = tensor.grad.numpy() * (1 if mask is None else np.array(mask))
        np.testing.assert_allclose(np.array(cells[name].weights.grad), expected, atol=1e-5, err_msg=name)


def test_spike_keys_of_transcode_models_are_read_not_reported():
    net, diag = build(MODELS / "LeNet_Spike.ini", strict=True)
    assert diag.messages == []
    assert net.spike.transcoders["fc2"].params.terminate_delta == 4
    assert type(net.spike.coding).__name__ == "JitteredPeriodic"
