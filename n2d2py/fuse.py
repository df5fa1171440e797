"""``-fuse``: fold each BatchNorm into the Conv that feeds it, for testing (N2D2's -fuse).

With s = scale / sqrt(variance + ε), the pair Conv(W, b) → BatchNorm equals one Conv with
W' = s·W (per output map) and b' = s·(b − mean) + bias (b = 0 when the Conv has NoBias=1);
the Conv takes the BatchNorm's activation and the BatchNorm leaves the graph: the cells and
targets that read it read the Conv instead. A pair is fused only when the Conv has no
activation of its own (none or Linear), feeds nothing but that BatchNorm, is not a target,
and the BatchNorm reads only that Conv. The moving statistics are used, so this is only for
inference: the result must not be learned further.
"""

import numpy as np

from n2d2py.activations import Linear
from n2d2py.cells.base import Param, Port
from n2d2py.cells.batchnorm import BatchNormCell
from n2d2py.cells.conv import ConvCell
from n2d2py.fillers import ConstantFiller


def fuse_batchnorm(net):
    """Fuse every eligible Conv → BatchNorm pair of ``net`` in place; returns the
    (conv, batchnorm) name pairs fused."""
    fused = []
    for name, cell in list(net.cells.items()):
        conv = _fusable_conv(net, cell)
        if conv is not None:
            fold_into_conv(conv, cell)
            _bypass(net, name, conv.name)
            fused.append((conv.name, name))
    return fused


def fold_into_conv(conv, bn):
    """Set ``conv``'s weights, bias and activation so that it computes bn(conv(x)) at test."""
    xp = conv.xp
    scale = bn.scale.data / xp.sqrt(bn.variance.data + bn.variance.data.dtype.type(bn.epsilon))
    conv.weights.data *= scale.astype(conv.weights.data.dtype)[:, None, None, None]
    if conv.bias is None:
        conv.bias = _zero_bias(conv, conv.out_shape[0])
    bias = (conv.bias.data - bn.mean.data) * scale + bn.bias.data
    conv.bias.data[...] = bias.astype(conv.bias.data.dtype)
    conv.activation = bn.activation


def _zero_bias(conv, n):
    bias = Param("bias", (n,), ConstantFiller(0.0), "Bias", conv.weights.fan_in,
                 conv.weights.fan_out)
    bias.data = conv.device.asarray(np.zeros(n, dtype=np.float32))
    bias.grad = bias.new_grad(conv.xp)
    return bias


def _fusable_conv(net, cell):
    if not isinstance(cell, BatchNormCell) or len(cell.inputs) != 1:
        return None
    conv = net.cells.get(cell.inputs[0].name)
    if not isinstance(conv, ConvCell):
        return None
    if conv.activation is not None and not isinstance(conv.activation, Linear):
        return None
    readers = [c for c in net.cells.values() if any(p.name == conv.name for p in c.inputs)]
    targeted = any(cell_name == conv.name for _, cell_name, _ in net.targets)
    return conv if readers == [cell] and not targeted else None


def _bypass(net, old, new):
    """Remove cell ``old`` from ``net``; whatever read it reads ``new`` (same output)."""
    del net.cells[old]
    for cell in net.cells.values():
        cell.inputs = [Port(new, p.shape) if p.name == old else p for p in cell.inputs]
    net.targets = [(s, new if c == old else c, t) for s, c, t in net.targets]
