"""``mpiexec -n N python launch.py ARGS``: the n2d2py command, plus two test hooks on ranks
other than 0, set by environment variables:

- N2D2PY_TEST_GUARD=DIR: an audit hook fails the rank if it opens a file for writing,
  creates, renames or removes anything under DIR (rank 0 alone writes the run folder);
- N2D2PY_TEST_TERM_AT=K: the rank sends itself SIGTERM before its K-th learning batch;
- N2D2PY_TEST_HANG_AT=K: the rank stops answering (sleeps) before its K-th learning batch.
"""

import os
import signal
import sys

RANK = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
GUARD = os.environ.get("N2D2PY_TEST_GUARD")
WRITES = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "shutil.rmtree"}


def guard(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    elif event in WRITES:
        path, writing = args[0], True
    else:
        return
    if writing and isinstance(path, (str, bytes, os.PathLike)):
        full = os.path.abspath(os.fsdecode(path))
        if full == GUARD or full.startswith(GUARD + os.sep):
            raise RuntimeError(f"rank {RANK} wrote {full} ({event})")


if RANK != 0 and GUARD:
    GUARD = os.path.abspath(GUARD)
    sys.addaudithook(guard)

if RANK != 0 and (os.environ.get("N2D2PY_TEST_TERM_AT") or os.environ.get("N2D2PY_TEST_HANG_AT")):
    import time

    from n2d2py import learning

    real_step, calls = learning._step, [0]
    term_at = int(os.environ.get("N2D2PY_TEST_TERM_AT") or 0)
    hang_at = int(os.environ.get("N2D2PY_TEST_HANG_AT") or 0)

    def step(*args):
        calls[0] += 1
        if calls[0] == term_at:
            os.kill(os.getpid(), signal.SIGTERM)
        if calls[0] == hang_at:
            time.sleep(3600)
        return real_step(*args)

    learning._step = step

from n2d2py.cli import main  # noqa: E402

main()
