"""Local response normalisation across channels (N2D2: LRNCell, spec §3.3).

y_c = x_c / (K + Alpha/N · Σ_{c' ∈ window(c)} x_{c'}²)^Beta, the window covering channels
c − ⌊(N−1)/2⌋ … c + ⌈(N−1)/2⌉ that exist: cuDNN's LRN, which N2D2's CUDA model calls (the same
as PyTorch's LocalResponseNorm for odd N). Configuration keys (ConfigSection): ``N`` [5],
``Alpha`` [1e-4], ``Beta`` [0.75], ``K`` [2.0]. N2D2's CPU ``Frame`` LRN differs from cuDNN
(its window sum does not square the inputs) and has no backward; it is not reproduced.
"""

from n2d2py.cells._windows import concat_channels, split_channels
from n2d2py.cells.base import Cell, check_stacked_inputs, stacked_shape
from n2d2py.registry import CELLS


def window_sum(a, behind, ahead):
    """s_c = Σ_{c−behind ≤ c' ≤ c+ahead} a_{c'} along axis 1, channels outside counted as 0."""
    c = a.shape[1]
    out = a.copy()
    for shift in range(1, behind + 1):
        if shift < c:
            out[:, shift:] += a[:, : c - shift]
    for shift in range(1, ahead + 1):
        if shift < c:
            out[:, : c - shift] += a[:, shift:]
    return out


@CELLS.register("LRN")
class LRNCell(Cell):
    """y = x / (K + Alpha/N · Σ_window x²)^Beta."""

    def __init__(self, name, inputs, device, n=5, alpha=1e-4, beta=0.75, k=2.0):
        super().__init__(name, inputs, stacked_shape(inputs), device)
        self.n, self.alpha, self.beta, self.k = int(n), float(alpha), float(beta), float(k)
        self.behind = (self.n - 1) // 2
        self.ahead = self.n - 1 - self.behind
        self.channels = [p.shape[0] for p in inputs]

    @classmethod
    def from_section(cls, sec, inputs, device):
        check_stacked_inputs(sec, inputs)
        cfg = sec.config
        n = cfg.get_uint("N", 5)
        if n < 1:
            raise cfg.error("N", "the window must hold at least 1 channel")
        alpha, beta = cfg.get_float("Alpha", 1e-4), cfg.get_float("Beta", 0.75)
        k = cfg.get_float("K", 2.0)
        if k <= 0 and beta != 0:
            raise cfg.error("K", f"must be > 0, got {k}")
        return cls(sec.name, inputs, device, n, alpha, beta, k)

    def _forward(self, xs, train):
        x = concat_channels(xs)
        t = x.dtype.type
        self._x = x
        self._s = t(self.k) + t(self.alpha / self.n) * window_sum(x * x, self.behind, self.ahead)
        self._scale = self._s ** t(-self.beta)
        return x * self._scale

    def _backward(self, dz):
        if not self.needs_input_grad:
            return [None] * len(self.inputs)
        t = dz.dtype.type
        x = self._x
        g = dz * x * self._scale / self._s  # dy_i·x_i·S_i^(−β−1)
        # channel j is in the window of i for i ∈ [j − ahead, j + behind]
        spread = window_sum(g, self.ahead, self.behind)
        dx = dz * self._scale - t(2 * self.beta * self.alpha / self.n) * x * spread
        return split_channels(dx.astype(dz.dtype, copy=False), self.channels)

    def __repr__(self):
        ins = ",".join(p.name for p in self.inputs)
        return (f"LRNCell({self.name} <- {ins}: {self.out_shape} N={self.n} Alpha={self.alpha:g} "
                f"Beta={self.beta:g} K={self.k:g})")
