"""-export ONNX: networks written as INI files (every exportable cell type and activation)
against onnxruntime within 1e-5, and exported → imported again gives the same outputs."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from n2d2py import backend, network  # noqa: E402
from n2d2py.errors import Diagnostics, N2D2PyError  # noqa: E402
from n2d2py.ini import parse_text  # noqa: E402
from n2d2py.onnx import export  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from helpers import build, run_ort  # noqa: E402

HEAD = "DefaultModel=Frame\n[sp]\nSizeX=8\nSizeY=8\nNbChannels=3\nBatchSize=2\n"
BRANCHY = HEAD + """
[conv1]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=6
Padding=1
ActivationFunction=Rectifier
ActivationFunction.LeakSlope=0.1
[bn]
Input=conv1
Type=BatchNorm
NbOutputs=6
ActivationFunction=Tanh
[conv2]
Input=bn
Type=Conv
KernelDims=3 3
NbOutputs=6
Mapping.ChannelsPerGroup=2
Stride=2
Padding=1
ActivationFunction=Rectifier
ActivationFunction.Clipping=1.0
[conv3]
Input=bn
Type=Conv
KernelDims=1 1
NbOutputs=6
Stride=2
ActivationFunction=Logistic
[sum]
Input=conv2,conv3
Type=ElemWise
Operation=Sum
Weights=0.5 2.0
Shifts=0.1 -0.2
ActivationFunction=Saturation
ActivationFunction.Threshold=0.8
[prod]
Input=conv2,sum
Type=ElemWise
Operation=Prod
[pad]
Input=prod,conv3
Type=Padding
NbOutputs=12
TopPadding=1
BottomPadding=0
LeftPadding=0
RightPadding=1
[pool]
Input=pad
Type=Pool
PoolDims=2 2
Stride=2
NbOutputs=12
Pooling=Max
Mapping.Size=1
[up]
Input=pool
Type=Resize
NbOutputs=12
OutputWidth=5
OutputHeight=3
Mode=Bilinear
[tr]
Input=up
Type=Transpose
NbOutputs=12
Perm=1 0 2
[rs]
Input=tr
Type=Reshape
NbOutputs=20
Dims=3 3 20
[drop]
Input=rs
Type=Dropout
NbOutputs=20
[fc]
Input=drop,pool
Type=Fc
NbOutputs=7
ActivationFunction=Softplus
[fc2]
Input=fc
Type=Fc
NbOutputs=5
[soft]
Input=fc2
Type=Softmax
NbOutputs=5
WithLoss=1
[soft.Target]
[fc.Target]
"""


def build_ini(text, tmp_path):
    doc = parse_text(text, str(tmp_path / "n.ini"), Diagnostics(stream=io.StringIO()))
    net = network.build(doc, backend.cpu(3), load_data=False)
    net.initialize()
    rng = np.random.default_rng(1)
    for cell in net.cells.values():  # BatchNorm statistics other than 0/1
        for buffer in cell.buffers():
            buffer.data[...] = rng.uniform(0.5, 1.5, buffer.shape).astype(np.float32)
    return net


@pytest.mark.parametrize("batch", [1, 4])
def test_every_cell_type_matches_onnxruntime_and_round_trips(tmp_path, batch):
    net = build_ini(BRANCHY, tmp_path)
    path = export.write(net, str(tmp_path))
    assert path.endswith("export_ONNX_float32/model.onnx")
    model = onnx.load(path)
    assert model.opset_import[0].version >= 13
    x = np.random.default_rng(2).standard_normal((batch, 3, 8, 8)).astype(np.float32)
    ours = net.forward(x)
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert sorted(names) == ["fc_act", "soft"]  # the targets (fc's after its activation)
    for name, value in zip(names, session.run(None, {"sp": x})):
        name = name.replace("_act", "")
        np.testing.assert_allclose(ours[name].reshape(value.shape), value, rtol=1e-5, atol=1e-5)
    again = build(path, (3, 8, 8), target="fc")  # imported again: the same cells and values
    again.initialize()
    assert {"conv1", "bn", "conv2", "sum", "fc", "soft"} <= set(again.cells)
    back = again.forward(x)
    for name in ("soft", "fc"):
        np.testing.assert_allclose(back[name].reshape(ours[name].shape), ours[name], rtol=1e-5,
                                   atol=1e-5)


def test_grouped_conv_is_written_with_groups(tmp_path):
    text = HEAD + ("[c]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=6\nMapping.NbGroups=3\n"
                   "[c.Target]\n")
    net = build_ini(text, tmp_path)
    path = export.write(net, str(tmp_path))
    node = onnx.load(path).graph.node[0]
    assert node.op_type == "Conv" and [a.i for a in node.attribute if a.name == "group"] == [3]
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x)["c"], run_ort(path, x), rtol=1e-5, atol=1e-5)


def test_a_cell_with_no_onnx_form_is_refused_by_name(tmp_path):
    text = HEAD + ("[e]\nInput=sp\nType=ElemWise\nOperation=EuclideanSum\n[e.Target]\n")
    with pytest.raises(N2D2PyError, match="ElemWise e Operation=EuclideanSum has no ONNX form"):
        export.write(build_ini(text, tmp_path), str(tmp_path))
    assert not (tmp_path / export.FOLDER / "model.onnx").exists()
