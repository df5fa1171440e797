"""Every ONNX op of the importer's table, exported by PyTorch (or written with onnx.helper
where PyTorch does not emit it), against onnxruntime within 1e-5, at batch sizes 1 and 3."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
nn, F = torch.nn, torch.nn.functional
sys.path.insert(0, str(Path(__file__).parent))
from helpers import build, check, run_n2d2py, run_ort  # noqa: E402


class Lambda(nn.Module):
    def __init__(self, fn, *modules):
        super().__init__()
        self.fn, self.layers = fn, nn.ModuleList(modules)

    def forward(self, x):
        return self.fn(x, *self.layers)


def conv(cin=3, cout=4, k=3, **kw):
    torch.manual_seed(0)
    return nn.Conv2d(cin, cout, k, **kw)


CASES = {
    # op(s) exercised: (module, input C×H×W)
    "Conv": (Lambda(lambda x, c: c(x), conv(padding=1)), (3, 8, 8)),
    "Conv-stride-dilation-nobias": (Lambda(lambda x, c: c(x), conv(stride=2, dilation=2, bias=False)), (3, 11, 9)),
    "Conv-groups": (Lambda(lambda x, c: c(x), conv(4, 6, groups=2, padding=(1, 2))), (4, 7, 7)),
    "Conv-depthwise": (Lambda(lambda x, c: c(x), conv(4, 4, groups=4)), (4, 6, 6)),
    "Gemm-Flatten": (Lambda(lambda x, l: l(torch.flatten(x, 1)), nn.Linear(48, 5)), (3, 4, 4)),
    "Gemm-on-1x1": (Lambda(lambda x, l: l(x.mean((2, 3))), nn.Linear(3, 5)), (3, 4, 4)),
    "Relu": (Lambda(lambda x, c: torch.relu(c(x)), conv()), (3, 6, 6)),
    "Clip-ReLU6": (Lambda(lambda x, c: F.relu6(c(x) * 4), conv()), (3, 6, 6)),
    "Clip-hardtanh": (Lambda(lambda x, c: F.hardtanh(c(x), -0.5, 0.5), conv()), (3, 6, 6)),
    "LeakyRelu": (Lambda(lambda x, c: F.leaky_relu(c(x), 0.2), conv()), (3, 6, 6)),
    "Sigmoid": (Lambda(lambda x, c: torch.sigmoid(c(x)), conv()), (3, 6, 6)),
    "Tanh": (Lambda(lambda x, c: torch.tanh(c(x)), conv()), (3, 6, 6)),
    "Softplus": (Lambda(lambda x, c: F.softplus(c(x)), conv()), (3, 6, 6)),
    "Relu-with-two-readers": (Lambda(lambda x, c: c(x) + torch.relu(c(x)), conv()), (3, 6, 6)),
    "Softmax": (Lambda(lambda x, l: torch.softmax(l(torch.flatten(x, 1)), 1), nn.Linear(12, 4)), (3, 2, 2)),
    "Softmax-channels": (Lambda(lambda x, c: torch.softmax(c(x), 1), conv()), (3, 5, 5)),
    "MaxPool": (Lambda(lambda x: F.max_pool2d(x, 3, 2, 1)), (3, 9, 9)),
    "AveragePool": (Lambda(lambda x: F.avg_pool2d(x, 2)), (3, 8, 8)),
    "AveragePool-pads": (Lambda(lambda x: F.avg_pool2d(x, 3, 2, 1)), (3, 9, 9)),
    "GlobalAveragePool": (Lambda(lambda x: F.adaptive_avg_pool2d(x, 1)), (3, 5, 7)),
    "GlobalMaxPool": (Lambda(lambda x: F.adaptive_max_pool2d(x, 1)), (3, 5, 7)),
    "ReduceMean": (Lambda(lambda x: x.mean((2, 3), keepdim=True)), (3, 5, 7)),
    "ReduceMax": (Lambda(lambda x: x.amax((2, 3), keepdim=True)), (3, 5, 7)),
    "Add-Sub-Mul-tensors": (Lambda(lambda x, a, b: a(x) + b(x) * a(x) - b(x), conv(), conv(k=5, padding=1)), (3, 6, 6)),
    "Add-Mul-Div-Sub-scalars": (Lambda(lambda x: (x + 0.5) * 3.0 / 2.0 - 1.0), (3, 4, 4)),
    "Sub-Div-constant-first": (Lambda(lambda x: 2.0 - x / 4.0), (3, 4, 4)),
    "Add-Mul-per-channel": (Lambda(lambda x: x * torch.tensor([1.0, -2.0, 3.0]).view(1, 3, 1, 1)
                                   + torch.tensor([0.5, 0.0, -1.0]).view(3, 1, 1)), (3, 4, 4)),
    "Max": (Lambda(lambda x, a: torch.maximum(x, a(x)), conv(3, 3, padding=1)), (3, 4, 4)),
    "Concat": (Lambda(lambda x, a, b: torch.cat([a(x), b(x)], 1), conv(), conv(3, 2)), (3, 6, 6)),
    "Reshape-view": (Lambda(lambda x, l: l(x.view(x.size(0), -1)), nn.Linear(48, 3)), (3, 4, 4)),
    "Reshape-4d": (Lambda(lambda x, c: c(x.reshape(x.shape[0], 12, 2, 2)), conv(12, 2, 1)), (3, 4, 4)),
    "Transpose": (Lambda(lambda x, c: c(x.permute(0, 1, 3, 2)), conv()), (3, 5, 7)),
    "Transpose-channels-last": (Lambda(lambda x: x.permute(0, 2, 3, 1) * 2.0), (3, 5, 7)),
    "Pad": (Lambda(lambda x: F.pad(x, (1, 2, 0, 3))), (3, 4, 5)),
    "Pad-then-Conv": (Lambda(lambda x, c: c(F.pad(x, (0, 1, 0, 1))), conv(stride=2)), (3, 8, 8)),
    "Resize-nearest": (Lambda(lambda x: F.interpolate(x, scale_factor=2, mode="nearest")), (3, 4, 5)),
    "Resize-bilinear": (Lambda(lambda x: F.interpolate(x, size=(7, 9), mode="bilinear")), (3, 4, 5)),
    "Resize-bilinear-aligned": (Lambda(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear",
                                                               align_corners=True)), (3, 4, 5)),
    "Squeeze-Unsqueeze": (Lambda(lambda x, l: l(F.adaptive_avg_pool2d(x, 1).squeeze(3).squeeze(2))
                                 .unsqueeze(2).unsqueeze(3), nn.Linear(3, 4)), (3, 4, 4)),
}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_op_matches_onnxruntime(name, batch, tmp_path):
    module, shape = CASES[name]
    check(module, shape, tmp_path, batch=batch)


def test_batchnorm_kept_as_a_node(tmp_path):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-1, 1)
    module = Lambda(lambda x, b: b(x) * 1.0, bn)
    from helpers import export

    path = export(module, (2, 3, 5, 5), tmp_path / "bn.onnx", do_constant_folding=False)
    import onnx

    assert "BatchNormalization" in [n.op_type for n in onnx.load(str(path)).graph.node]
    net = build(path, (3, 5, 5))
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(run_n2d2py(net, x), run_ort(path, x), rtol=1e-5, atol=1e-5)
    assert [c.type_name for c in net.cells.values()][0] == "BatchNorm"


@pytest.mark.parametrize("opset", [9, 11, 13, 18])
def test_whole_model_at_opsets(opset, tmp_path):
    """A small CNN (Conv, BN, ReLU, pools, view through Shape/Gather folding, Gemm, Softmax)."""
    torch.manual_seed(1)
    layers = (conv(1, 4, 3, padding=1), nn.BatchNorm2d(4), conv(4, 6, 3), nn.Linear(6 * 2 * 2, 10))

    def forward(x, c1, bn, c2, fc):
        x = F.max_pool2d(torch.relu(bn(c1(x))), 2)  # 14 -> 7
        x = F.avg_pool2d(torch.relu(c2(x)), 2)  # 7 -> 5 -> 2
        x = F.max_pool2d(F.interpolate(x, scale_factor=2), 2)  # Upsample (opset 9) or Resize
        return torch.softmax(fc(x.view(x.size(0), -1)), 1)  # Shape/Gather/... folded

    net = check(Lambda(forward, *layers), (1, 14, 14), tmp_path, opset=opset, batch=2)
    types = [c.type_name for c in net.cells.values()]
    assert types[:2] == ["Conv", "Pool"] and types[-4:] == ["Resize", "Pool", "Fc", "Softmax"]
    assert set(types) <= {"Conv", "Pool", "Padding", "Resize", "Fc", "Softmax"}  # (opset 9: Pad)
