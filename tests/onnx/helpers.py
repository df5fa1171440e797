"""Shared by the ONNX tests: export a torch module, build it through an N2D2-style INI, and
compare n2d2py's outputs with onnxruntime's (the independent reference)."""

import io
import warnings
from pathlib import Path

import numpy as np

from n2d2py import backend, network
from n2d2py.errors import Diagnostics
from n2d2py.ini import parse_text

INI = """DefaultModel=Frame
[sp]
SizeX={w}
SizeY={h}
NbChannels={c}
BatchSize={batch}

[onnx]
Input=sp
Type=ONNX
File={file}
{extra}
[{target}.Target]
"""


def export(module, shape, path, opset=13, output="out", **kw):
    """``torch.onnx.export`` (the TorchScript exporter) of ``module`` on inputs of ``shape``."""
    import torch

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(shape), str(path), opset_version=opset,
                          input_names=["input"], output_names=[output], dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}}, **kw)
    return Path(path)


def build(path, shape, target="out", extra="", batch=2, text=None):
    c, h, w = shape
    text = text or INI.format(w=w, h=h, c=c, batch=batch, file=path, extra=extra, target=target)
    diag = Diagnostics(stream=io.StringIO())
    return network.build(parse_text(text, str(Path(path).parent / "t.ini"), diag),
                         backend.cpu(1), load_data=False)


def run_n2d2py(net, x, name="out"):
    net.initialize()
    return net.forward(x.astype(np.float32))[name]


def run_ort(path, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.astype(np.float32)}
    return session.run(None, feed)[0]


def check(module, shape, tmp_path, batch=3, tol=1e-5, opset=13, seed=0, **kw):
    """Export ``module``, import it, and compare with onnxruntime on a random batch."""
    path = export(module, (batch,) + tuple(shape), tmp_path / "m.onnx", opset=opset)
    net = build(path, shape, **kw)
    x = np.random.default_rng(seed).standard_normal((batch,) + tuple(shape)).astype(np.float32)
    got = run_n2d2py(net, x)
    want = run_ort(path, x)
    got = got.reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    return net
