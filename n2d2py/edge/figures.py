"""The edge estimation figures (matplotlib Agg, n2d2py.plots' canvas and atomic save)."""

import numpy as np
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from n2d2py.plots import _figure, _margins, _save


def plot_spike_stats(path, stats, names, title, current=None):
    """Spikes per sample: histogram with the median, the suggested NumWeights and the model's
    (``current``); per class box plots."""
    counts, per_class = stats["counts"], stats["per_class"]
    fig = _figure(12, 4.8)
    _margins(fig, 0.8, 0.3, 0.75, 0.8, wspace=0.25)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    if counts.size:
        edges = np.arange(counts.min(), counts.max() + 2) - 0.5
        left.hist(counts, bins=edges, color="tab:blue", alpha=0.8)
    left.axvline(stats["median"], color="black", lw=1.5, ls="--",
                 label=f"median: {stats['median']:g}")
    left.axvline(stats["suggested"], color="tab:red", lw=1.8,
                 label=f"suggested NumWeights (1.2 x median): {stats['suggested']}")
    if current is not None and current != stats["suggested"]:
        left.axvline(current, color="tab:purple", lw=1.5, ls=":", label=f"model's NumWeights: {current}")
    left.set_ylim(0, left.get_ylim()[1] * 1.3)  # room for the legend above the bars
    left.set_xlabel(f"spikes per sample (of {stats['nb_inputs']} inputs)")
    left.set_ylabel("samples")
    left.set_title(f"All classes ({counts.size} samples)", fontsize=11)
    left.legend(loc="upper right", fontsize=8)
    left.grid(True, alpha=0.3)
    shown = [(name, c) for name, c in zip(names, per_class) if len(c)]
    if shown:
        right.boxplot([c for _, c in shown], showfliers=True, widths=0.6,
                      flierprops={"markersize": 2, "alpha": 0.4},
                      medianprops={"color": "black", "lw": 1.5})
        right.set_xticks(range(1, len(shown) + 1), [n for n, _ in shown],
                         rotation=45 if max(len(n) for n, _ in shown) > 3 else 0)
    right.axhline(stats["suggested"], color="tab:red", lw=1.2, alpha=0.8,
                  label="suggested NumWeights")
    right.legend(loc="upper right", fontsize=8)
    right.set_xlabel("class")
    right.set_ylabel("spikes per sample")
    right.set_title("Per class (boxes: quartiles, line: median)", fontsize=11)
    right.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"Spike statistics — {title}", fontsize=12)
    _save(fig, path)


def plot_sweep(path, neurons, losses, learned, name, current=None):
    """Neurons-per-class sweep of one class: loss and neurons that learned vs neurons."""
    neurons = np.asarray(neurons)
    fig = _figure(12, 4.8)
    _margins(fig, 0.8, 0.3, 0.75, 0.8, wspace=0.25)
    left, right = fig.subplots(1, 2)
    left.plot(neurons, losses, "o-", color="tab:blue", ms=4)
    left.set_ylabel("loss: mean(NumWeights − best potential)")
    left.set_title(f"Loss for the samples of class '{name}'", fontsize=11)
    right.plot(neurons, learned, "o-", color="tab:green", ms=4, label="neurons that learned")
    right.plot(neurons, neurons, ":", color="0.5", lw=1, label="all neurons")
    right.set_ylim(0, max(1, learned.max()) * 1.15)
    right.set_ylabel("neurons that learned")
    right.set_title(f"Neurons that learned, class '{name}'", fontsize=11)
    right.legend(loc="lower right", fontsize=8)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_major_locator(MaxNLocator(8))
        ax.set_xlabel("neurons per class (log scale)")
        ax.grid(True, which="both", alpha=0.3)
        if current is not None:
            ax.axvline(current, color="tab:red", lw=1.2, alpha=0.7)
    if current is not None:
        left.text(current, 0.97, f" NeuronsPerClass={current}", color="tab:red", fontsize=8,
                  va="top", transform=left.get_xaxis_transform())
    fig.suptitle("Where the curves flatten, more neurons per class stop helping", fontsize=12)
    _save(fig, path)
