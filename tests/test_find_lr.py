"""-find-lr (spec §7): schedule, Bézier smoothing, the suggestion rule, and one run end to end."""

import math
import re

import numpy as np
import pytest

from n2d2py import cli, find_lr
from n2d2py.find_lr import bezier_smooth, lr_schedule, suggest


# -- lr_schedule ---------------------------------------------------------------------------


@pytest.mark.parametrize("n, b", [(10000, 128), (2000, 32), (10000, 24), (10, 32), (128, 128)])
def test_lr_schedule(n, b):
    rates = lr_schedule(n, b)
    assert rates.size == math.ceil(n / b)
    assert rates[0] == pytest.approx(1e-6, rel=1e-12)
    assert np.all(np.diff(rates) > 0)
    assert rates[-1] < 10.0
    if n >= 10 * b:
        assert rates[-1] > 10.0 * math.exp(-math.log(1e7) * b / n) * 0.999  # within one batch of 10


def test_lr_schedule_values():
    rates = lr_schedule(10000, 128)  # N2D2's LeNet run: 79 batches
    assert rates.size == 79
    grow = math.log(10 / 1e-6) / 10000
    assert rates[40] == pytest.approx(1e-6 * math.exp(grow * 40 * 128), rel=1e-12)
    assert lr_schedule(10000, 24).size == 417  # the tutorial's "417 iterations"


# -- bezier_smooth -------------------------------------------------------------------------


def de_casteljau(points, t):
    p = [np.asarray(q, dtype=np.float64) for q in points]
    while len(p) > 1:
        p = [(1 - t) * a + t * b for a, b in zip(p, p[1:])]
    return p[0]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 12])
def test_bezier_matches_de_casteljau(n):
    rng = np.random.default_rng(n)
    x, y = np.sort(rng.normal(size=n)), rng.normal(size=n)
    xs, ys = bezier_smooth(x, y, samples=17)
    for k, t in enumerate(np.linspace(0, 1, 17)):
        ex, ey = de_casteljau(list(zip(x, y)), t)
        assert xs[k] == pytest.approx(ex, abs=1e-12) and ys[k] == pytest.approx(ey, abs=1e-12)


def test_bezier_endpoints_and_large_n():
    rng = np.random.default_rng(0)
    n = 3000
    x = np.linspace(-6, 1, n)
    y = 1 + 0.1 * rng.normal(size=n)
    xs, ys = bezier_smooth(x, y)
    assert xs.size == ys.size == 100
    assert np.all(np.isfinite(xs)) and np.all(np.isfinite(ys))
    assert (xs[0], ys[0]) == pytest.approx((x[0], y[0]), abs=1e-12)
    assert (xs[-1], ys[-1]) == pytest.approx((x[-1], y[-1]), abs=1e-12)
    assert np.allclose(xs, np.linspace(-6, 1, 100))  # evenly spaced control x: x(t) is linear
    assert np.all(np.abs(ys[5:-5] - 1) < 0.05)  # the interior averages the noise away


# -- suggest -------------------------------------------------------------------------------


def by_hand(lrs, losses):
    """The §7 rule written as a plain loop on the smoothed points (None: no suggestion)."""
    xs, ys = bezier_smooth(np.log10(lrs), losses)
    lr = [10.0 ** v for v in xs]
    x_limit = lr[min(range(len(ys)), key=lambda k: ys[k])]
    marked = [False] + [ys[k] < ys[0] and ys[k] - ys[k - 1] < 0 and lr[k] <= x_limit
                        for k in range(1, len(ys))]
    runs, start = [], None
    for k, m in enumerate(marked + [False]):
        if m and start is None:
            start = k
        if not m and start is not None:
            runs.append((start, k))
            start = None
    if not runs:
        return None
    s, after = runs[-1]
    return (lr[s] + lr[min(after, len(lr) - 1)]) / 2


LRS = np.logspace(-6, 1, 300)


def valley(lrs):
    """Flat at 1 up to 1e-4, falling to 0.2 at 1e-2 (linear in log lr), then rising to 3."""
    u = np.log10(lrs)
    return np.where(u < -4, 1.0, np.where(u < -2, 1 - 0.4 * (u + 4), 0.2 + 2.8 * (u + 2) / 3))


def test_suggest_valley():
    s = suggest(LRS, valley(LRS))
    assert s.rate == pytest.approx(by_hand(LRS, valley(LRS)), rel=1e-12)
    assert 3e-3 < s.x_limit < 3e-2  # the smoothed minimum is near the true one at 1e-2
    assert s.x_min < 1e-5  # the smoothed curve decreases from its start
    assert s.rate == pytest.approx((s.x_min + s.x_max) / 2)
    assert 0.4 * s.x_limit < s.rate < 0.7 * s.x_limit  # ≈ half the rate at the minimum
    assert s.lr.size == s.loss.size == 100


def test_suggest_last_falling_stretch_wins():
    u = np.log10(LRS)
    loss = np.interp(u, [-6, -5, -4, -3, -2, 1], [1.0, 1.0, 0.6, 0.8, 0.2, 3.0])
    s = suggest(LRS, loss)
    assert s.rate == pytest.approx(by_hand(LRS, loss), rel=1e-12)
    assert s.x_min > 1e-4  # the run starts after the bump, not in the first fall
    assert s.x_min < s.rate < s.x_max <= 10 ** (np.log10(s.x_limit) + 7 / 99 + 1e-9)


