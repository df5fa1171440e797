"""Run plots: valid PNGs, empty and NaN inputs, no figure leaks, atomic replacement."""

import gc
import os
import time
import weakref

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from n2d2py import atomic, plots
from n2d2py.errors import N2D2PyError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DIGITS = [str(i) for i in range(10)]


def mnist_like_confusion(seed=0):
    """A 10-class test confusion matrix around 99 % with a few realistic confusions."""
    rng = np.random.default_rng(seed)
    support = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    m = np.zeros((10, 10), dtype=np.int64)
    for t, n in enumerate(support):
        errors = rng.multinomial(int(n * rng.uniform(0.003, 0.015)), rng.dirichlet([0.4] * 9))
        m[t] = np.insert(errors, t, 0)
        m[t, t] = n - errors.sum()
    return m


def curves(n_learning=60, n_validation=10, seed=0):
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n_learning + 1) * 10000
    learning = [(int(s), 1 - 0.9 * np.exp(-s / 15000) - 0.01 + rng.normal(0, 0.001))
                for s in steps]
    every = n_learning // n_validation
    validation = [(int(s), 0.99 - 0.5 * np.exp(-s / 12000) + rng.normal(0, 0.001))
                  for s in steps[every - 1 :: every]]
    return learning, validation, max(validation, key=lambda r: r[1])


