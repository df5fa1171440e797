"""Figures of the run viewer, drawn from plain arrays (no file reading).

Each ``draw_*`` returns a matplotlib Figure on its own Agg canvas (no pyplot state); the
confusion matrix is ``plots.draw_confusion``, the figure the run's own PNGs use.
"""

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm

from n2d2py.plots import (_figure, _margins, _points, _stimuli_axis, _success_range,
                          find_lr_label, find_lr_ylim)

GALLERY_COLS = 8
GALLERY_ROWS = 5
MAX_CHANNELS = 64  # feature maps tiled per layer panel (the first ones)
PANEL_COLS = 4  # layer panels per row of the stimulus figure
NON_INTERACTIVE = ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template")


# -- curves -------------------------------------------------------------------------------------


def draw_curves(learning, validation, test_rate, title, metric=None):
    """Learning and validation success (%) vs stimuli; the best validation starred; the test
    rate as a dashed line. ``learning``/``validation``: (step, value) rows or None."""
    fig = _figure(9, 5.2)
    ax = fig.add_subplot()
    _margins(fig, 0.85, 0.3, 0.7, 0.55)
    x, y = _points(None if learning is None else np.asarray(learning).tolist())
    if x.size:
        ax.plot(x, 100 * y, "o-" if x.size <= 20 else "-", color="tab:blue", lw=1.3, ms=3.5,
                label="learning (moving average)", gid="learning")
    xv, yv = _points(None if validation is None else np.asarray(validation).tolist())
    best = np.empty(0)
    if xv.size:
        what = f"validation ({metric}, class average)" if metric else "validation"
        ax.plot(xv, 100 * yv, "o-", color="tab:orange", lw=1.6, ms=4.5, label=what,
                gid="validation")
        k = int(np.argmax(yv))  # the first best: later equal scores do not replace it
        best = yv[k : k + 1]
        ax.plot(xv[k], 100 * yv[k], "*", color="tab:red", ms=16, mec="black", mew=0.6,
                zorder=5, label=f"best validation: {100 * yv[k]:.2f} % at {xv[k]:,.0f}",
                gid="best")
    if test_rate is not None:
        ax.axhline(100 * test_rate, color="tab:green", ls="--", lw=1.3,
                   label=f"test recognition rate: {100 * test_rate:.2f} %", gid="test")
    _stimuli_axis(ax)
    ax.set_ylabel("success rate (%)")
    extra = np.r_[best, yv, [test_rate] if test_rate is not None else []]
    _success_range(ax, x if x.size else xv, y if x.size else yv, extra)
    ax.set_title(title, fontsize=12)
    ax.legend(loc="lower right", fontsize=9)
    return fig


# -- confusion matrix ---------------------------------------------------------------------------


# -- stimuli ------------------------------------------------------------------------------------


def display_image(x):
    """(C, H, W) stimulus → (array, cmap, norm) for imshow: grey, RGB (from BGR) or channel 0."""
    x = np.asarray(x, dtype=np.float64)
    low, high = float(np.nanmin(x)), float(np.nanmax(x))
    if x.shape[0] == 3:
        scaled = (x - low) / (high - low) if high > low else np.zeros_like(x)
        return scaled[::-1].transpose(1, 2, 0), None, None  # OpenCV order is BGR
    return x[0], "gray", Normalize(low, high if high > low else low + 1)


def draw_gallery(images, titles, notes, title):
    """Up to GALLERY_ROWS×GALLERY_COLS stimuli, each with a title ("7 → 2") above and a
    small note (its position in the set) below."""
    n = len(images)
    cols = min(GALLERY_COLS, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    fig = _figure(1.55 * cols + 0.3, 1.9 * rows + 0.8)
    _margins(fig, 0.15, 0.15, 0.25, 0.8, wspace=0.12, hspace=0.45)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, x, text, note in zip(axes, images, titles, notes):
        data, cmap, norm = display_image(x)
        ax.imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_title(text, fontsize=12, fontweight="bold", pad=4)
        ax.set_xlabel(note, fontsize=8, color="0.35", labelpad=2)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=12, y=1 - 0.15 / fig.get_size_inches()[1], va="top")
    return fig


def tile(maps, limit=MAX_CHANNELS):
    """(C, H, W) → one 2-D mosaic of the first ``limit`` maps, NaN between and after them."""
    maps = np.asarray(maps, dtype=np.float64)[:limit]
    c, h, w = maps.shape
    cols = math.ceil(math.sqrt(c * h / w)) if c else 1
    cols = max(1, min(c, cols))
    rows = math.ceil(c / cols)
    gap = max(1, round(0.1 * max(h, w)))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = maps[k]
    return out


