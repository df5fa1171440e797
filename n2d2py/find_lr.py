"""``-find-lr N``: the learning-rate range test (spec §7).

One continuous training run from the initial weights on N random Learn stimuli, with every
solver's learning rate overridden (``global_lr``: replaces α and the policy, keeps the
/(B·IterationSize) scaling, momentum and decay) by a rate growing exponentially from 1e-6 to
just below 10. Each batch's loss (per target, the value of ``Target.loss_grad``) is recorded
with its rate; the smoothed curve gives a suggested rate. No weights are saved.

Early stop (n2d2py's rule; N2D2 runs to the end): the run stops, before the batch's update,
when a target's loss is not finite, or when, from the 11th batch on, it exceeds
``DIVERGE_FACTOR`` × that target's first-batch loss. The bounded MSE-on-softmax loss of §3.7
rarely meets the second test; unbounded (MSE) targets do. The suggestion is made from the
points recorded before the stop, and the ``.dat`` gets a second header line (``STOPPED_MARK``)
so that the viewer knows the curve ends at a blow-up.

A curve that never falls below its first smoothed value gets no suggestion, and neither does
a sweep that ran to its end with the smoothed loss lowest at its last point: no rise was seen,
so N2D2's rule would return about half of the largest rate swept. A message says so and the
run still exits with status 0 (the curves and plots are written). A suggestion whose smoothed
drop is less than ``CLEAR_DROP`` times the batch-to-batch noise is printed with a warning:
on LeNet such weak curves gave the suggestions that learned worst
(``benchmarks/README.md``). N2D2 does neither. N2D2's gnuplot script (``.dat.gnu``) is not
written: the PNG is drawn with matplotlib.
"""

import math
import os
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from n2d2py.atomic import atomic_write_text

START_LR = 1.0e-6
END_LR = 10.0
SAMPLES = 100  # points of the smoothed curve (gnuplot's default `set samples`)
DIVERGE_FACTOR = 4.0
DIVERGE_MIN_BATCHES = 10
CLEAR_DROP = 5.0  # smoothed drop / raw noise below which a suggestion is called uncertain


def lr_schedule(nb_stimuli, batch_size):
    """Rate of each batch b = 0 … ceil(N/B)−1: 1e-6·exp(grow·b·B), grow = ln(10/1e-6)/N.

    N counts stimuli, so the last batch's rate is just below 10.
    """
    grow = math.log(END_LR / START_LR) / nb_stimuli
    b = np.arange(math.ceil(nb_stimuli / batch_size), dtype=np.float64)
    return START_LR * np.exp(grow * b * batch_size)


