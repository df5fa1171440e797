"""Atomic writes: one file (a temporary file + ``os.replace``) and one folder (a whole new
generation written beside the old one, then swapped in).

A folder save (``with new_folder(path) as tmp: ...``) writes every file into
``.<name>.new-<pid>``, then a manifest ``.n2d2py-folder.json`` (each file's size and CRC-32,
and a generation number), renames the folder to ``.<name>.ready`` (complete) and swaps it in:
an atomic exchange of the two folders where Linux offers one (``renameat2``), else two renames.
At every instant ``path`` is one complete generation, or a complete generation waits under a
leftover name that ``recover`` puts back. ``check_folder`` is the readers' side: it recovers
leftovers when no other run holds the folder, and refuses a folder missing files its manifest
lists, by name.
"""

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
import time
import zlib

from n2d2py.errors import N2D2PyError

MANIFEST = ".n2d2py-folder.json"
MANIFEST_FORMAT = "n2d2py-folder-1"
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                 errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.EFBIG, errno.EIO}


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
FILE_MODE = 0o666 & ~_UMASK
DIR_MODE = 0o777 & ~_UMASK


def output_error(exc, path):
    """An OSError met while writing ``path``, as the one-line user error."""
    reason = exc.strerror or str(exc)
    hint = {errno.ENOSPC: " (the disk is full)", errno.EDQUOT: " (disk quota exceeded)",
            errno.EROFS: " (read-only file system)"}.get(exc.errno, "")
    return N2D2PyError(f"cannot write: {reason}{hint}", str(path))


# -- one file -------------------------------------------------------------------------------


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder + os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise output_error(exc, path) from None
    except BaseException:
        _remove(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def _remove(path):
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


# -- one folder -----------------------------------------------------------------------------


def _names(path):
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    return path, parent, os.path.join(parent, f".{name}.ready"), os.path.join(parent, f".{name}.old")


@contextlib.contextmanager
def new_folder(path, commit=True):
    """``with new_folder(path) as tmp``: write the files into ``tmp``; on a normal exit the
    folder becomes ``path`` whole (the old generation is removed), on an error it is dropped
    and ``path`` stays as it was. ``commit=False`` keeps the complete folder aside, as
    ``.<name>.staged``, until ``commit_staged(path)`` swaps it in (a leftover staged folder
    is removed by ``recover``)."""
    path, parent, ready, _ = _names(path)
    if not commit:
        ready = _staged(path)
    tmp = None
    try:
        os.makedirs(parent, exist_ok=True)
        recover(path)
        tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(path)}.new-{os.getpid()}-")
        yield tmp
        write_manifest(tmp)
        os.chmod(tmp, DIR_MODE)
        os.rename(tmp, ready)
        tmp = None
        if commit:
            _swap_in(ready, path)
    except OSError as exc:
        raise output_error(exc, exc.filename or path) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _staged(path):
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}.staged")


def _drop(path):
    parent, name = os.path.split(os.path.abspath(path))
    return os.path.join(parent, f".{name}.drop")


def commit_staged(path):
    """Swap in the folder that ``new_folder(path, commit=False)`` kept aside."""
    path, _, ready, _ = _names(path)
    try:
        os.rename(_staged(path), ready)
        _swap_in(ready, path)
    except OSError as exc:
        raise output_error(exc, path) from None


def write_manifest(folder):
    files = {}
    for name in sorted(os.listdir(folder)):
        full = os.path.join(folder, name)
        if name != MANIFEST and os.path.isfile(full):
            files[name] = _digest(full)
    doc = {"format": MANIFEST_FORMAT, "generation": time.time_ns(), "files": files}
    with open(os.path.join(folder, MANIFEST), "w") as f:
        json.dump(doc, f, indent=0)


def _digest(path):
    crc, size = 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return [size, crc]


def _swap_in(ready, path):
    """``ready`` (complete) becomes ``path``; the previous generation is removed."""
    old = _names(path)[3]
    if not os.path.isdir(path):
        os.rename(ready, path)
        return
    if _exchange(ready, path):  # atomic: ``path`` never goes missing
        os.rename(ready, old)  # now the old generation (recover keeps the newer one anyway)
    else:
        os.rename(path, old)
        os.rename(ready, path)
    shutil.rmtree(old, ignore_errors=True)


