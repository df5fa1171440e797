"""numpy/CuPy parity of the formal cells (skipped without CuPy and a CUDA device)."""

import numpy as np
import pytest
from harness import LENET_TABLE, build

from n2d2py.backend import Device
from n2d2py.cells.batchnorm import BatchNormCell
from n2d2py.cells.conv import ConvCell
from n2d2py.cells.deconv import DeconvCell
from n2d2py.cells.dropout import DropoutCell
from n2d2py.cells.elemwise import ElemWiseCell
from n2d2py.cells.fc import FcCell
from n2d2py.cells.lrn import LRNCell
from n2d2py.cells.normalize import NormalizeCell
from n2d2py.cells.padding import PaddingCell
from n2d2py.cells.pool import PoolCell
from n2d2py.cells.resize import ResizeCell
from n2d2py.cells.softmax import SoftmaxCell

cupy = pytest.importorskip("cupy")
try:
    HAS_GPU = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:  # CuPy without a driver
    HAS_GPU = False
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")]

CASES = [
    (ConvCell, "[c]\nKernelDims=3 3\nNbOutputs=5\nStride=2\nPadding=1\nActivationFunction=Rectifier\n",
     [(4, 9, 9)], None),
    (ConvCell, f"[c]\nKernelDims=5 5\nNbOutputs=16\nMapping(p)={LENET_TABLE}\n", [(6, 14, 14)], ["p"]),
    (PoolCell, "[c]\nPoolSize=2\nStride=2\nNbOutputs=3\nPooling=Max\nMapping.Size=1\n", [(3, 8, 8)], None),
    (PoolCell, "[c]\nPoolSize=3\nPadding=1\nNbOutputs=2\nPooling=Average\n", [(3, 8, 8)], None),
    (FcCell, "[c]\nNbOutputs=7\nActivationFunction=Tanh\n", [(3, 4, 4)], None),
    (SoftmaxCell, "[c]\nNbOutputs=6\n", [(6, 2, 2)], None),
    (DropoutCell, "[c]\nNbOutputs=6\n", [(6, 2, 2)], None),
    (BatchNormCell, "[c]\nNbOutputs=4\nActivationFunction=Rectifier\n", [(4, 5, 5)], None),
    (DeconvCell, "[c]\nKernelDims=3 3\nNbOutputs=3\nStride=2\nPadding=1\n", [(4, 5, 5)], None),
    (LRNCell, "[c]\nNbOutputs=6\n", [(6, 4, 4)], None),
    (NormalizeCell, "[c]\nNbOutputs=6\nNorm=L2\n", [(6, 3, 3)], None),
    (ResizeCell, "[c]\nNbOutputs=3\nOutputWidth=7\nOutputHeight=5\nMode=Bilinear\n", [(3, 4, 4)], None),
    (PaddingCell, "[c]\nNbOutputs=3\nTopPadding=1\nBottomPadding=2\nLeftPadding=-1\nRightPadding=1\n",
     [(3, 4, 4)], None),
    (ElemWiseCell, "[c]\nNbOutputs=3\nOperation=Sum\nWeights=0.5 2\n", [(3, 4, 4), (3, 4, 4)], None),
]


@pytest.mark.parametrize("cls, text, shapes, names", CASES)
def test_same_forward_and_backward_on_gpu(cls, text, shapes, names):
    cpu_cell = build(cls, text, "c", shapes, seed=1, names=names)
    gpu = Device("cuda:0", cupy, np.random.default_rng(1))
    gpu_cell = build(cls, text, "c", shapes, names=names, device=gpu)
    for p, q in zip(cpu_cell.params(), gpu_cell.params()):
        np.testing.assert_array_equal(p.data, q.data.get())
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((3,) + s).astype(np.float32) for s in shapes]
    cpu_cell.device.reseed(5)
    gpu_cell.device.reseed(5)
    y = cpu_cell.forward(xs, True)
    y_gpu = gpu_cell.forward([cupy.asarray(x) for x in xs], True)
    np.testing.assert_allclose(y, y_gpu.get(), rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dxs, dxs_gpu = cpu_cell.backward(dy), gpu_cell.backward(cupy.asarray(dy))
    for dx, dx_gpu in zip(dxs, dxs_gpu):
        np.testing.assert_allclose(dx, dx_gpu.get(), rtol=1e-4, atol=1e-5)
    for p, q in zip(cpu_cell.params(), gpu_cell.params()):
        np.testing.assert_allclose(p.grad, q.grad.get(), rtol=1e-4, atol=1e-4)
