"""The run viewer (tools/test.py, n2d2py.viewer) on a tiny real MNIST run: files written,
values read back from the figures, folders without run.json, bad folders."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage, imread
from matplotlib.lines import Line2D

from n2d2py import runner, viewer

ROOT = Path(__file__).parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory, write_tiny_mnist_ini):
    base = tmp_path_factory.mktemp("viewer")
    ini = write_tiny_mnist_ini(base)
    out = base / "run"
    runner.run(runner.Options(str(ini), learn=1024, log=512, test=True, seed=1, out=str(out),
                              nb_test=200))
    return out


def target(run):
    return run / "softmax.Target"


def parse_confusion(path):
    """ConfusionMatrix_<set>.dat, read independently of the viewer: ``t e count fraction``."""
    rows = [l.split() for l in Path(path).read_text().splitlines()[1:] if l.strip()]
    n = max(int(r[0]) for r in rows) + 1
    m = np.zeros((n, n), dtype=np.int64)
    for t, e, count, _ in rows:
        m[int(t), int(e)] = int(count)
    return m


def misclassified_positions(run, set_name="test"):
    """Positions of the misclassified ids: the test set of MNIST starts at id 60,000."""
    lines = (target(run) / f"Misclassified_{set_name}.dat").read_text().splitlines()[1:]
    return [int(l.split()[0]) - 60000 for l in lines if l.strip()]


def check_png(path):
    data = Path(path).read_bytes()
    assert data.startswith(PNG), path
    assert len(data) > 5000, (path, len(data))
    h, w = imread(str(path)).shape[:2]
    assert 300 < w < 4000 and 300 < h < 4000, (path, w, h)


def test_save_and_html_write_every_figure(run, tmp_path, capsys):
    out, page = tmp_path / "view", tmp_path / "view.html"
    assert viewer.main([str(run), "--save", str(out), "--html", str(page)]) == 0
    k = misclassified_positions(run)[0]
    expected = {"curves.png", "confusion_test.png", "misclassified_test.png", f"stimulus_{k}.png"}
    assert {p.name for p in out.iterdir()} == expected  # no temporary file left behind
    for name in expected:
        check_png(out / name)
    text = page.read_text()
    assert text.count("data:image/png;base64,") == len(expected)
    assert "<figcaption>" in text
    printed = capsys.readouterr().out
    assert re.search(r"skipped find-lr curve: no find_lr_\*\.dat", printed)
    # the validation set: its gallery maps the ids of a random partition back to positions
    assert viewer.main([str(run), "--set", "validation", "--save", str(out)]) == 0
    check_png(out / "misclassified_validation.png")
    check_png(out / "confusion_validation.png")


def test_confusion_figure_holds_the_matrix_of_the_file(run):
    fig = viewer.figure_confusion(str(run), "test")
    images = {im.get_gid(): im for ax in fig.axes for im in ax.get_images()}
    counts = np.ma.filled(images["counts"].get_array(), 0)
    expected = parse_confusion(target(run) / "ConfusionMatrix_test.dat")
    np.testing.assert_array_equal(counts, expected)
    assert expected.sum() == 200  # -nb-test 200
    percent = np.ma.filled(images["percent"].get_array(), 0)
    rows = expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(percent, 100 * expected / np.maximum(rows, 1), atol=1e-9)


def test_curves_figure_plots_the_success_files(run):
    fig = viewer.figure_curves(str(run))
    lines = {l.get_gid(): l for l in fig.axes[0].get_lines() if isinstance(l, Line2D)}
    validation = np.loadtxt(target(run) / "Success_validation.dat", ndmin=2)
    learning = np.loadtxt(target(run) / "Success_learning.dat", ndmin=2)
    np.testing.assert_allclose(lines["validation"].get_xdata(), validation[:, 0])
    np.testing.assert_allclose(lines["validation"].get_ydata(), 100 * validation[:, 1])
    np.testing.assert_allclose(lines["learning"].get_ydata(), 100 * learning[:, 1])
    best = int(np.argmax(validation[:, 1]))
    np.testing.assert_allclose(lines["best"].get_ydata(), [100 * validation[best, 1]])
    test_rate = float(np.loadtxt(target(run) / "Success_test.dat", ndmin=2)[-1, 1])
    np.testing.assert_allclose(lines["test"].get_ydata(), [100 * test_rate] * 2)


def test_stimulus_figure_reproduces_the_outputs_of_the_test(run):
    """The rebuilt network (run.json: INI, seed → same partition; weights_validation/) gives
    the softmax values that the test wrote in classif.log for the same stimulus."""
    k = misclassified_positions(run)[0]
    fig = viewer.figure_stimulus(str(run), "test", k)
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("softmax"))
    heights = np.array([bar.get_height() for bar in panel.patches])
    line = next(l for l in (target(run) / "test" / "classif.log").read_text().splitlines()
                if l.startswith(f"{60000 + k} "))
    logged = np.array([float(v) for v in line.split()[5:]])
    np.testing.assert_allclose(heights, logged, rtol=1e-4, atol=1e-6)
    assert "MISCLASSIFIED" in fig.texts[0].get_text()
    assert len(fig.axes) >= 4  # input, conv1 (+ its colorbar), fc1, softmax


def test_folder_without_run_json_still_shows_curves_and_confusion(run, tmp_path, capsys):
    copy = tmp_path / "n2d2_run" / "softmax.Target"
    copy.mkdir(parents=True)
    for path in target(run).glob("*.dat"):
        shutil.copy(path, copy / path.name)
    lr = np.geomspace(1e-6, 10, 60)
    loss = 2.3 - np.exp(-((np.log10(lr) + 1) ** 2)) + 0.01 * np.sin(np.arange(60))
    (tmp_path / "n2d2_run" / "find_lr_softmax.Target.dat").write_text(
        "lr loss\n" + "".join(f"{a:g} {b:g}\n" for a, b in zip(lr, loss)))
    out = tmp_path / "view"
    assert viewer.main([str(tmp_path / "n2d2_run"), "--save", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"curves.png", "confusion_test.png", "find_lr.png"}
    printed = capsys.readouterr().out
    assert printed.count("no run.json") == 2, printed  # gallery and stimulus, one line each
    fig = viewer.figure_find_lr(str(tmp_path / "n2d2_run"))
    raw = next(l for l in fig.axes[0].get_lines() if l.get_gid() == "raw")
    np.testing.assert_allclose(raw.get_ydata(), loss, rtol=1e-5)
    assert fig.axes[0].get_xscale() == "log"


def test_a_later_test_of_another_ini_keeps_the_learning_run_in_view(run, tmp_path):
    """N2D2's flow: LeNet_Spike.ini -test in LeNet.ini's run folder. run.json keeps the
    learning INI, and the target that learned stays the default over the new target folder."""
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    learned_ini = viewer.load_info(str(folder))["ini"]
    other = tmp_path / "other.ini"
    other.write_text(Path(learned_ini).read_text())
    runner.run(runner.Options(str(other), test=True, out=str(folder), nb_test=50))
    assert viewer.load_info(str(folder))["ini"] == learned_ini
    spike_target = folder / "a_spike.Target"  # sorts before softmax.Target, has no curves
    spike_target.mkdir()
    shutil.copy(target(run) / "ConfusionMatrix_test.dat", spike_target)
    assert viewer.target_dir(str(folder)) == str(folder / "softmax.Target")
    fresh = tmp_path / "fresh"  # a folder with no run.json gets one from a test-only run,
    runner.run(runner.Options(str(other), test=True, weights=str(folder / "weights"), out=str(fresh),
                              nb_test=50))
    assert viewer.load_info(str(fresh))["ini"] == str(other)
    runner.run(runner.Options(learned_ini, test=True, weights=str(folder / "weights"),
                              out=str(fresh), nb_test=50))  # which a later test-only run replaces
    assert viewer.load_info(str(fresh))["ini"] == learned_ini


def test_bad_run_dir_is_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        viewer.main([str(tmp_path / "nope"), "--save", str(tmp_path / "v")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such folder" in err
    with pytest.raises(SystemExit) as exit_info:
        viewer.main([str(tmp_path), "--save", str(tmp_path / "v")])  # exists, holds no run
    assert exit_info.value.code == 2
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "error:" in done.stderr


def test_without_display_falls_back_to_saving(run, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.chdir(tmp_path)
    assert viewer.main([str(run), "--stimulus", "3"]) == 0
    assert "writing the figures to" in capsys.readouterr().out
    check_png(tmp_path / "view" / "stimulus_3.png")


def test_interactive_window_pages_with_keys(run, monkeypatch):
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import KeyEvent

    done = [("curves.png", "curves", viewer.figure_curves(str(run))),
            ("confusion_test.png", "confusion", viewer.figure_confusion(str(run)))]
    seen = []

    def fake_show():
        fig = plt.gcf()
        image = fig.axes[0].get_images()[0]
        for key in ("n", "right", "p", "left", "left"):
            KeyEvent("key_press_event", fig.canvas, key)._process()
            seen.append(image.get_array().shape)
        plt.close(fig)

    monkeypatch.setattr(plt, "show", fake_show)
    viewer.show_interactive(done)  # re-exported from viewer.window
    sizes = [np.asarray(f.canvas.buffer_rgba()).shape for _, _, f in done]
    assert seen == [sizes[1], sizes[0], sizes[1], sizes[0], sizes[1]]
