"""Run plots (spec §2.4, §2.5): success curves, confusion matrices, LR schedule, weight histograms.

Figures use matplotlib's object API on an Agg canvas (no pyplot, no global state); each is
rendered to memory and written with ``atomic_write_bytes``, so a failure leaves any old file.
"""

import io
import math

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from n2d2py.atomic import atomic_write_bytes
from n2d2py.backend import to_host

DPI = 100
CELL_TEXT_MAX = 30  # above this many classes, confusion cells carry no numbers
CELL_TEXT_CELLS = 300  # nor above this many non-empty cells (each text costs ~0.5 ms)
TICK_LABELS_MAX = 60  # above this many classes, only every k-th class name is shown
CMAP = "Blues"


def _figure(width, height):
    """A Figure (inches) on its own Agg canvas; margins are set by hand (layout engines cost)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _margins(fig, left, right, bottom, top, **space):
    """subplots_adjust with margins in inches."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        **space)


def _save(fig, path):
    """Render ``fig`` to PNG in memory, then replace ``path`` atomically; always free the figure."""
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
        atomic_write_bytes(path, buf.getvalue())
    finally:
        fig.clear()


def _points(rows):
    """(steps, values) float arrays from (step, value) rows, non-finite rows dropped."""
    a = np.array([tuple(r) for r in rows or ()], dtype=np.float64).reshape(-1, 2)  # None → NaN
    keep = np.isfinite(a).all(axis=1)
    return a[keep, 0], a[keep, 1]


def _stimuli_axis(ax):
    """Common x axis: stimuli counts with k/M suffixes."""
    ax.set_xlabel("stimuli learned")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)


def plot_success(path, learning, validation=None, best=None, metric="Sensitivity"):
    """Learning (and validation) success curves in %, with the best validation score marked."""
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    x, y = _points(learning)
    if x.size > 2000:  # a moving average: a stride keeps its shape and bounds the drawing time
        keep = np.unique(np.r_[np.arange(0, x.size, math.ceil(x.size / 2000)), x.size - 1])
        x, y = x[keep], y[keep]
    ax.plot(x, 100 * y, "o-" if x.size <= 20 else "-", color="tab:blue", lw=1.2, ms=3,
            label="learning (moving average)")
    xv, yv = _points(validation)
    if validation is not None:
        ax.plot(xv, 100 * yv, "o-", color="tab:orange", lw=1.5, ms=4,
                label=f"validation ({metric})")
    bx, by = _points([best] if best is not None else [])
    if bx.size:
        ax.plot(bx, 100 * by, "*", color="tab:red", ms=14, mec="black", mew=0.6, zorder=5,
                label=f"best validation: {100 * by[0]:.2f} %")
    _stimuli_axis(ax)
    ax.set_ylabel("success rate (%)")
    _success_range(ax, x, y, np.concatenate([yv, by]))
    ax.set_title("Success rate, learning and validation" if validation is not None
                 else "Success rate, learning")
    if x.size or xv.size or bx.size:
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no data yet", transform=ax.transAxes, ha="center", va="center")
        ax.set(xlim=(0, 1), ylim=(0, 100))
    _save(fig, path)


def _success_range(ax, x, y, validation):
    """y limits that show the converged part: the first quarter of learning may fall below."""
    late = y[x >= x.min() + 0.25 * (x.max() - x.min())] if x.size >= 8 else y
    values = 100 * np.concatenate([late, validation])
    if values.size:
        low, high = float(values.min()), float(values.max())
        pad = max(0.5, 0.1 * (high - low))
        bottom = max(0.0, low - pad)
        ax.set_ylim(bottom, min(100.0, high) + pad)
        if y.size and 100 * y.min() < bottom:
            ax.text(0.01, 0.01, f"(early learning below the axis, from {100 * y.min():.1f} %)",
                    transform=ax.transAxes, fontsize=8, color="0.35", va="bottom")


