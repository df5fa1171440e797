"""Spike layers (spec §6.5–6.6): integrate-and-fire Conv and Fc, Max and Average Pool.

A layer knows its geometry and (for Conv/Fc) its weights, and answers two questions about
its connections:

- ``targets(k, src)``: the (target, weight) pairs a spike of neuron ``src`` of input ``k``
  reaches, computed from the geometry one spike at a time (the reference engine's view);
- ``fanout(k)``: the same connections for every source at once, as flat arrays sorted by
  (source, target) (what the production engine compiles into CSR tables).

Neurons are numbered in C×H×W order. Both views list the targets of a source in increasing
order, so that the two engines emit simultaneous spikes in the same order.
"""

from dataclasses import dataclass, field

import numpy as np

from n2d2py.spike.neuron import NeuronParams

IF, MAX, AVERAGE = "if", "max", "average"


class SpikeLayer:
    """Base: ``name``, ``inputs`` [(name, (C, H, W))], ``out_shape`` (C, H, W), ``kind``."""

    kind = IF
    synaptic = True  # Conv/Fc: its connections are synapses (read events, stats)

    def __init__(self, name, inputs, out_shape, params=None):
        self.name = name
        self.inputs = [(n, tuple(int(d) for d in s)) for n, s in inputs]
        self.out_shape = tuple(int(d) for d in out_shape)
        self.params = params or NeuronParams()

    @property
    def size(self):
        return int(np.prod(self.out_shape))

    def input_offsets(self):
        """First channel (Conv/Pool) of each input in the stacked input."""
        return np.cumsum([0] + [s[0] for _, s in self.inputs])[:-1].tolist()

    def nb_synapses(self):
        return 0

    def nb_virtual_synapses(self):
        return 0

    def synapse_space(self):
        """Size of the layer's synapse index space (``fanout``'s synapse ids are below it)."""
        return 0

    def __repr__(self):
        return f"{type(self).__name__}({self.name}: {'x'.join(map(str, self.out_shape))})"


class _Windowed(SpikeLayer):
    """Shared geometry of Conv and Pool: window (kh, kw), stride, padding, channel mask."""

    def __init__(self, name, inputs, out_shape, window, stride, padding, mask, params=None):
        super().__init__(name, inputs, out_shape, params)
        self.window = tuple(window)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.mask = np.asarray(mask, dtype=bool)  # (O, C_total)

    def _window_targets(self, k, src):
        """[(target, ky, kx, channel)] of input neuron ``src`` of input ``k``, by target."""
        _, (c_in, h, w) = self.inputs[k]
        c, rest = divmod(src, h * w)
        iy, ix = divmod(rest, w)
        c += self.input_offsets()[k]
        o_n, ho, wo = self.out_shape
        (kh, kw), (sy, sx), (py, px) = self.window, self.stride, self.padding
        out = []
        for o in range(o_n):
            if not self.mask[o, c]:
                continue
            for oy in range(ho):
                ky = iy + py - oy * sy
                if not 0 <= ky < kh:
                    continue
                for ox in range(wo):
                    kx = ix + px - ox * sx
                    if 0 <= kx < kw:
                        out.append(((o * ho + oy) * wo + ox, ky, kx, c))
        return out

    def _window_entries(self, k):
        """Vectorised ``_window_targets`` over all sources: (src, tgt, o, c, ky, kx)."""
        _, (c_in, h, w) = self.inputs[k]
        off = self.input_offsets()[k]
        o_n, ho, wo = self.out_shape
        (kh, kw), (sy, sx), (py, px) = self.window, self.stride, self.padding
        pairs = np.argwhere(self.mask[:, off : off + c_in])  # (o, c local)
        o, c = pairs[:, 0, None, None, None, None], pairs[:, 1, None, None, None, None]
        oy = np.arange(ho)[None, :, None, None, None]
        ox = np.arange(wo)[None, None, :, None, None]
        ky = np.arange(kh)[None, None, None, :, None]
        kx = np.arange(kw)[None, None, None, None, :]
        iy, ix = oy * sy - py + ky, ox * sx - px + kx
        shape = np.broadcast_shapes(o.shape, oy.shape, ox.shape, ky.shape, kx.shape)
        grids = [np.broadcast_to(a, shape).reshape(-1) for a in (o, c, oy, ox, ky, kx, iy, ix)]
        o, c, oy, ox, ky, kx, iy, ix = grids
        ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        o, c, oy, ox, ky, kx, iy, ix = (a[ok] for a in grids)
        src = (c * h + iy) * w + ix
        tgt = (o * ho + oy) * wo + ox
        order = np.lexsort((tgt, src))
        return src[order], tgt[order], o[order], (c + off)[order], ky[order], kx[order]


