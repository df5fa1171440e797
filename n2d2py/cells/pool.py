"""Max / average pooling over a channel map (N2D2: PoolCell, spec §3.3 and §1.11).

The one-to-one map (``Mapping.Size=1``, every Pool in the models) pools each channel on its
own: on the CPU with compiled kernels (``n2d2py.kernels``), elsewhere on windows views. A
general map makes output o pool over all of its mapped channels at once: the max over
channels × window, or their average. Average pooling divides by the full window size, padding
included (count-include-pad, as cuDNN's default in N2D2's CUDA model), and by the number of
mapped channels for general maps.
"""

import numpy as np

from n2d2py import backend
from n2d2py.activations import make_activation
from n2d2py.backend import cpu_kernels
from n2d2py.cells import _windows as win
from n2d2py.cells.base import Cell, same_spatial_size
from n2d2py.cells.kernel import check_window, read_window_keys, read_window_size
from n2d2py.cells.mapping import build_mapping
from n2d2py.registry import CELLS

POOLINGS = ("Max", "Average")
_POOL_KEYS = ("PoolDims", "PoolSize", "Pool", "PoolWidth", "PoolHeight")


@CELLS.register("Pool")
class PoolCell(Cell):
    """y[o] = max or mean of the mapped input channels over each window."""

    def __init__(self, name, inputs, device, nb_outputs, pool, pooling="Max", stride=(1, 1),
                 padding=(0, 0), masks=None, activation=None):
        in_hw = inputs[0].shape[1:]
        out_hw = [win.out_size(in_hw[i], pool[i], stride[i], padding[i]) for i in range(2)]
        super().__init__(name, inputs, (nb_outputs, *out_hw), device, activation)
        self.pool, self.pooling = tuple(pool), pooling
        self.stride, self.padding = tuple(stride), tuple(padding)
        self.channels = [p.shape[0] for p in inputs]
        total = sum(self.channels)
        if masks is None:
            masks = [np.ones((nb_outputs, c), dtype=bool) for c in self.channels]
        self.mask = np.concatenate(masks, axis=1)  # host (O, C_total)
        identity = np.eye(total, dtype=bool)
        self.one_to_one = nb_outputs == total and bool((self.mask == identity).all())
        self._entries = self.pool[0] * self.pool[1]  # values pooled per output pixel
        self._geometry = (*self.pool, *self.stride, *self.padding)  # of the CPU kernels
        if not self.one_to_one:
            self._setup_general_map()

    @classmethod
    def from_section(cls, sec, inputs, device):
        nb_outputs, pool = read_window_size(sec, "Pool", _POOL_KEYS, "pool")
        pooling = sec.get_enum("Pooling", POOLINGS)
        stride, padding, dilation = read_window_keys(sec)
        if dilation != (1, 1):
            raise sec.error("Dilation", "Pool has no dilation")
        in_hw = same_spatial_size(sec, inputs)
        check_window(sec, "pool", _POOL_KEYS, in_hw, pool, stride, padding)
        masks = build_mapping(sec, inputs, nb_outputs)
        return cls(sec.name, inputs, device, nb_outputs, pool, pooling, stride, padding, masks,
                   make_activation(sec))

    def _setup_general_map(self):
        """Index (O, m) of each output's channels, padded with a filler channel C; and the
        (O·m, C+1) one-hot matrix that sums window gradients back onto channels."""
        total = self.mask.shape[1]
        counts = self.mask.sum(axis=1)
        width = max(int(counts.max()), 1)
        index = np.full((self.mask.shape[0], width), total, dtype=np.int64)
        for o, row in enumerate(self.mask):
            chans = np.flatnonzero(row)
            index[o, : chans.size] = chans
        onehot = np.zeros((index.size, total + 1), dtype=np.float32)
        onehot[np.arange(index.size), index.reshape(-1)] = 1
        self._index = self.device.asarray(index, dtype=np.int64)
        self._scatter = self.device.asarray(onehot.T)  # (C+1, O·m)
        self._connected = self.device.asarray((counts > 0)[None, :, None, None], dtype=bool)
        # Average: the sum over m·K entries (fillers add 0) is rescaled to a mean over count·K.
        self._rescale = self.device.asarray((width / np.maximum(counts, 1))[None, :, None, None])
        self._entries *= width

    def _windows(self, x):
        """(N, C', Ho, Wo, K) copy of the windows; C' = C (+1 filler channel for general maps)."""
        fill = -np.inf if self.pooling == "Max" else 0.0
        x = win.pad2d(x, self.padding, fill)
        if not self.one_to_one:
            n, _, h, w = x.shape
            extra = self.xp.full((n, 1, h, w), fill, dtype=x.dtype)
            x = self.xp.concatenate([x, extra], axis=1)
        self._padded_hw = x.shape[2:]
        windows = win.windows(x, self.pool, self.stride)
        n, c, ho, wo, kh, kw = windows.shape
        return windows.reshape(n, c, ho, wo, kh * kw)

    def _forward(self, xs, train):
        x = win.concat_channels(xs)
        kernels = cpu_kernels(x) if self.one_to_one else None
        self._compiled = kernels is not None
        if self._compiled:
            return self._forward_compiled(kernels, self.xp.ascontiguousarray(x))
        w = self._windows(x)
        if not self.one_to_one:  # gather (N, O, m, Ho, Wo, K) → (N, O, Ho, Wo, m·K)
            n, _, ho, wo, _ = w.shape
            w = w[:, self._index].transpose(0, 1, 3, 4, 2, 5).reshape(n, -1, ho, wo, self._entries)
        if self.pooling == "Max":
            self._argmax = w.argmax(axis=-1)
            y = self.xp.take_along_axis(w, self._argmax[..., None], axis=-1)[..., 0]
        else:
            y = w.sum(axis=-1) / w.dtype.type(self._entries)
        return y if self.one_to_one else self._fix_general(y)

    def _forward_compiled(self, kernels, x):
        """One-to-one map on the CPU: one pass per image, no (N, C, Ho, Wo, K) window copy;
        max pooling keeps the index of each maximum in its window (uint8 up to 256 entries)."""
        self._x_shape = x.shape
        y = self.xp.empty((x.shape[0],) + self.out_shape, dtype=x.dtype)
        chunks = backend.split_batch(x, x.shape[0], x.size)
        if self.pooling == "Average":
            kernel = kernels.average_pool(*self._geometry, x.dtype)
            backend.run_split(chunks, lambda a, b: kernel(x[a:b], y[a:b]))
            return y
        arg = self.xp.empty(y.shape, dtype=self.xp.uint8 if self._entries <= 256 else self.xp.int32)
        kernel = kernels.max_pool(*self._geometry, x.dtype)
        backend.run_split(chunks, lambda a, b: kernel(x[a:b], y[a:b], arg[a:b]))
        self._argmax = arg
        return y

    def _backward_compiled(self, dz):
        dx = self.xp.empty(self._x_shape, dtype=dz.dtype)
        chunks = backend.split_batch(dz, dz.shape[0], dx.size)
        kernels = cpu_kernels(dz)
        if self.pooling == "Average":
            kernel = kernels.average_pool_backward(*self._geometry, dz.dtype)
            backend.run_split(chunks, lambda a, b: kernel(dz[a:b], dx[a:b]))
        else:
            kernel, arg = kernels.max_pool_backward(*self._geometry, dz.dtype), self._argmax
            backend.run_split(chunks, lambda a, b: kernel(dz[a:b], arg[a:b], dx[a:b]))
        return dx

    def _fix_general(self, y):
        """Average over count·K (not m·K) entries; 0 for an output with no input."""
        if self.pooling == "Average":
            y = y * self._rescale.astype(y.dtype, copy=False)
        return self.xp.where(self._connected, y, 0).astype(y.dtype, copy=False)

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        xp, (kh, kw) = self.xp, self.pool
        n, o, ho, wo = dz.shape
        if self._compiled:
            dx = self._backward_compiled(xp.ascontiguousarray(dz))
            return win.split_channels(dx, self.channels)
        if not self.one_to_one:
            dz = self._fix_general(dz)
        if self.pooling == "Max":
            positions = xp.arange(self._entries, dtype=self._argmax.dtype)
            dw = (positions == self._argmax[..., None]) * dz[..., None]
        else:
            dw = (dz / dz.dtype.type(self._entries))[..., None]
            dw = xp.broadcast_to(dw, dz.shape + (self._entries,))
        if not self.one_to_one:  # (N, O·m, Ho·Wo·K) summed onto channels by the one-hot matrix
            m = self._index.shape[1]
            dw = dw.reshape(n, o, ho, wo, m, kh * kw).transpose(0, 1, 4, 2, 3, 5)
            dw = self._scatter.astype(dz.dtype, copy=False) @ dw.reshape(n, o * m, -1)
        dwin = dw.reshape(n, -1, ho, wo, kh, kw).astype(dz.dtype, copy=False)
        dxp = win.col2im(dwin, self._padded_hw, self.stride)
        if not self.one_to_one:
            dxp = dxp[:, :-1]  # drop the filler channel
        return win.split_channels(win.unpad2d(dxp, self.padding), self.channels)

    def nb_virtual_synapses(self):
        kh, kw = self.pool
        return int(self.mask.sum()) * kh * kw * self.out_shape[1] * self.out_shape[2]
