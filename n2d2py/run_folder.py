"""One run per run folder (``-o``): the folder is checked, then locked, before anything is
written into it; the files a run writes at its start wait until its first save.

The lock is ``.n2d2py.lock`` holding the owner's pid, held with ``fcntl.flock`` for the run's
life: the kernel drops it when the process ends, however it ends, so a lock file whose flock is
free is stale (its run was killed) and is taken over with a notice. A second run into a held
folder is refused (exit 2) with the folder and the pid. Every run that writes into the folder
(learning, -test, -find-lr, edge runs) takes the lock; the viewer, ``-w`` and ``-l`` only read,
and read another run's folder without recovering it (``atomic.read_consistent``).
"""

import errno
import fcntl
import os
import sys
import tempfile
import time

from n2d2py import atomic
from n2d2py.errors import N2D2PyError

LOCK = ".n2d2py.lock"
SAVED_FOLDERS = ("weights", "weights_validation", "weights_init", "net_state",
                 "net_state_validation")
PROBE_BYTES = 1 << 16

_held = {}  # abspath -> open lock file descriptor (this process's locks)
_pending = {}  # abspath -> [callables] waiting for the first save
_started = {}  # abspath -> time.time_ns() when this process took the folder


def check_output(path, needed_bytes=0):
    """Refuse, in one line, a run folder that cannot be written: not a folder, read-only,
    no permission, not enough free space. Creates the folder if it is missing."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise N2D2PyError("-o: not a folder (a run folder must be a directory)", path)
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".n2d2py-probe-")
        try:
            os.write(fd, b"\0" * PROBE_BYTES)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
        stat = os.statvfs(path)
    except OSError as exc:
        raise N2D2PyError(f"cannot write into the run folder: {exc.strerror}"
                          + _hint(exc.errno), path) from None
    free = stat.f_bavail * stat.f_frsize
    if needed_bytes > free:
        raise N2D2PyError(f"not enough free space in the run folder: the run saves at least "
                          f"{_size(needed_bytes)}, {_size(free)} are free", path)


def _hint(code):
    return {errno.ENOSPC: " (the disk is full)", errno.EROFS: " (read-only file system)",
            errno.EPERM: " (immutable or not permitted)"}.get(code, "")


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def acquire(path):
    """Lock run folder ``path`` for this process (idempotent); refuse a folder held by another
    live run; take over a stale lock with a notice and recover interrupted saves."""
    path = os.path.abspath(path)
    if path in _held:
        return
    lock = os.path.join(path, LOCK)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, atomic.FILE_MODE)
    except OSError as exc:
        raise N2D2PyError(f"cannot create the run-folder lock: {exc.strerror}{_hint(exc.errno)}",
                          lock) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            os.close(fd)  # a file system without locks (ENOLCK): say so, do not block the run
            print(f"warning: {path}: the run folder cannot be locked ({exc.strerror}); a "
                  "second run into it would not be refused", file=sys.stderr)
            _held[path] = None
            _started[path] = time.time_ns()
            return
        owner = _owner(fd) or "unknown"
        os.close(fd)
        raise N2D2PyError(f"the run folder is in use by another n2d2py run (pid {owner}); "
                          "give another -o, or wait for that run to end (to test its weights "
                          "meanwhile: -test -w <folder>/weights -o <another folder>)",
                          path) from None
    previous = _owner(fd)
    if previous and previous != str(os.getpid()):
        print(f"notice: {path}: taking over the lock of run pid {previous}, which is not "
              "running any more (killed?)", file=sys.stderr)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        os.close(fd)
        raise N2D2PyError(f"cannot write the run-folder lock: {exc.strerror}", lock) from None
    _held[path] = fd
    _started[path] = time.time_ns()
    for name in SAVED_FOLDERS:
        if atomic.recover(os.path.join(path, name)):
            print(f"notice: {os.path.join(path, name)}: an interrupted save was recovered",
                  file=sys.stderr)


def _owner(fd):
    """The pid written in the lock file ("" for a new, empty one)."""
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""


def release(path):
    path = os.path.abspath(path)
    if _pending.pop(path, None) and path in _held:  # ended before its first save: drop what
        atomic.recover(os.path.join(path, "weights_init"))  # it staged, keep the previous run's
    fd = _held.pop(path, None)
    if fd is not None:
        try:
            os.ftruncate(fd, 0)  # emptied: a pid left in the file means a run was killed
        except OSError:
            pass
        os.close(fd)


def held_by_other(path):
    """True when another live process holds the lock of run folder ``path``."""
    path = os.path.abspath(path)
    lock = os.path.join(path, LOCK)
    if path in _held or not os.path.isfile(lock):
        return False
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def saved_by_this_run(folder):
    """True when ``folder`` holds a complete save made since this process took its run
    folder (or, outside a locked run, when it exists)."""
    started = _started.get(os.path.dirname(os.path.abspath(folder)))
    if not os.path.isdir(folder) or atomic.problems(folder):
        return False
    generation = atomic.generation(folder)
    return started is None or (generation is not None and generation >= started)


def defer(path, write):
    """Run ``write()`` at this run's first save (``first_save``), so that a run which fails or
    is killed before saving anything leaves the previous run's files as they were."""
    _pending.setdefault(os.path.abspath(path), []).append(write)


def first_save(path):
    """The run's first save is under way: write what waited for it."""
    for write in _pending.pop(os.path.abspath(path), []):
        write()