class SpikeConv(_Windowed):
    """Integrate-and-fire convolution; weights (O, C_total, kh, kw), unmapped ones unused."""

    def __init__(self, name, inputs, out_shape, weights, stride, padding, mask, params=None):
        weights = np.asarray(weights, dtype=np.float32)  # synaptic weights, as stored by N2D2
        super().__init__(name, inputs, out_shape, weights.shape[2:], stride, padding, mask, params)
        self.weights = weights

    def targets(self, k, src):
        return [(t, float(self.weights[t // (self.out_shape[1] * self.out_shape[2]), c, ky, kx]))
                for t, ky, kx, c in self._window_targets(k, src)]

    def fanout(self, k):
        """(src, tgt, weight, synapse id) arrays of input ``k``, sorted by (src, tgt)."""
        src, tgt, o, c, ky, kx = self._window_entries(k)
        _, c_total, kh, kw = self.weights.shape
        synapse = ((o * c_total + c) * kh + ky) * kw + kx
        return src, tgt, self.weights[o, c, ky, kx], synapse

    def nb_synapses(self):
        return int(self.mask.sum()) * self.window[0] * self.window[1]

    def nb_virtual_synapses(self):
        return self.nb_synapses() * self.out_shape[1] * self.out_shape[2]

    def synapse_space(self):
        return self.weights.size


class SpikeFc(SpikeLayer):
    """Integrate-and-fire fully connected layer; weights (O, total inputs)."""

    def __init__(self, name, inputs, weights, params=None):
        weights = np.asarray(weights, dtype=np.float32)  # synaptic weights, as stored by N2D2
        super().__init__(name, inputs, (weights.shape[0], 1, 1), params)
        self.weights = weights

    def _offset(self, k):
        return int(sum(np.prod(s) for _, s in self.inputs[:k]))

    def targets(self, k, src):
        col = self._offset(k) + src
        return [(o, float(self.weights[o, col])) for o in range(self.weights.shape[0])]

    def fanout(self, k):
        n_in = int(np.prod(self.inputs[k][1]))
        src = np.repeat(np.arange(n_in), self.weights.shape[0])
        tgt = np.tile(np.arange(self.weights.shape[0]), n_in)
        col = self._offset(k) + src
        return src, tgt, self.weights[tgt, col], tgt * self.weights.shape[1] + col

    def nb_synapses(self):
        return self.weights.size

    def nb_virtual_synapses(self):
        return self.weights.size

    def synapse_space(self):
        return self.weights.size


class SpikePool(_Windowed):
    """Max or Average pooling of spike counts (spec §6.6); no synapses, no parameters.

    Max: the output's net spike count follows the largest net count among its inputs (one
    spike, up or down, each time that maximum changes). Average: it follows
    round(Σ input counts / window size), rounding halves away from zero.
    """

    synaptic = False

    def __init__(self, name, inputs, out_shape, window, stride, padding, mask, pooling):
        super().__init__(name, inputs, out_shape, window, stride, padding, mask)
        self.kind = MAX if pooling == "Max" else AVERAGE

    def targets(self, k, src):
        return [(t, 0.0) for t, _, _, _ in self._window_targets(k, src)]

    def fanout(self, k):
        src, tgt, _, _, _, _ = self._window_entries(k)
        return src, tgt, np.zeros(src.size), np.full(src.size, -1)

    def sources(self, tgt):
        """[(input k, src)] pooled by output ``tgt`` (the reference engine's view)."""
        _, ho, wo = self.out_shape
        o, rest = divmod(tgt, ho * wo)
        oy, ox = divmod(rest, wo)
        out = []
        for k, (_, (c_in, h, w)) in enumerate(self.inputs):
            off = self.input_offsets()[k]
            for c in range(c_in):
                if not self.mask[o, off + c]:
                    continue
                for ky in range(self.window[0]):
                    for kx in range(self.window[1]):
                        iy = oy * self.stride[0] - self.padding[0] + ky
                        ix = ox * self.stride[1] - self.padding[1] + kx
                        if 0 <= iy < h and 0 <= ix < w:
                            out.append((k, (c * h + iy) * w + ix))
        return out

    def divisors(self):
        """Average pooling: entries per output (window × mapped channels, padding included)."""
        counts = self.mask.sum(axis=1).astype(np.int64)
        per_output = np.maximum(counts, 1) * self.window[0] * self.window[1]
        return np.repeat(per_output, self.out_shape[1] * self.out_shape[2])


@dataclass
class SpikeNetwork:
    """A transcoded network: input node shape, layers in topological order, output layers."""

    env_name: str
    env_shape: tuple
    coding: object
    layers: dict  # name -> SpikeLayer
    outputs: list  # names of the layers that carry a target
    scales: dict = field(default_factory=dict)  # name -> weight factor from normalisation

    @property
    def env_size(self):
        return int(np.prod(self.env_shape))

    def consumers(self, name):
        """[(layer, input index)] reading ``name``, in layer order."""
        return [(layer, k) for layer in self.layers.values()
                for k, (src, _) in enumerate(layer.inputs) if src == name]

    def synaptic_layers(self):
        return [layer for layer in self.layers.values() if layer.synaptic]
