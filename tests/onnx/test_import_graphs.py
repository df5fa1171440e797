"""Graphs written with onnx.helper: ops PyTorch does not emit (Dropout, Identity, Constant,
MatMul, Sum, auto_pad, Clip attributes), N2D2's keys (Ignore, CNTK, ONNX_init, Input of an
INI layer, per-node sections) and one-line errors."""

import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from n2d2py.errors import N2D2PyError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from helpers import INI, build, run_n2d2py, run_ort  # noqa: E402

RNG = np.random.default_rng(0)


def init(name, shape=None, values=None, dtype=np.float32):
    array = np.asarray(values if values is not None else RNG.standard_normal(shape), dtype)
    return numpy_helper.from_array(array, name)


def save(tmp_path, nodes, inits, in_shape, out_name="out", opset=13, name="g.onnx"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def compare(path, shape, batch=2, **kw):
    net = build(path, shape, **kw)
    x = RNG.standard_normal((batch, *shape)).astype(np.float32)
    want = run_ort(path, x)
    got = run_n2d2py(net, x, kw.get("target", "out"))
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    return net


def test_dropout_identity_constant_cast_sum(tmp_path):
    nodes = [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.float32(2.0))),
        helper.make_node("Mul", ["x", "k"], ["a"]),
        helper.make_node("Constant", [], ["r"], value_float=0.3),
        helper.make_node("Dropout", ["a", "r"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Cast", ["i"], ["c"], to=TensorProto.FLOAT),
        helper.make_node("Sum", ["c", "a", "x"], ["out"]),
    ]
    net = compare(save(tmp_path, nodes, [], (3, 4, 4)), (3, 4, 4))
    assert net.cells["d"].type_name == "Dropout" and net.cells["d"].drop == pytest.approx(0.3)
    assert net.cells["out"].type_name == "ElemWise"


def test_conv_auto_pad_same_upper_inserts_a_padding_cell(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["out"], auto_pad="SAME_UPPER", strides=[2, 2])]
    net = compare(save(tmp_path, nodes, [init("w", (4, 3, 3, 3))], (3, 8, 8)), (3, 8, 8))
    assert list(net.cells) == ["out_padding", "out"]
    assert net.cells["out_padding"].sides == (0, 1, 0, 1)


def test_matmul_add_folds_into_the_fc_bias_unless_cntk_0(tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (12, 5)), init("b", (5,))], (3, 2, 2))
    net = compare(path, (3, 2, 2), target="m")  # N2D2's name: the Add folded into MatMul's cell
    assert list(net.cells) == ["m"] and net.cells["m"].bias is not None
    net = compare(path, (3, 2, 2), extra="CNTK=0")
    assert list(net.cells) == ["m", "out"] and net.cells["m"].bias is None


def test_clip_attributes_at_opset_9(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Clip", ["c"], ["out"], min=0.0, max=1.5)]
    net = compare(save(tmp_path, nodes, [init("w", (2, 3, 1, 1))], (3, 3, 3), opset=9), (3, 3, 3))
    assert net.cells["c"].activation.clipping == 1.5  # folded into the Conv
    assert net.cells["out"].type_name == "ElemWise"  # [out.Target] names the graph output


def test_onnx_init_0_keeps_the_fillers(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (2, 3, 1, 1), np.full((2, 3, 1, 1), 7.0))], (3, 3, 3))
    net = build(path, (3, 3, 3), extra="ONNX_init=0\n[onnx:Conv_def]\nWeightsFiller=ConstantFiller\n"
                "WeightsFiller.Value=0.25")
    net.initialize()
    assert np.all(net.cells["out"].weights.data == 0.25)


