"""Figure of one stimulus of the spike test (-test-index): output spike counts over time."""

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from n2d2py.atomic import atomic_write_bytes


def output_counts_over_time(spikes, nb_outputs):
    """(times in fs, counts (steps, outputs)): net count (pos − neg) of every output after
    each output spike, starting from 0 at time 0."""
    times = [0] + [t for t, _, _ in spikes]
    counts = np.zeros((len(spikes) + 1, nb_outputs), np.int64)
    for i, (_, neuron, sign) in enumerate(spikes, 1):
        counts[i] = counts[i - 1]
        counts[i, neuron] += sign
    return np.array(times, np.int64), counts


def plot_output_spikes(path, spikes, names, end, terminated=-1, label=None, title=""):
    """Step curves of every output's net spike count against time (ns); the decision's
    output is drawn thick, the target's label dashed, the Terminate time marked."""
    times, counts = output_counts_over_time(spikes, len(names))
    stop = terminated if terminated >= 0 else end
    t_ns = np.append(times, max(stop, times[-1])) / 1e6
    counts = np.vstack([counts, counts[-1:]])
    final = counts[-1]
    decision = int(np.argmax(final))
    fig = Figure(figsize=(8, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.09, 0.12, 0.68, 0.78])
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    for k, name in enumerate(names):
        target = label is not None and k == label and k != decision
        style = dict(lw=3.0 if k == decision else 2.0 if target else 1.3, color=cmap(k % cmap.N),
                     ls="--" if target else "-", zorder=3 if k == decision else 2.5 if target else 2)
        ax.step(t_ns, counts[:, k], where="post", label=f"{name}: {final[k]:+d}", **style)
    if terminated >= 0:
        ax.axvline(terminated / 1e6, color="0.3", lw=1, ls=":")
        ax.annotate("TerminateDelta reached", (terminated / 1e6, ax.get_ylim()[1]),
                    xytext=(-4, -12), textcoords="offset points", ha="right", fontsize=8)
    ax.set_xlabel("time (ns)")
    ax.set_ylabel("net output spikes (positive − negative)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title="output: count",
              title_fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
    fig.clear()