def test_suggest_rising_only_gives_none():
    s = suggest(LRS, 0.5 + np.log10(LRS) / 20 + 0.3)
    assert s.rate is None and s.lr.size == 100
    assert suggest([1e-6], [1.0]).rate is None
    assert suggest([], []).rate is None


def test_suggest_flags_a_curve_still_falling_at_the_end():
    falling = 1.0 - 0.05 * (np.log10(LRS) + 6)  # no rise anywhere: the minimum is the last point
    s = suggest(LRS, falling)
    assert s.at_end and s.x_limit == pytest.approx(LRS[-1])
    assert s.rate is None  # the rule would answer about half of 10
    # a sweep stopped by divergence ends at its blow-up: there the rule's answer stands
    stopped = suggest(LRS, falling, stopped=True)
    assert stopped.rate == pytest.approx(by_hand(LRS, falling), rel=1e-12)
    assert not suggest(LRS, valley(LRS)).at_end


def test_viewer_reads_the_stopped_mark(tmp_path):
    from n2d2py.viewer import views

    falling = 1.0 - 0.05 * (np.log10(LRS) + 6)
    rows = "".join(f"{a:.8g} {b:.8g}\n" for a, b in zip(LRS, falling))
    path = tmp_path / "find_lr_t.dat"
    raw = np.c_[LRS, falling]
    path.write_text("# lr loss\n" + rows)
    assert views._suggestion(raw, str(path)).rate is None
    path.write_text(f"# lr loss\n{find_lr.STOPPED_MARK}: the loss diverged\n" + rows)
    assert views._suggestion(raw, str(path)).rate == pytest.approx(by_hand(LRS, falling), rel=1e-6)


def test_suggest_measures_drop_against_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.02, LRS.size)
    strong = suggest(LRS, valley(LRS) + noise)  # drop 0.8, noise 0.02
    assert strong.clear and strong.drop == pytest.approx(0.8, abs=0.1)
    assert strong.noise == pytest.approx(0.02, rel=0.3)
    weak = suggest(LRS, 1.0 + 0.05 * (valley(LRS) - 1.0) + noise)  # drop 0.04, same noise
    assert not weak.clear and weak.drop < 5 * weak.noise


def test_suggest_ignores_non_finite_tail():
    lrs = np.r_[LRS, 20.0, 30.0, 40.0]
    losses = np.r_[valley(LRS), np.nan, np.inf, -np.inf]
    assert suggest(lrs, losses).rate == pytest.approx(suggest(LRS, valley(LRS)).rate, rel=1e-12)


def test_divergence_rule():
    assert find_lr._diverged([float("nan")], [1.0], 0)
    assert find_lr._diverged([5.0], [1.0], 9) is None  # not before 10 batches
    assert find_lr._diverged([5.0], [1.0], 10)
    assert find_lr._diverged([3.9], [1.0], 50) is None


# -- end to end ----------------------------------------------------------------------------

def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_find_lr_end_to_end(tmp_path, monkeypatch, capsys, write_tiny_mnist_ini):
    ini = write_tiny_mnist_ini(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)  # a fresh folder, no -seed: time-based seed
    code, out, err = run_cli(capsys, ini, "-find-lr", "2000")
    assert code in (0, None), err
    match = re.search(r"Suggested learning rate for softmax\.Target: (\S+)  ->  "
                      r"WeightsSolver\.LearningRate=(\S+)", out)  # the INI sets WeightsSolver.*
    assert match, out
    assert 1e-6 < float(match.group(1)) < 10 and match.group(1) == match.group(2)
    rows = (run_dir / "find_lr_softmax.Target.dat").read_text().splitlines()
    assert rows[0].startswith("#")
    data = np.loadtxt(rows[1:])
    assert 10 <= len(data) <= 63 and (len(data) == 63 or "the loss diverged" in out)
    assert data[0, 0] == pytest.approx(1e-6) and np.all(np.diff(data[:, 0]) > 0)
    assert len((run_dir / "find_lr_softmax.Target.dat.smooth").read_text().splitlines()) == 101
    for name in ("find_lr_softmax.Target.png", "find_lr-range.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(p.name.startswith("weights") for p in run_dir.iterdir())


def test_find_lr_refuses_learning(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path / "m.ini", "-find-lr", "100", "-learn", "1000")
    assert code == 2 and "-find-lr runs alone" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, tmp_path / "m.ini", "-find-lr", "0")
    assert code == 2


@pytest.mark.parametrize("scale, uncertain", [(1.0, False), (0.05, True)])
def test_viewer_legend_says_when_a_suggestion_is_uncertain(tmp_path, scale, uncertain):
    from n2d2py import viewer

    noise = np.random.default_rng(1).normal(0.0, 0.02, LRS.size)
    loss = 1.0 + scale * (valley(LRS) - 1.0) + noise
    (tmp_path / "find_lr_t.dat").write_text(
        "# lr loss\n" + "".join(f"{a:.8g} {b:.8g}\n" for a, b in zip(LRS, loss)))
    fig = viewer.figure_find_lr(str(tmp_path))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    line = next(t for t in labels if t.startswith("suggested learning rate"))
    assert ("uncertain" in line) == uncertain, labels