def test_per_node_section_replaces_the_default_section(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c1"]), helper.make_node("Conv", ["c1", "w2"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (2, 3, 1, 1)), init("w2", (2, 2, 1, 1))], (3, 3, 3))
    extra = ("[onnx:Conv_def]\nConfigSection=fast\n[c1]\nConfigSection=frozen\n"
             "[fast]\nSolvers.LearningRate=0.5\n[frozen]\nSolvers.LearningRate=0\nBackPropagate=0\n")
    net = build(path, (3, 3, 3), extra=extra)
    assert net.cells["c1"].weights.solver.learning_rate == 0
    assert net.cells["out"].weights.solver.learning_rate == 0.5
    assert net.cells["c1"].back_propagate is False


def test_ignore_cuts_the_tail_and_ini_layers_stack_on_a_node(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["feat"]), helper.make_node("Relu", ["feat"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["pool"]),
             helper.make_node("Conv", ["pool", "w2"], ["logits"]),
             helper.make_node("Flatten", ["logits"], ["flat"]), helper.make_node("Softmax", ["flat"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (4, 3, 3, 3)), init("w2", (9, 4, 1, 1))], (3, 5, 5))
    text = INI.format(w=5, h=5, c=3, batch=2, file=path, target="soft",
                      extra="Ignore=logits\n[fc]\nInput=onnx,pool\nType=Fc\nNbOutputs=6\n"
                      "[soft]\nInput=fc\nType=Softmax\nNbOutputs=6\nWithLoss=1\n")
    net = build(path, (3, 5, 5), text=text)
    assert list(net.cells) == ["feat", "pool", "fc", "soft"]
    assert [t[1] for t in net.targets] == ["soft"]  # no automatic target: the Softmax was cut
    assert net.cells["fc"].inputs[0].name == "pool"


def test_imported_softmax_gets_its_target(tmp_path):
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["prob"])]
    path = save(tmp_path, nodes, [init("w", (4, 12))], (3, 2, 2), out_name="prob")
    text = INI.format(w=2, h=2, c=3, batch=2, file=path, target="g", extra="").replace(
        "[g.Target]\n", "")
    net = build(path, (3, 2, 2), text=text)
    assert [t[0] for t in net.targets] == ["prob.Target"]


@pytest.mark.parametrize("nodes, inits, message", [
    ([helper.make_node("Erf", ["x"], ["out"])], [], "ONNX operator Erf (node 'out') is not supported"),
    ([helper.make_node("Conv", ["x", "x"], ["out"])], [], "Conv node 'out': the weights (input 1, 'x') must be a constant"),
    ([helper.make_node("MaxPool", ["x"], ["out"], kernel_shape=[2, 2], pads=[0, 0, 1, 1])], [],
     "MaxPool node 'out': asymmetric pads"),
    ([helper.make_node("Add", ["x", "c"], ["out"])], [init("c", (3, 4, 4))], "varies over positions"),
    ([helper.make_node("Resize", ["x", "", "s"], ["out"], mode="cubic")],
     [init("s", None, [1, 1, 2, 2])], "mode=cubic"),
])
def test_unsupported_graphs_fail_in_one_line(tmp_path, nodes, inits, message):
    path = save(tmp_path, nodes, inits, (3, 4, 4))
    with pytest.raises(N2D2PyError) as info:
        build(path, (3, 4, 4))
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text and "[onnx] File" in text


def test_missing_and_malformed_files_and_bad_keys(tmp_path):
    with pytest.raises(N2D2PyError, match=r"\[onnx\] File: ONNX file not found: .*nothere.onnx"):
        build(tmp_path / "nothere.onnx", (1, 2, 2))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\xff\xff garbage \x00" * 5)
    with pytest.raises(N2D2PyError, match="not a readable ONNX model") as info:
        build(bad, (1, 2, 2))
    assert "\n" not in str(info.value)
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["out"])], [], (1, 2, 2))
    with pytest.raises(N2D2PyError, match="unknown key Mean in a Type=ONNX section"):
        build(path, (1, 2, 2), extra="Mean=0.5")
    with pytest.raises(N2D2PyError, match="Transpose=1"):
        build(path, (1, 2, 2), extra="Transpose=1")


def test_onnx_package_missing_names_the_extra(monkeypatch):
    import builtins

    from n2d2py.onnx import require_onnx

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(
        ImportError(name)) if name == "onnx" else real(name, *a, **k))
    with pytest.raises(N2D2PyError, match=r'pip install "n2d2py\[onnx\]"'):
        require_onnx()


