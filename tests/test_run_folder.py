"""One run per run folder, output problems as one line before anything is written, and the
previous run's files kept until the new run's first save."""

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness import mnist_head, softmax_tail
from n2d2py import atomic, cli, learning, run_folder

ROOT = Path(__file__).parents[1]
TINY = (
    mnist_head("DataPath={data}\nValidation=0.0003\n", "SizeX=28\nSizeY=28\nBatchSize=8\n")
    + softmax_tail("sp", config="WeightsSolver.LearningRate={lr}")
)


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Figures are not what these tests check: drawing them would triple their time."""
    from n2d2py import evaluation, plots

    monkeypatch.setattr(evaluation, "_draw", lambda jobs: None)
    monkeypatch.setattr(plots, "plot_lr_schedule", lambda *a, **k: None)


@pytest.fixture
def ini(tmp_path):
    def make(lr=0.01):
        path = tmp_path / f"tiny_{lr}.ini"
        path.write_text(TINY.format(data=ROOT / "n2d2py" / "datasets" / "mnist", lr=lr))
        return str(path)
    return make


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_error(err):
    lines = [line for line in err.splitlines() if not line.startswith(("warning:", "notice:"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


LEARN = ("-learn", "16", "-log", "8", "-nb-test", "20", "-seed", "3")


def test_a_second_run_into_a_held_folder_is_refused(tmp_path, ini, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from n2d2py import run_folder; "
         "run_folder.acquire(sys.argv[1]); print('held', flush=True); time.sleep(60)", str(out)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_folder.held_by_other(out)
        code, _, err = run_cli(capsys, ini(), *LEARN, "-o", out)
        assert code == 2
        line = one_error(err)
        assert f"{out}: the run folder is in use by another n2d2py run (pid {holder.pid})" in line
        assert sorted(os.listdir(out)) == [run_folder.LOCK]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert not run_folder.held_by_other(out)  # the kernel dropped the lock with the process
    code, _, err = run_cli(capsys, ini(), *LEARN, "-o", out)  # a stale lock is taken over
    assert code in (0, None), err
    assert f"taking over the lock of run pid {holder.pid}" in err
    code, _, err = run_cli(capsys, ini(), "-test", "-nb-test", "20", "-o", out)
    assert code in (0, None) and "taking over" not in err  # the last run ended cleanly


def test_two_runs_started_together_one_is_refused(tmp_path, ini):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "n2d2py", ini(), *LEARN, "-o", str(out)]
    runs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=120), p.stderr.read()) for p in runs)
    assert [code for code, _ in results] == [0, 2], results
    assert "the run folder is in use by another n2d2py run (pid" in results[1][1]
    assert "Traceback" not in results[0][1] + results[1][1]


@pytest.mark.parametrize("where", ["file", "devnull"])
def test_an_output_that_is_not_a_folder_is_one_line(tmp_path, ini, capsys, where):
    target = tmp_path / "a_file" if where == "file" else Path("/dev/null")
    if where == "file":
        target.write_text("keep me\n")
    code, _, err = run_cli(capsys, ini(), *LEARN, "-o", target)
    assert code == 2
    assert one_error(err) == f"error: {target}: -o: not a folder (a run folder must be a directory)"
    if where == "file":
        assert target.read_text() == "keep me\n"


@pytest.mark.parametrize("code_name", ["EROFS", "EACCES", "EPERM", "ENOSPC"])
def test_an_unwritable_output_is_one_line_before_any_write(tmp_path, ini, capsys, monkeypatch,
                                                           code_name):
    out = tmp_path / "run"
    out.mkdir()
    code = getattr(errno, code_name)
    real_write = os.write

    def refuse(fd, data):  # the probe write of check_output
        raise OSError(code, os.strerror(code))

    if code_name == "ENOSPC":
        monkeypatch.setattr(run_folder.os, "write", refuse)
    else:
        def no_create(*a, **k):
            raise OSError(code, os.strerror(code), str(out))
        monkeypatch.setattr(run_folder.tempfile, "mkstemp", no_create)
    status, _, err = run_cli(capsys, ini(), *LEARN, "-o", out)
    monkeypatch.setattr(run_folder.os, "write", real_write)
    assert status == 2
    assert one_error(err).startswith(f"error: {out}: cannot write into the run folder: "
                                     f"{os.strerror(code)}")
    assert os.listdir(out) == []


def test_too_little_free_space_is_refused_with_the_sizes(tmp_path, ini, capsys, monkeypatch):
    real = os.statvfs

    class Full:
        def __init__(self, st):
            self.f_bavail, self.f_frsize = 10, st.f_frsize

    monkeypatch.setattr(run_folder.os, "statvfs", lambda p: Full(real(p)))
    code, _, err = run_cli(capsys, ini(), *LEARN, "-o", tmp_path / "run")
    assert code == 2
    assert "not enough free space in the run folder: the run saves at least" in one_error(err)


def test_no_space_during_a_save_is_one_line_and_keeps_the_saved_folders(tmp_path, ini, capsys,
                                                                         monkeypatch):
    out = tmp_path / "run"
    assert run_cli(capsys, ini(), *LEARN, "-o", out)[0] in (0, None)
    before = {p.name: p.read_bytes() for p in (out / "weights").iterdir()}
    real = atomic.write_manifest

    def full(folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))

    monkeypatch.setattr(atomic, "write_manifest", full)
    code, _, err = run_cli(capsys, ini(), *LEARN, "-o", out)
    monkeypatch.setattr(atomic, "write_manifest", real)
    assert code == 2
    assert "cannot write: No space left on device (the disk is full)" in one_error(err)
    assert {p.name: p.read_bytes() for p in (out / "weights").iterdir()} == before
    assert not [n for n in os.listdir(out) if n.startswith(".") and n != run_folder.LOCK]


def test_the_previous_run_is_kept_until_the_first_save(tmp_path, ini, capsys, monkeypatch):
    out = tmp_path / "run"
    assert run_cli(capsys, ini(), *LEARN, "-o", out)[0] in (0, None)
    kept = {name: (out / name).read_bytes() for name in ("seed.dat", "run.json")}
    init = {p.name: p.read_bytes() for p in (out / "weights_init").iterdir()}

    def fail(*args):
        raise KeyboardInterrupt  # killed before the first log step

    monkeypatch.setattr(learning, "_step", fail)
    code, _, _ = run_cli(capsys, ini(), "-learn", "16", "-log", "8", "-seed", "9", "-o", out)
    assert code == 130
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert {p.name: p.read_bytes() for p in (out / "weights_init").iterdir()} == init
    assert not [n for n in os.listdir(out) if n.startswith(".") and n != run_folder.LOCK]


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])
def test_weights_with_bad_numbers_are_refused_with_file_and_line(tmp_path, ini, capsys, value):
    out = tmp_path / "run"
    assert run_cli(capsys, ini(), *LEARN, "-o", out)[0] in (0, None)
    path = out / "weights" / "fc1_weights.syntxt"
    lines = path.read_text().splitlines()
    row = lines[2].split()
    row[5] = value
    lines[2] = " ".join(row)
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(capsys, ini(), "-test", "-nb-test", "20", "-w", out / "weights",
                           "-o", tmp_path / "test")
    assert code == 2
    what = "outside the float32 range" if value == "1e39" else "not a finite number"
    assert one_error(err) == f'error: {path}:3: "{value}" is {what}'


def test_a_diverging_run_keeps_the_last_finite_best(tmp_path, ini, capsys, monkeypatch):
    """The weights turn NaN after the second log step: the third saves nothing, and the
    message names the folders of the second, which exist and hold finite weights."""
    out = tmp_path / "run"
    real, calls, saved = learning._log_step, [], {}

    def log_step(net, *args):
        calls.append(1)
        if len(calls) == 3:
            for name in ("weights", "weights_validation"):
                saved[name] = {p.name: p.read_bytes() for p in (out / name).iterdir()}
            net.params()[0].data[...] = np.nan
        return real(net, *args)

    monkeypatch.setattr(learning, "_log_step", log_step)
    code, _, err = run_cli(capsys, ini(), "-learn", "40", "-log", "8", "-seed", "3", "-o", out)
    assert code == 2
    line = one_error(err)
    assert line == (f"error: learning diverged (lower the learning rate?): the weights hold "
                    f"non-finite values after 24 stimuli; the last good weights are in "
                    f"{out}/weights_validation/ (best) and {out}/weights/ (last log step)")
    for name, files in saved.items():
        assert {p.name: p.read_bytes() for p in (out / name).iterdir()} == files
        for f in (out / name).glob("*.syntxt"):
            assert np.isfinite(np.loadtxt(f)).all(), f


@pytest.mark.parametrize("edit", [("seen", "many"), ("seen", 1e300), ("best", "x"),
                                  ("epoch", -3), ("bogus", 1), ("device_rng", {"a": 1}),
                                  ("seed", "abc"), ("seed", 1e300), ("solver_n", "x")])
def test_hand_edited_checkpoint_fields_are_one_line(tmp_path, ini, capsys, edit):
    out = tmp_path / "run"
    assert run_cli(capsys, ini(), *LEARN, "-o", out)[0] in (0, None)
    state = out / "net_state" / "state.json"
    doc = json.loads(state.read_text())
    key, value = edit
    if key in ("device_rng", "seed"):
        doc["meta"][key] = value
    elif key == "solver_n":
        doc["solvers"]["fc1/weights"]["n"] = value
    else:
        doc["meta"]["progress"][key] = value
    state.write_text(json.dumps(doc))
    code, _, err = run_cli(capsys, ini(), "-learn", "32", "-log", "8", "-l", out / "net_state",
                           "-o", tmp_path / "resumed")
    assert code == 2
    assert f"{state}: checkpoint field" in one_error(err) or \
        f"{out / 'net_state'}: checkpoint solver state fc1/weights.n" in one_error(err)


@pytest.mark.parametrize("args, message", [
    (("-learn", "0"), "-learn 0 learns nothing"),
    (("-learn-epoch", "0"), "-learn-epoch 0 learns nothing"),
    (("-test", "-nb-test", "0"), "-nb-test 0 tests nothing"),
])
def test_counts_that_do_nothing_are_refused(tmp_path, ini, capsys, args, message):
    code, _, err = run_cli(capsys, ini(), *args, "-o", tmp_path / "run")
    assert code == 2 and message in one_error(err)
    assert not (tmp_path / "run").exists()


def test_a_file_system_without_locks_is_said_and_not_fatal(tmp_path, monkeypatch, capsys):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(run_folder.fcntl, "flock", no_locks)
    try:
        run_folder.acquire(tmp_path)
        assert "the run folder cannot be locked (No locks available)" in capsys.readouterr().err
    finally:
        run_folder.release(tmp_path)


def test_readers_of_a_held_folder_do_not_recover_it(tmp_path, monkeypatch):
    """A save in progress by another run looks like leftovers: a reader must not touch them."""
    target = tmp_path / "weights"
    with atomic.new_folder(target) as tmp:
        Path(tmp, "a.syntxt").write_text("1\n")
    pending = tmp_path / f".weights.new-{os.getpid() + 1}-x"
    pending.mkdir()
    monkeypatch.setattr(run_folder, "held_by_other", lambda path: True)
    from n2d2py import weights

    assert weights.best_weights_dir(tmp_path) == str(target)
    atomic.read_consistent(target, lambda d: None, may_recover=not run_folder.held_by_other(tmp_path))
    assert pending.is_dir()  # left to its owner
    atomic.read_consistent(target, lambda d: None, may_recover=True)
    assert not pending.exists()  # nobody holds the folder: an interrupted save is cleaned