def check_png(path, size=None, min_bytes=5000):
    """A PNG file, non-trivial, of ``size`` (width, height) pixels when given; returns the image."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > min_bytes
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    if size is not None:
        assert image.shape[1::-1] == size
    assert image[..., :3].std() > 0.01  # not a blank canvas
    return image


@pytest.fixture
def captured(monkeypatch):
    """The figures passed to plots._save, inspected just before they are rendered and freed."""
    seen = []
    original = plots._save

    def spy(fig, path):
        seen.append(inspect(fig))
        original(fig, path)

    monkeypatch.setattr(plots, "_save", spy)
    return seen


def inspect(fig):
    """What the tests look at in a figure: per axes its scale, legend labels and cell texts."""
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        out.append({
            "yscale": ax.get_yscale(),
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "texts": [(t.get_text(), t.get_color(), t.get_position()) for t in ax.texts],
            "visible": ax.axison,
            "title": ax.get_title(),
        })
    return out


# -- success curves -----------------------------------------------------------------------


def test_success_learning_only(tmp_path, captured):
    learning, _, _ = curves()
    path = tmp_path / "target" / "Success_learning.png"  # parent folder created
    plots.plot_success(path, learning)
    check_png(path, size=(800, 500))
    legend = captured[0][0]["legend"]
    assert legend == ["learning (moving average)"]


def test_success_validation_marks_best(tmp_path, captured):
    learning, validation, best = curves()
    path = tmp_path / "Success_validation.png"
    plots.plot_success(path, learning, validation, (best[0], 0.98871), metric="F1Score")
    check_png(path, size=(800, 500))
    legend = captured[0][0]["legend"]
    assert "best validation: 98.87 %" in legend
    assert "validation (F1Score)" in legend


@pytest.mark.parametrize("validation", [None, []])
def test_success_empty_inputs(tmp_path, validation):
    for i, learning in enumerate(([], [(100, 0.5)])):
        path = tmp_path / f"s{i}.png"
        plots.plot_success(path, learning, validation, None)
        check_png(path, size=(800, 500))


def test_success_skips_nan(tmp_path):
    learning = [(100, 0.5), (200, float("nan")), (300, 0.7), (float("nan"), 0.8)]
    plots.plot_success(tmp_path / "s.png", learning, [(200, float("nan"))], (None, 0.6))
    plots.plot_success(tmp_path / "t.png", learning, [(200, 0.6)], (200, float("inf")))
    check_png(tmp_path / "s.png")
    check_png(tmp_path / "t.png")


# -- confusion matrices -------------------------------------------------------------------


def test_confusion_ten_classes_has_numbers(tmp_path, captured):
    m = mnist_like_confusion()
    path = tmp_path / "ConfusionMatrix_test.png"
    plots.plot_confusion(path, m, DIGITS, "conv2.Target: test")
    image = check_png(path, min_bytes=20000)
    assert image.shape[1] > image.shape[0] > 400  # two panels side by side
    counts, _, percents, _ = captured[0]  # panel, colorbar, panel, colorbar
    texts = {(round(x), round(y)): (s, c) for s, c, (x, y) in counts["texts"]}
    assert texts[(1, 1)] == (str(m[1, 1]), "white")  # dark diagonal cell
    small = next((i, j) for i, j in zip(*np.nonzero(m)) if i != j)
    assert texts[(small[1], small[0])] == (str(m[small]), "black")
    assert any(s == f"{100 * m[1, 1] / m[1].sum():.1f}" for s, _, _ in percents["texts"])


def test_confusion_many_classes_has_no_cell_text(tmp_path, captured):
    rng = np.random.default_rng(1)
    m = rng.poisson(0.3, (40, 40)) + np.diag(rng.integers(50, 200, 40))
    names = [f"class{i}" for i in range(40)]
    plots.plot_confusion(tmp_path / "c.png", m, names, "t")
    check_png(tmp_path / "c.png")
    assert not captured[0][0]["texts"] and not captured[0][2]["texts"]


def test_confusion_degenerate_inputs(tmp_path):
    m = mnist_like_confusion().astype(np.float64)
    m[3, 4] = np.nan
    m[5] = 0  # an empty target row: no division by zero
    plots.plot_confusion(tmp_path / "a.png", m, DIGITS[:4], "missing names")
    plots.plot_confusion(tmp_path / "b.png", np.zeros((3, 3), dtype=np.int64), None, "empty")
    plots.plot_confusion(tmp_path / "c.png", np.zeros((0, 0)), [], "nothing")
    for name in "abc":
        check_png(tmp_path / f"{name}.png")


# -- learning rate and weights ------------------------------------------------------------


def test_lr_schedule_scales(tmp_path, captured):
    steps = [0.05 * 0.5 ** (i // 200) for i in range(2000)]  # three decades
    plots.plot_lr_schedule(tmp_path / "lr.png", steps, 32)
    plots.plot_lr_schedule(tmp_path / "flat.png", [0.01] * 50 + [float("nan")] + [0.005] * 50, 16)
    plots.plot_lr_schedule(tmp_path / "none.png", [], 16)
    for name in ("lr", "flat", "none"):
        check_png(tmp_path / f"{name}.png", size=(800, 450))
    assert [c[0]["yscale"] for c in captured] == ["log", "linear", "linear"]


def test_lr_schedule_many_updates_stays_quick(tmp_path):
    rates = 0.1 * np.exp(-np.arange(200000) / 50000.0)
    start = time.perf_counter()
    plots.plot_lr_schedule(tmp_path / "lr.png", rates, 64)
    assert time.perf_counter() - start < 3.0
    check_png(tmp_path / "lr.png")


class FakeDeviceArray:
    """Stands for a CuPy array: plots must call .get()."""

    def __init__(self, a):
        self.a = a

    def get(self):
        return self.a


def test_weights_histograms_grid(tmp_path, captured):
    rng = np.random.default_rng(0)
    arrays = {
        "conv1": rng.normal(0, 0.1, (6, 1, 5, 5)).astype(np.float32),
        "conv2": FakeDeviceArray(rng.normal(0, 0.1, (16, 6, 5, 5))),
        "fc1": np.r_[rng.normal(0, 0.02, 1000), np.nan, np.inf],
        "fc2": np.array([]),
        "fc3": np.full(10, 0.25),
    }
    plots.plot_weights_histograms(tmp_path / "w.png", arrays)
    check_png(tmp_path / "w.png")
    axes = captured[0]
    assert sum(a["visible"] for a in axes) == 5 and len(axes) == 6  # 3x2 grid, one unused
    assert "2 non-finite" in axes[2]["title"]
    plots.plot_weights_histograms(tmp_path / "none.png", {})
    check_png(tmp_path / "none.png")


# -- resources and atomicity --------------------------------------------------------------


def test_repeated_calls_do_not_leak_figures(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    made = []
    original = plots._figure
    monkeypatch.setattr(plots, "_figure", lambda *a: made.append(weakref.ref(original(*a)))
                        or made[-1]())
    learning, validation, best = curves(20, 4)
    for _ in range(10):
        plots.plot_success(tmp_path / "s.png", learning, validation, best)
        plots.plot_confusion(tmp_path / "c.png", np.eye(3, dtype=int) * 5, "abc", "t")
        plots.plot_lr_schedule(tmp_path / "lr.png", [0.01, 0.005], 8)
        plots.plot_weights_histograms(tmp_path / "w.png", {"a": np.arange(10.0)})
    gc.collect()
    assert len(made) == 40 and all(ref() is None for ref in made)
    assert plt.get_fignums() == []
    source = open(plots.__file__, encoding="utf-8").read()
    assert "import matplotlib.pyplot" not in source and "import pyplot" not in source


def test_failed_render_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "Success_learning.png"
    path.write_bytes(b"old")

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        plots.plot_success(path, [(1, 0.5)])
    with pytest.raises(RuntimeError):
        plots.plot_confusion(path, mnist_like_confusion(), DIGITS, "t")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == [path.name]


def test_failed_replace_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ConfusionMatrix_test.png"
    path.write_bytes(b"old")

    def broken(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(N2D2PyError, match="cannot write: no space left"):  # one line (atomic.py)
        plots.plot_confusion(path, mnist_like_confusion(), DIGITS, "t")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == [path.name]


def test_log_step_plots_are_quick(tmp_path):
    """Each plot of a 10-class run is meant to take < 0.3 s; the bound here leaves CI slack."""
    learning, validation, best = curves(600, 10)
    m = mnist_like_confusion()
    plots.plot_confusion(tmp_path / "warm.png", m, DIGITS, "t")  # first call loads fonts
    for call in (lambda: plots.plot_confusion(tmp_path / "c.png", m, DIGITS, "t"),
                 lambda: plots.plot_success(tmp_path / "s.png", learning, validation, best)):
        start = time.perf_counter()
        call()
        assert time.perf_counter() - start < 1.5


def test_find_lr_range_keeps_plateau_and_lows_in_view():
    """N2D2's y range starts from the first smoothed point; when that point sits below the
    plateau, or raw losses dip below the smoothed minimum, ours still shows them."""
    from n2d2py.find_lr import suggest

    lrs = np.logspace(-6, 1, 80)
    u = np.log10(lrs)
    loss = np.where(u < -2, 0.92, 0.92 - 0.1 * (u + 2))  # plateau, then a fall to lr = 10 ...
    loss = np.where(u > -0.5, 0.77 + 0.2 * (u + 0.5), loss)  # ... and a rise after 0.3
    loss[0] = 0.90  # a low first batch: N2D2's top (first smoothed point) cuts the plateau
    loss[60] = 0.60  # one batch far below the smoothed curve
    s = suggest(lrs, loss)
    low, high = plots.find_lr_ylim(s.lr, s.loss, lrs, loss)
    assert low < 0.60 and high > 0.92
    assert high < 1.0  # the rise after the minimum stays clipped
    assert plots.find_lr_ylim(s.lr[:1], s.loss[:1], lrs, loss) is None