def bezier_smooth(x, y, samples=SAMPLES):
    """gnuplot's ``smooth bezier``: the Bézier curve whose control points are ALL n points
    (degree n−1, Bernstein weights C(n−1,i)·tⁱ(1−t)ⁿ⁻¹⁻ⁱ), at ``samples`` evenly spaced t in
    [0, 1]. It passes through the first and last points. The weights are computed in log space
    (``math.lgamma``) and normalised, so thousands of points do not under/overflow."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return np.empty(0), np.empty(0)
    n = x.size - 1
    t = np.linspace(0.0, 1.0, samples)[:, None]
    i = np.arange(n + 1, dtype=np.float64)
    lg = np.array([math.lgamma(k + 1.0) for k in range(n + 1)])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_w = (lg[n] - lg - lg[::-1]
                 + np.where(i > 0, i * np.log(t), 0.0)
                 + np.where(i < n, (n - i) * np.log1p(-t), 0.0))
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w @ x, w @ y


@dataclass
class Suggestion:
    rate: float | None  # None: the smoothed loss never decreases below its first value
    lr: np.ndarray  # the smoothed curve (SAMPLES points, or fewer than 2 finite points: empty)
    loss: np.ndarray
    x_min: float | None = None
    x_max: float | None = None
    x_limit: float | None = None  # rate at the smoothed minimum
    at_end: bool = False  # the smoothed minimum is the last sample: no rise in the curve
    drop: float = 0.0  # smoothed plateau before the minimum − smoothed minimum
    noise: float = 0.0  # std of the raw losses about the smoothed curve, up to the minimum

    @property
    def clear(self):
        """The drop stands out of the batch-to-batch noise (``CLEAR_DROP`` times or more)."""
        return self.drop >= CLEAR_DROP * self.noise


STOPPED_MARK = "# stopped early"  # second header line of a .dat whose sweep stopped early


def suggest(lrs, losses, samples=SAMPLES, stopped=False):
    """Spec §7 rule on the Bézier-smoothed (log10 lr, loss) curve (non-finite points dropped):

    1. loss_init = first smoothed loss; x_limit = rate at the smoothed global minimum;
    2. mark the points whose loss < loss_init, decreasing vs the previous point, rate ≤ x_limit;
    3. in the LAST contiguous run of marked points, x_min = rate at its start, x_max = rate of
       the first point after it;
    4. suggested rate = (x_min + x_max)/2 (arithmetic mean).

    No rate either when the smoothed minimum is the last sample of a sweep that was not
    ``stopped`` early: the loss was still falling at the largest rate swept.
    """
    lrs = np.asarray(lrs, dtype=np.float64).reshape(-1)
    losses = np.asarray(losses, dtype=np.float64).reshape(-1)
    keep = np.isfinite(lrs) & np.isfinite(losses) & (lrs > 0)
    if keep.sum() < 2:
        return Suggestion(None, np.empty(0), np.empty(0))
    xs, ys = bezier_smooth(np.log10(lrs[keep]), losses[keep], samples)
    lr = 10.0 ** xs
    at_min = int(np.argmin(ys))
    x_limit = lr[at_min]
    before = lrs[keep] <= x_limit
    residual = losses[keep][before] - np.interp(np.log10(lrs[keep][before]), xs, ys)
    shape = dict(x_limit=float(x_limit), at_end=at_min == ys.size - 1,
                 drop=float(ys[: at_min + 1].max() - ys[at_min]), noise=float(residual.std()))
    marked = np.zeros(ys.size, dtype=bool)
    marked[1:] = (ys[1:] < ys[0]) & (np.diff(ys) < 0) & (lr[1:] <= x_limit)
    if not marked.any() or (shape["at_end"] and not stopped):
        return Suggestion(None, lr, ys, **shape)
    end = int(np.flatnonzero(marked)[-1])
    start = end
    while start > 0 and marked[start - 1]:
        start -= 1
    x_min, x_max = float(lr[start]), float(lr[min(end + 1, lr.size - 1)])
    return Suggestion((x_min + x_max) / 2, lr, ys, x_min, x_max, **shape)


def _diverged(losses, first, batch):
    if not all(math.isfinite(v) for v in losses):
        return "not finite"
    if batch >= DIVERGE_MIN_BATCHES and any(v > DIVERGE_FACTOR * f for v, f in zip(losses, first)):
        return f"above {DIVERGE_FACTOR:g}x its first value"
    return None


def run(net, opts, out):
    """The range test on ``net`` (initialised or imported); writes the curves and plots to
    ``out`` and prints one suggestion line per target."""
    provider = net.provider
    batch_size = provider.batch_size
    rates = lr_schedule(opts.find_lr, batch_size)
    rng = np.random.default_rng(net.device.rng.integers(2**63))
    params = net.params()
    names = [section for section, _, _ in net.targets]
    recorded = [[] for _ in names]  # per target: (lr, loss)
    first, stopped = None, None
    bar = tqdm(total=rates.size, unit="batch", desc="Finding LR", dynamic_ncols=True,
               mininterval=0.5, disable=None)
    stream = provider.random_batches(opts.find_lr, rng)
    try:
        with bar, np.errstate(over="ignore", invalid="ignore"):
            for b, (x, labels, _) in enumerate(stream):
                lr = float(rates[b])
                grads, losses = net.loss_grads(net.forward(x, train=True), labels)
                first = first or losses
                reason = _diverged(losses, first, b)
                if reason:
                    stopped = (f"stopped at lr={lr:.4g} (batch {b + 1}/{rates.size}): "
                               f"the loss diverged ({reason})")
                    break
                for rows, loss in zip(recorded, losses):
                    rows.append((lr, loss))
                net.backward(grads)
                for param in params:
                    param.solver.global_lr = lr
                    if param.solver.update(param, len(labels)):
                        param.grad[...] = 0
                bar.update(1)
                bar.set_postfix(lr=f"{lr:.3g}", loss=f"{sum(losses):.4f}", refresh=False)
    finally:
        stream.close()  # stops the prefetch thread after an early stop
        for param in params:
            param.solver.global_lr = None
    if stopped:
        print(stopped)
        stopped = f"{STOPPED_MARK}: {stopped}"
    done = len(recorded[0]) if recorded else 0
    print(f"Done! {done} batches of {batch_size} learned, lr from {START_LR:g} to "
          f"{rates[max(done - 1, 0)]:.4g}")
    _write_outputs(net, out, names, recorded, rates[:max(done, 1)], batch_size, stopped)


def _write_outputs(net, out, names, recorded, rates, batch_size, stopped):
    from n2d2py import plots

    os.makedirs(out, exist_ok=True)
    key = _lr_key(net.doc)
    written = []
    for name, rows in zip(names, recorded):
        base = os.path.join(out, f"find_lr_{name.replace(os.sep, '_')}")
        written.append(os.path.basename(base) + ".{dat,dat.smooth,png}")
        data = np.array(rows, dtype=np.float64).reshape(-1, 2)
        header = "# lr loss\n" + (f"{stopped}\n" if stopped else "")
        atomic_write_text(base + ".dat", header + _rows(data[:, 0], data[:, 1]))
        s = suggest(data[:, 0], data[:, 1], stopped=bool(stopped))
        atomic_write_text(base + ".dat.smooth", f"# lr loss (Bezier smoothing, {SAMPLES} samples)\n"
                          + _rows(s.lr, s.loss))
        plots.plot_find_lr(base + ".png", data[:, 0], data[:, 1], s.lr, s.loss, s.rate, name,
                           clear=s.clear)
        if s.rate is not None:
            print(f"Suggested learning rate for {name}: {s.rate:.4g}  ->  {key}={s.rate:.4g}")
            if not s.clear:
                print(f"Uncertain: the smoothed loss of {name} falls by {s.drop:.3g}, only "
                      f"{s.drop / max(s.noise, 1e-30):.1f}x its batch-to-batch noise "
                      f"({s.noise:.3g}); a larger -find-lr N gives a cleaner curve")
        elif s.at_end:
            print(f"No learning rate suggested for {name}: the smoothed loss is lowest at the "
                  f"end of the sweep (lr {s.x_limit:.3g}), so no rise was seen (try a larger "
                  "-find-lr N, or check that the network learns)")
        else:
            print(f"No learning rate suggested for {name}: the smoothed loss never decreases "
                  "below its first value (try a larger -find-lr N, or check the network)")
    plots.plot_find_lr_range(os.path.join(out, "find_lr-range.png"), rates, batch_size)
    print(f"Written in {os.path.abspath(out)}/: {', '.join(written)}, find_lr-range.png")


def _rows(xs, ys):
    return "".join(f"{a:.8g} {v:.8g}\n" for a, v in zip(xs, ys))


def _lr_key(doc):
    """The INI key that sets the rate found: ``WeightsSolver.LearningRate`` where the model
    writes it (it overrides ``Solvers.LearningRate`` for the weights), else the latter."""
    for name in doc.section_names():
        if "WeightsSolver.LearningRate" in doc.sections[name].props:
            return "WeightsSolver.LearningRate"
    return "Solvers.LearningRate"