_RENAME_EXCHANGE = 2
_LIBC = None


def _exchange(a, b):
    """Swap two paths atomically with Linux renameat2(RENAME_EXCHANGE); False if unsupported."""
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return False
    at_fdcwd = -100
    if _LIBC(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), b)


def leftovers(path):
    """Paths left beside ``path`` by an interrupted save (none after a clean one)."""
    path, parent, ready, old = _names(path)
    prefix = f".{os.path.basename(path)}.new-"
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    found = [os.path.join(parent, n) for n in names if n.startswith(prefix)]
    return found + [p for p in (ready, old, _staged(path), _drop(path)) if os.path.lexists(p)]


def read_manifest(folder):
    """The manifest of ``folder`` (None when it has none: an N2D2 or hand-made folder)."""
    try:
        with open(os.path.join(folder, MANIFEST)) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"format": "unreadable"}
    return doc if isinstance(doc, dict) else {"format": "unreadable"}


def problems(folder):
    """Why ``folder`` is not one complete generation ([] when it is, or has no manifest)."""
    doc = read_manifest(folder)
    if doc is None:
        return []
    files = doc.get("files")
    if doc.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
        return [f"its manifest {MANIFEST} is unreadable"]
    out = []
    for name, expected in files.items():
        full = os.path.join(folder, name)
        if not os.path.isfile(full):
            out.append(f"{name} is " + ("not a regular file" if os.path.lexists(full) else
                                        "missing"))
        elif list(expected) != _digest(full):
            out.append(f"{name} differs from what was saved")
    return out


def generation(folder):
    doc = read_manifest(folder)
    return doc.get("generation") if doc else None


def recover(path):
    """Finish or undo an interrupted save of ``path``: the newest complete generation among
    ``path`` and its leftovers becomes ``path``; the rest is removed. Call it only while no
    other process writes the folder (the run-folder lock). Returns True if anything was done."""
    path, _, ready, old = _names(path)
    found = leftovers(path)
    if not found:
        return False
    drop = _drop(path)
    complete = []
    for candidate in [path, ready, old, drop]:
        if os.path.isdir(candidate) and read_manifest(candidate) is not None \
                and not problems(candidate):
            complete.append((generation(candidate) or 0, candidate))
    if complete:
        best = max(complete)[1]
        if best != path:
            if os.path.isdir(path) and not _exchange(best, path):
                if os.path.lexists(drop):
                    shutil.rmtree(drop, ignore_errors=True)
                os.rename(path, drop)  # a kill here: ``drop`` is a candidate next time
                found.append(drop)
            if not os.path.isdir(path):
                os.rename(best, path)
    for p in found:
        if p != path and os.path.lexists(p):
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else _remove(p)
    return True


def check_folder(path, may_recover=True):
    """Before reading a saved folder: recover an interrupted save (if ``may_recover``), then
    refuse a folder that is not one complete generation. Returns its generation (or None)."""
    if may_recover and leftovers(path):
        try:
            recover(path)
        except OSError:
            pass  # a read-only copy: judged as it is below
    if not os.path.isdir(path):
        if leftovers(path):
            raise N2D2PyError("the folder is missing: a save into it was interrupted and is not "
                              "recovered yet (another run holds the folder?)", path)
        return None
    bad = problems(path)
    missing = [p for p in bad if "differs" not in p]
    if missing:
        raise N2D2PyError(f"half-written folder ({'; '.join(missing[:3])}): not one complete "
                          "save", path)
    for problem in bad:
        print(f"warning: {path}: {problem} (edited after the save?)", file=sys.stderr)
    return generation(path)


def read_consistent(path, read, may_recover=True, attempts=5):
    """``read(path)`` with the folder checked, retried if another run swapped a new generation
    in meanwhile (so that what is returned comes from one generation)."""
    for attempt in range(attempts):
        try:
            before = check_folder(path, may_recover)
        except N2D2PyError:
            if may_recover or attempt == attempts - 1:
                raise
            time.sleep(0.1)  # another run is between the two renames of a swap
            continue
        result = read(path)
        if generation(path) == before:
            return result
        time.sleep(0.05)
    raise N2D2PyError("the folder changes faster than it can be read (another run is saving "
                      "into it)", path)