def _class_ticks(ax, labels, ticks, size, rotate):
    """Class names on both axes ("estimated" columns, "target" rows)."""
    ax.set_xticks(ticks, labels, fontsize=size, rotation=45 if rotate else 0,
                  ha="right" if rotate else "center", rotation_mode="anchor")
    ax.set_yticks(ticks, labels, fontsize=size)
    ax.set_xlabel("estimated")
    ax.set_ylabel("target")
    ax.tick_params(length=2)


def _cell_text(ax, values, texts, norm, size):
    """Write ``texts`` in each cell: white on dark cells, black on light ones."""
    shade = norm(np.ma.masked_invalid(values)).filled(0.0)
    for (i, j), text in np.ndenumerate(texts):
        if text:
            ax.text(j, i, text, ha="center", va="center", fontsize=size,
                    color="white" if shade[i, j] > 0.55 else "black")


def _confusion_panel(fig, rect, cbar_rect, values, norm, title, label):
    """One panel at ``rect`` (figure fractions): the image, its title and colorbar."""
    ax = fig.add_axes(rect)
    cmap = colormaps[CMAP].with_extremes(bad="white")  # empty cells stay white
    image = ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.set_title(title, fontsize=11)
    fig.colorbar(image, cax=fig.add_axes(cbar_rect), label=label).minorticks_off()
    return ax


def plot_confusion(path, matrix, names, title):
    """``draw_confusion`` written as a PNG at ``path``."""
    _save(draw_confusion(matrix, names, title), path)


def draw_confusion(matrix, names, title):
    """Confusion matrix as counts (log colour above 10) and row-normalised % side by side,
    with class names (the run's PNGs and the viewer draw this one figure)."""
    m = np.nan_to_num(to_host(matrix).astype(np.float64), nan=0.0)
    m = m if m.size else np.zeros((1, 1))
    n = m.shape[0]
    names = [str(names[i]) if names is not None and i < len(names) and str(names[i]) != ""
             else str(i) for i in range(n)]
    rows = m.sum(axis=1, keepdims=True)
    pct = np.divide(100 * m, rows, out=np.zeros_like(m), where=rows > 0)
    # Geometry in inches: tick labels sized from the longest name, square panels, colorbars.
    ticks = np.arange(0, n, max(1, math.ceil(n / TICK_LABELS_MAX)))
    labels = [names[i] for i in ticks]
    side = min(max(4.5, 0.45 * n), 11)
    tick_size = round(2 * min(10.0, max(6.0, 0.5 * side * 72 / max(len(ticks), 1)))) / 2
    longest = max((len(s) for s in labels), default=1)
    rotate = longest > 3
    label_w = longest * tick_size * 0.62 / 72
    left, bottom, top = 0.5 + label_w, 0.5 + (0.71 * label_w if rotate else tick_size / 50), 0.85
    panel_w = left + side + 1.35
    fig = _figure(2 * panel_w, bottom + side + top)
    w, h = fig.get_size_inches()
    count_top = max(float(m.max()) if m.size else 1.0, 1.0)
    log = count_top > 10
    panels = (
        ("counts", np.where(m > 0, m, np.nan),
         LogNorm(1, count_top) if log else Normalize(0, count_top), "stimuli (count)",
         "count (log scale)" if log else "count", m, _count),
        ("percent", np.where(m > 0, pct, np.nan), Normalize(0, 100),
         "% of each target row (recall on the diagonal)", "% of target row", pct, _pct),
    )
    for k, (gid, values, norm, panel_title, label, raw, fmt) in enumerate(panels):
        x0 = k * panel_w + left
        ax = _confusion_panel(fig, (x0 / w, bottom / h, side / w, side / h),
                              ((x0 + side + 0.15) / w, bottom / h, 0.18 / w, side / h),
                              values, norm, panel_title, label)
        ax.images[0].set_gid(gid)
        _class_ticks(ax, labels, ticks, tick_size, rotate)
        if n <= CELL_TEXT_MAX and np.count_nonzero(m) <= CELL_TEXT_CELLS:
            texts = np.array([[fmt(v) for v in r] for r in raw], dtype=object)
            widest = max((len(t) for t in texts.ravel()), default=1)
            cell_size = min(10.0, side * 72 / max(n, 1) / (0.64 * widest + 0.6))
            if cell_size >= 4.5:
                _cell_text(ax, values, texts, norm, cell_size)
    total, correct = float(m.sum()), float(np.trace(m))
    rate = (f" — recognition rate {100 * correct / total:.2f} % ({int(correct):,}/{int(total):,})"
            if total else " — no stimuli")
    fig.suptitle(f"{title}{rate}", fontsize=12, y=1 - 0.12 / h, va="top")
    return fig


