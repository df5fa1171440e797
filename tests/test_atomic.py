"""Atomic writes: one file, one folder (a generation swapped in whole), recovery of an
interrupted save, and SIGKILLs of a real learning process at many instants."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from harness import mnist_head, softmax_tail
from n2d2py import atomic
from n2d2py.atomic import atomic_write_text
from n2d2py.errors import N2D2PyError

ROOT = Path(__file__).parents[1]


def save(folder, files, commit=True):
    with atomic.new_folder(folder, commit) as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text)


def contents(folder):
    return {p.name: p.read_text() for p in Path(folder).iterdir() if not p.name.startswith(".")}


def test_folder_save_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "weights"
    save(target, {"a.syntxt": "1\n", "b.syntxt": "2\n"})
    save(target, {"a.syntxt": "3\n"})
    assert contents(target) == {"a.syntxt": "3\n"}  # nothing of the previous save is left
    assert sorted(os.listdir(tmp_path)) == ["weights"]
    assert atomic.check_folder(target) == atomic.generation(target)


def test_a_failing_save_keeps_the_previous_generation(tmp_path, monkeypatch):
    target = tmp_path / "weights"
    save(target, {"a.syntxt": "1\n", "b.syntxt": "2\n"})
    with pytest.raises(KeyboardInterrupt):
        with atomic.new_folder(target) as tmp:
            Path(tmp, "a.syntxt").write_text("new\n")
            raise KeyboardInterrupt
    assert contents(target) == {"a.syntxt": "1\n", "b.syntxt": "2\n"}
    assert sorted(os.listdir(tmp_path)) == ["weights"]


def test_no_space_left_is_one_line_and_keeps_the_old_folder(tmp_path, monkeypatch):
    target = tmp_path / "weights"
    save(target, {"a.syntxt": "1\n"})
    real = atomic.write_manifest

    def full(folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))

    monkeypatch.setattr(atomic, "write_manifest", full)
    with pytest.raises(N2D2PyError, match=r"cannot write: No space left on device \(the disk is full\)"):
        save(target, {"a.syntxt": "2\n"})
    monkeypatch.setattr(atomic, "write_manifest", real)
    assert contents(target) == {"a.syntxt": "1\n"}
    assert sorted(os.listdir(tmp_path)) == ["weights"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_every_interruption_point_recovers_to_one_complete_generation(tmp_path, monkeypatch,
                                                                      exchange):
    """Stop a save after each of its file-system steps (a SIGKILL between two calls), then
    recover: the folder is the old or the new generation, whole, and nothing else is left."""
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    steps = []
    for stop_at in range(1, 20):
        run = tmp_path / f"r{stop_at}"
        target = run / "weights"
        save(target, {"a.syntxt": "old-a\n", "b.syntxt": "old-b\n"})
        count = {"n": 0}

        class Killed(BaseException):
            pass

        def step(real):
            def wrapped(*args, **kwargs):
                count["n"] += 1
                if count["n"] == stop_at:
                    raise Killed
                return real(*args, **kwargs)
            return wrapped

        # a kill leaves everything as it is: no cleanup runs
        monkeypatch.setattr(atomic.os, "rename", step(os.rename))
        monkeypatch.setattr(atomic.shutil, "rmtree", step(shutil.rmtree))
        monkeypatch.setattr(atomic, "_exchange", step(atomic._exchange))
        try:
            save(target, {"a.syntxt": "new-a\n", "b.syntxt": "new-b\n"})
            killed = False
        except Killed:
            killed = True
        finally:
            monkeypatch.undo()
            if not exchange:
                monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        steps.append(sorted(os.listdir(run)))
        atomic.recover(target)
        assert sorted(os.listdir(run)) == ["weights"], steps[-1]
        assert contents(target) in ({"a.syntxt": "old-a\n", "b.syntxt": "old-b\n"},
                                    {"a.syntxt": "new-a\n", "b.syntxt": "new-b\n"})
        atomic.check_folder(target)
        if not killed:  # past the last step: every interruption point was tried
            break
    assert stop_at >= 4 and any(s != ["weights"] for s in steps)  # stops did leave leftovers


def test_a_half_written_folder_is_refused_by_name(tmp_path):
    target = tmp_path / "weights"
    save(target, {"a.syntxt": "1\n", "b.syntxt": "2\n"})
    os.remove(target / "b.syntxt")
    with pytest.raises(N2D2PyError, match=r"weights: half-written folder \(b.syntxt is missing\)"):
        atomic.check_folder(target)


def test_a_staged_folder_waits_for_its_commit(tmp_path):
    target = tmp_path / "weights_init"
    save(target, {"a.syntxt": "previous run\n"})
    save(target, {"a.syntxt": "this run\n"}, commit=False)
    assert contents(target) == {"a.syntxt": "previous run\n"}
    atomic.commit_staged(target)
    assert contents(target) == {"a.syntxt": "this run\n"}
    save(target, {"a.syntxt": "killed run\n"}, commit=False)
    atomic.recover(target)  # a run killed before its first save: its staged folder goes
    assert contents(target) == {"a.syntxt": "this run\n"}
    assert sorted(os.listdir(tmp_path)) == ["weights_init"]


# -- one file ---------------------------------------------------------------------------


def test_atomic_write_keeps_old_file_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "a.dat"
    atomic_write_text(path, "old\n")

    def fail(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(N2D2PyError, match="cannot write: Read-only file system"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.dat"]


def test_atomic_write_keeps_old_file_when_writing_fails_midway(tmp_path, monkeypatch):
    path = tmp_path / "a.dat"
    atomic_write_text(path, "old\n")
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:2])
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "new contents\n")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.dat"]


# -- SIGKILL of a real learning run ------------------------------------------------------

TINY = (
    mnist_head("DataPath={data}\nValidation=0.0003\n", "SizeX=28\nSizeY=28\nBatchSize=8\n")
    + """[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=2
ActivationFunction=Rectifier
"""
    + softmax_tail("conv1")
)

# One process loads MNIST once, then forks a learning run (cli.main, saving at every batch)
# into the same folder again and again, SIGKILLs it after a random delay, and copies the
# folder as the kill left it. Each child finds the previous child's stale lock and leftovers.
DRIVER = textwrap.dedent("""
    import os, random, shutil, signal, sys, time
    from n2d2py import cli
    from n2d2py.data import databases
    ini, root, kills, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    args = [ini, "-learn", "100000", "-log", "8", "-seed", "3", "-o", os.path.join(root, "run")]
    rng = random.Random(seed)
    import numpy as np
    from n2d2py import backend, ini as ini_files, learning, network
    net = network.build(ini_files.parse_file(ini), backend.cpu(1))  # MNIST read once
    net.initialize()  # one learning step: the compiled kernels are loaded once, too
    x, labels, ids = next(iter(net.provider.random_batches(8, np.random.default_rng(0))))
    learning._step(net, x, labels, 0, ids)
    # figures are not saves: drawing them at every log step would leave few kills in saves
    from n2d2py import plots
    learning.write_plots = lambda *a, **k: None
    plots.plot_lr_schedule = lambda *a, **k: None
    os.makedirs(os.path.join(root, "run"))
    from n2d2py import atomic
    exchange = atomic._exchange
    def child():
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1); os.dup2(fd, 2)
        try:
            cli.main(args)
        finally:
            os._exit(0)
    # calibration: how long until the first save, on this machine, now
    start, pid = time.monotonic(), os.fork()
    if pid == 0:
        child()
    while not os.path.isdir(os.path.join(root, "run", "weights")) and time.monotonic() - start < 120:
        time.sleep(0.005)
    first = time.monotonic() - start
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print(f"first save after {first:.2f} s", flush=True)
    for i in range(kills):
        delay = rng.uniform(0.05, 1.6 * first)
        # every other run swaps with two renames, as where renameat2 is missing
        atomic._exchange = exchange if i % 2 else (lambda a, b: False)
        pid = os.fork()
        if pid == 0:
            child()
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        shutil.copytree(os.path.join(root, "run"), os.path.join(root, f"kill{i:02d}"),
                        symlinks=True)
        print(f"kill {i} after {delay:.3f} s", flush=True)