def test_cntk_style_graph_as_mnist_onnx_ini_reads_it(tmp_path):
    """N2D2's mnist_ONNX.ini pattern: a batch-1 graph dividing its input by a Constant, a
    bias-less Convolution + Plus(Reshape(Constant)), MatMul by Reshape(Constant) + Plus; the
    target sits on the MatMul's name (the Plus folds into its bias)."""
    k = lambda name, values: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(
        np.asarray(values, np.float32 if np.asarray(values).dtype.kind == "f" else np.int64)))
    nodes = [
        k("Constant300", 256.0), helper.make_node("Div", ["x", "Constant300"], ["Block1_Output_0"]),
        helper.make_node("Conv", ["Block1_Output_0", "W"], ["Convolution10_Output_0"], pads=[2, 2, 2, 2]),
        k("Constant301", RNG.standard_normal((4,))), k("Shape301", [4, 1, 1]),
        helper.make_node("Reshape", ["Constant301", "Shape301"], ["Reshape302_Output_0"]),
        helper.make_node("Add", ["Convolution10_Output_0", "Reshape302_Output_0"], ["Plus12_Output_0"]),
        helper.make_node("Relu", ["Plus12_Output_0"], ["ReLU14_Output_0"]),
        helper.make_node("MaxPool", ["ReLU14_Output_0"], ["Pooling16_Output_0"], kernel_shape=[2, 2],
                         strides=[2, 2]),
        k("Shape415", [1, 4 * 4 * 4]),
        helper.make_node("Reshape", ["Pooling16_Output_0", "Shape415"], ["Reshape416_Output_0"]),
        k("Constant312", RNG.standard_normal((64 * 10,))), k("Shape392", [64, 10]),
        helper.make_node("Reshape", ["Constant312", "Shape392"], ["Reshape393_Output_0"]),
        helper.make_node("MatMul", ["Reshape416_Output_0", "Reshape393_Output_0"], ["Times418_Output_0"]),
        k("Constant420", RNG.standard_normal((1, 10))),
        helper.make_node("Add", ["Times418_Output_0", "Constant420"], ["Plus422_Output_0"]),
    ]
    graph = helper.make_graph(
        nodes, "cntk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("Plus422_Output_0", TensorProto.FLOAT, [1, 10])],
        [init("W", (4, 1, 5, 5))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    text = INI.format(w=8, h=8, c=1, batch=3, file=path, target="Times418_Output_0", extra="")
    net = build(path, (1, 8, 8), text=text)
    assert list(net.cells) == ["Block1_Output_0", "Convolution10_Output_0", "Pooling16_Output_0",
                               "Times418_Output_0"]
    x = RNG.uniform(0, 255, (3, 1, 8, 8)).astype(np.float32)
    want = np.concatenate([run_ort(path, x[i:i + 1]) for i in range(3)])  # a batch-1 graph
    got = run_n2d2py(net, x, "Times418_Output_0").reshape(3, 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_activation_section_named_after_a_relu_replaces_it(tmp_path):
    """N2D2's [<relu output>] sections (quantizer models: ActivationFunction=Linear + QAct)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (2, 3, 1, 1)), init("w2", (2, 2, 1, 1))], (3, 3, 3))
    net = build(path, (3, 3, 3), extra="[r]\nActivationFunction=Tanh\n")
    assert type(net.cells["c"].activation).__name__ == "Tanh"


def test_ignoring_a_node_others_still_read_is_an_error(tmp_path):
    """N2D2 silently re-roots such readers at the input; n2d2py says which node reads it."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]), helper.make_node("Relu", ["x"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["out"])]
    path = save(tmp_path, nodes, [init("w", (3, 3, 1, 1))], (3, 3, 3))
    with pytest.raises(N2D2PyError, match="Add node 'out': reads 'a', the output of an ignored node"):
        build(path, (3, 3, 3), extra="Ignore=a")