def _count(v):
    """Cell text for a count: '' for 0."""
    return f"{int(v)}" if v > 0 else ""


def _pct(v):
    """Cell text for a percentage: '' for 0, '<0.1' below, one decimal otherwise."""
    if v <= 0:
        return ""
    if v >= 99.95:
        return "100"
    return "<0.1" if v < 0.05 else f"{v:.1f}"


def _thin(x, y, limit=4000):
    """Keep the points where y changes (exact for a step plot), then stride to ``limit``."""
    if y.size <= limit:
        return x, y
    keep = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    keep = np.unique(np.r_[keep, y.size - 1])
    if keep.size > limit:
        keep = np.unique(np.r_[keep[:: math.ceil(keep.size / limit)], y.size - 1])
    return x[keep], y[keep]


def plot_lr_schedule(path, rates, batch_size):
    """Learning rate of each update vs stimuli learned (log y over more than two decades)."""
    batch_size = max(1, int(batch_size))
    y = to_host(rates).astype(np.float64).reshape(-1)
    x = (np.arange(y.size) + 1.0) * batch_size
    keep = np.isfinite(y)
    x, y = _thin(x[keep], y[keep])
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    ax.plot(x, y, drawstyle="steps-post", color="tab:green", lw=1.5)
    positive = y[y > 0]
    if positive.size and positive.max() / positive.min() > 100 and positive.size == y.size:
        ax.set_yscale("log")
    _stimuli_axis(ax)
    ax.set_ylabel("learning rate")
    ax.set_title(f"Learning rate per update (batch size {batch_size})")
    if not y.size:
        ax.text(0.5, 0.5, "no updates", transform=ax.transAxes, ha="center", va="center")
        ax.set(xlim=(0, 1), ylim=(0, 1))
    _save(fig, path)


def plot_weights_histograms(path, arrays_by_name):
    """One histogram of the values per layer's weights, in a grid."""
    items = list((arrays_by_name or {}).items())
    cols = min(4, max(1, math.ceil(math.sqrt(len(items)))))
    rows = max(1, math.ceil(len(items) / cols))
    fig = _figure(3.2 * cols + 0.6, 2.4 * rows + 1.0)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _margins(fig, 0.75, 0.25, 0.6, 0.75, wspace=0.3, hspace=0.55)
    for ax, (name, array) in zip(axes, items):
        _histogram(ax, str(name), to_host(array).astype(np.float64).reshape(-1))
    for ax in axes[len(items):]:
        ax.set_axis_off()
    if not items:
        axes[0].text(0.5, 0.5, "no weights", ha="center", va="center")
    fig.suptitle("Weights distribution per layer", fontsize=12)
    fig.supxlabel("weight value", fontsize=10)
    fig.supylabel("count", fontsize=10)
    _save(fig, path)