""")


def independent_check(folder):
    """Without n2d2py's reader: ``folder`` holds exactly the files its manifest lists, each
    with the recorded size and CRC-32 (so no file of another generation)."""
    manifest = json.loads((folder / atomic.MANIFEST).read_text())
    names = sorted(p.name for p in folder.iterdir() if p.name != atomic.MANIFEST)
    assert names == sorted(manifest["files"]), folder
    for name, (size, crc) in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert (len(data), zlib.crc32(data)) == (size, crc), f"{folder}/{name}"


def test_sigkill_at_many_instants_never_leaves_a_mixed_folder(tmp_path):
    ini = tmp_path / "tiny.ini"
    ini.write_text(TINY.format(data=ROOT / "n2d2py" / "datasets" / "mnist"))
    kills = 20
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", DRIVER, str(ini), str(tmp_path), str(kills),
                           "7"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    mid_save = 0
    saved = set()
    for i in range(kills):
        snap = tmp_path / f"kill{i:02d}"
        for name in ("weights", "weights_validation", "weights_init", "net_state",
                     "net_state_validation"):
            target = snap / name
            left = atomic.leftovers(target)
            mid_save += bool(left)
            if target.is_dir():
                independent_check(target)  # the folder itself is always one generation
                saved.add(name)
            for path in left:  # a generation waiting to be swapped in is whole (``.old`` is
                # the previous one being deleted: a kill inside that rmtree leaves part of it)
                if Path(path).name.endswith(".ready"):
                    independent_check(Path(path))
            atomic.recover(target)
            assert not atomic.leftovers(target)
            if target.is_dir():
                independent_check(target)
                atomic.check_folder(target)
    print(f"{mid_save} folder(s) caught mid-save by {kills} kills")
    assert mid_save > 0, "no kill landed inside a save: the test did not test anything"
    assert {"weights", "net_state", "weights_validation"} <= saved, done.stdout


def test_a_recovery_killed_midway_is_recovered_next_time(tmp_path, monkeypatch):
    target = tmp_path / "weights"
    save(target, {"a.syntxt": "gen1\n"})
    save(target, {"a.syntxt": "gen2\n"}, commit=False)
    os.rename(atomic._staged(target), tmp_path / ".weights.ready")  # killed before its swap
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    real = os.rename

    def killed_after_first(src, dst):
        real(src, dst)
        if str(dst).endswith(".drop"):
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "rename", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        atomic.recover(target)
    monkeypatch.setattr(atomic.os, "rename", real)
    assert not target.exists()  # the moment of the kill: old generation set aside
    atomic.recover(target)
    assert contents(target) == {"a.syntxt": "gen2\n"}
    assert sorted(os.listdir(tmp_path)) == ["weights"]