def _map_norm(values):
    """Diverging (blue/red around 0) for signed maps, sequential for non-negative ones."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low < 0 < high and min(-low, high) > 0.05 * max(-low, high):
        bound = max(-low, high)
        return "RdBu_r", TwoSlopeNorm(0.0, -bound, bound)
    return "magma", Normalize(low, high if high > low else low + 1e-6)


def _maps_panel(fig, ax, name, maps, shape_text):
    c = maps.shape[0]
    mosaic = tile(maps)
    cmap, norm = _map_norm(mosaic)
    image = ax.imshow(mosaic, cmap=colormaps[cmap].with_extremes(bad="white"), norm=norm,
                      interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    shown = f", first {MAX_CHANNELS} maps" if c > MAX_CHANNELS else ""
    ax.set_title(f"{name}\n{shape_text}{shown}", fontsize=9.5)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)


def _bars_panel(ax, name, values, shape_text, names=None, estimated=None, target=None):
    """1×1 outputs: one bar per channel; the estimated class red, the target class outlined."""
    c = values.size
    colours = np.full(c, "tab:blue", dtype=object)
    if estimated is not None and 0 <= estimated < c:
        colours[estimated] = "tab:red"
    bars = ax.bar(np.arange(c), values, color=list(colours), width=0.8 if c <= 40 else 1.0)
    if target is not None and 0 <= target < c and target != estimated:
        bars[target].set_edgecolor("black")
        bars[target].set_linewidth(1.6)
        bars[target].set_hatch("///")
    for k in {estimated, target} - {None}:
        if 0 <= k < c:
            ax.annotate(f"{values[k]:.3g}", (k, values[k]), xytext=(0, 2 if values[k] >= 0 else -2),
                        textcoords="offset points", ha="center", fontsize=7.5,
                        va="bottom" if values[k] >= 0 else "top")
    if names is not None and c <= 20:
        ax.set_xticks(np.arange(c), [str(s) for s in names], fontsize=8,
                      rotation=45 if max(len(str(s)) for s in names) > 3 else 0)
        ax.set_xlabel("class", fontsize=8)
    else:
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("channel", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_xlim(-0.7, c - 0.3)
    ax.margins(y=0.12)  # room for the value labels
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"{name}\n{shape_text}", fontsize=9.5)


def draw_stimulus(x, layers, title, names=None, estimated=None, target=None, classes=None):
    """The input after its transformations, then each layer's outputs.

    ``layers``: list of (name, type, (C, H, W) array). 1×1 outputs are bars; the estimated
    (red) and target (hatched) classes are marked in layers with ``classes`` outputs.
    """
    panels = len(layers) + 1
    cols = min(PANEL_COLS, panels)
    rows = math.ceil(panels / cols)
    fig = _figure(3.7 * cols + 0.3, 3.35 * rows + 0.9)
    _margins(fig, 0.4, 0.25, 0.8, 0.95, wspace=0.35, hspace=0.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    data, cmap, norm = display_image(x)
    axes[0].imshow(data, cmap=cmap, norm=norm, interpolation="nearest")
    c, h, w = np.shape(x)
    axes[0].set_title(f"input after transformations\n{c}×{h}×{w}, values "
                      f"{np.min(x):.3g} … {np.max(x):.3g}", fontsize=9.5)
    axes[0].tick_params(labelsize=7)
    for ax, (name, kind, out) in zip(axes[1:], layers):
        out = np.asarray(out)
        c, h, w = out.shape
        shape_text = f"{kind}, {c}×{h}×{w}"
        if h * w == 1:
            classy = classes is not None and c == classes
            _bars_panel(ax, name, out.reshape(-1), shape_text, names if classy else None,
                        estimated if classy else None, target if classy else None)
        else:
            _maps_panel(fig, ax, name, out, shape_text)
    for ax in axes[panels:]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=12)
    return fig


# -- find-lr ------------------------------------------------------------------------------------


def draw_find_lr(curves):
    """Loss vs learning rate (log x): ``curves`` = [(name, raw (n, 2), smooth or None,
    find_lr.Suggestion or None)], one axes each."""
    n = len(curves)
    fig = _figure(8.5, 4.8 * n + 0.2)
    _margins(fig, 0.85, 0.3, 0.65, 0.6, hspace=0.55)
    axes = fig.subplots(n, 1, squeeze=False).ravel()
    for ax, (name, raw, smooth, suggestion) in zip(axes, curves):
        rate = suggestion.rate if suggestion is not None else None
        keep = np.isfinite(raw).all(axis=1) & (raw[:, 0] > 0)
        ax.plot(raw[keep, 0], raw[keep, 1], "-" if keep.sum() > 200 else "o-", color="tab:blue",
                lw=0.9, ms=2.5, alpha=0.6, label="loss per batch", gid="raw")
        if smooth is not None and len(smooth):
            ax.plot(smooth[:, 0], smooth[:, 1], color="tab:green", lw=2.2,
                    label="smoothed loss (Bézier)", gid="smooth")
            limits = find_lr_ylim(smooth[:, 0], smooth[:, 1], raw[keep, 0], raw[keep, 1])
            if limits:
                ax.set_ylim(*limits)
        if rate is not None:
            ax.axvline(rate, color="red", lw=1.4, label=find_lr_label(rate, suggestion.clear))
        if keep.any():
            ax.set_xscale("log")
            ax.legend(loc="best", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("loss")
        ax.set_title(f"Learning-rate range test [{name}]: pick a rate where the loss still "
                     "falls steeply", fontsize=10.5)
    return fig