def _histogram(ax, name, values):
    """One layer's panel: 50-bin histogram of its finite values; n, mean and std in the title."""
    finite = values[np.isfinite(values)]
    ax.tick_params(labelsize=7)
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    stats = f"n={finite.size}"
    if finite.size:
        stats += f"  μ={finite.mean():.2g}  σ={finite.std():.2g}"
        counts, edges = np.histogram(finite, bins=50)
        ax.stairs(counts, edges, fill=True, color="tab:blue", alpha=0.8)
    else:
        ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center", va="center")
    if finite.size < values.size:
        stats += f"  ({values.size - finite.size} non-finite)"
    ax.set_title(f"{name}\n{stats}", fontsize=8)


def find_lr_label(rate, clear=True):
    """The legend of the suggested-rate line; an uncertain suggestion says so."""
    return f"suggested learning rate: {rate:.4g}" + ("" if clear else " (uncertain: weak curve)")


def plot_find_lr(path, lrs, losses, smooth_lr, smooth_loss, suggested, target, clear=True):
    """-find-lr: raw and Bézier-smoothed loss vs learning rate (log x), the suggested rate as
    a red vertical line; y range from ``find_lr_ylim``."""
    x, y = (to_host(a).astype(np.float64).reshape(-1) for a in (lrs, losses))
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
    sx, sy = (to_host(a).astype(np.float64).reshape(-1) for a in (smooth_lr, smooth_loss))
    fig = _figure(8, 5)
    ax = fig.add_subplot()
    ax.plot(x[keep], y[keep], "o-" if keep.sum() <= 200 else "-", color="tab:blue", lw=0.8,
            ms=2.5, alpha=0.55, label="loss (per batch)")
    if sx.size:
        ax.plot(sx, sy, color="tab:green", lw=2.2, label="smoothed loss (Bézier)")
    if suggested is not None:
        ax.axvline(suggested, color="red", lw=1.5, label=find_lr_label(suggested, clear))
    if keep.any():
        ax.set_xscale("log")
    limits = find_lr_ylim(sx, sy, x[keep], y[keep])
    if limits:
        ax.set_ylim(*limits)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel("Learning rate (log scale)")
    ax.set_ylabel("Loss")
    ax.set_title(f"Find where the loss is still decreasing but has not plateaued\n[{target}]",
                 fontsize=11)
    if keep.any():
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no finite loss recorded", transform=ax.transAxes, ha="center",
                va="center")
    _save(fig, path)


def find_lr_ylim(smooth_lr, smooth_loss, lrs, losses):
    """(low, high) for a find-lr plot, or None. N2D2's range is [min − d, init + d] of the
    smoothed curve, d = (init − min)/10; here "init" is the plateau before the minimum (the
    smoothed maximum there, or the 90th percentile of the raw losses there, whichever is
    higher) rather than the first point alone, and the bottom reaches the lowest raw loss, so
    that neither the plateau nor a measured low is cut off. The blow-up above stays clipped."""
    sx, sy = np.asarray(smooth_lr, np.float64), np.asarray(smooth_loss, np.float64)
    if sy.size < 2:
        return None
    at_min = int(np.argmin(sy))
    high = sy[: at_min + 1].max()
    x, y = np.asarray(lrs, np.float64), np.asarray(losses, np.float64)
    before = y[x <= sx[at_min]]
    if before.size:
        high = max(high, float(np.percentile(before, 90)))
    low = min(sy.min(), y.min()) if y.size else sy.min()
    if not high > low:
        return None
    pad = (high - low) / 10
    return low - pad, high + pad


def plot_find_lr_range(path, rates, batch_size):
    """-find-lr: the learning rate of each iteration (batch), log y."""
    y = to_host(rates).astype(np.float64).reshape(-1)
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    ax.plot(np.arange(y.size), y, color="tab:green", lw=1.5)
    if y.size and (y > 0).all():
        ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_xlabel(f"Iteration # (batch size: {max(1, int(batch_size))})")
    ax.set_ylabel("Learning rate (log scale)")
    ax.set_title("Learning rate range of -find-lr")
    _save(fig, path)
