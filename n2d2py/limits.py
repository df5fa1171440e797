"""Resource limits checked before the work: input files read only if regular and small enough,
decompression that stops at the size it expects, and networks whose parameters fit in memory.
"""

import os
import stat
import zlib

from n2d2py.errors import N2D2PyError

MAX_TEXT_BYTES = 16 << 20  # an INI file or template
BYTES_PER_PARAM = 4 + 8 + 2 * 4  # float32 data, float64 gradient, (up to) two float32 solver states
SAVED_BYTES_PER_PARAM = 40  # at least: .syntxt text (~12 bytes) in two folders + two checkpoints


def read_regular(path, limit, what):
    """The bytes of ``path``, refused unless it is a regular file of at most ``limit`` bytes
    (``/dev/zero``, a FIFO or a huge file end in one line, not a hang or a MemoryError)."""
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise N2D2PyError(f"{what} is not a regular file", str(path))
        if info.st_size > limit:
            raise N2D2PyError(f"{what} is {info.st_size:,} bytes, over the limit of {limit:,}",
                              str(path))
        data = f.read(limit + 1)
    if len(data) > limit:
        raise N2D2PyError(f"{what} is over the limit of {limit:,} bytes", str(path))
    return data


def gunzip(raw, limit, path, head=False):
    """Decompress gzip ``raw``, refusing output over ``limit`` bytes without producing it;
    ``head=True``: just the first ``limit`` bytes (to read a header)."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        while raw:
            out += d.decompress(raw, limit + 1 - len(out))
            if head and len(out) >= limit:
                return bytes(out[:limit])
            if len(out) > limit:
                raise N2D2PyError(f"gzip data inflates beyond {limit:,} bytes (the most this file "
                                  "can hold): refused", str(path))
            raw = d.unconsumed_tail
            if d.eof:
                raw = d.unused_data  # concatenated gzip members
                if raw:
                    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if not d.eof and not head:
            raise N2D2PyError("corrupt gzip data (truncated)", str(path))
    except zlib.error as exc:
        raise N2D2PyError(f"corrupt gzip data ({exc})", str(path)) from None
    return bytes(out)


def available_memory():
    """Bytes of memory available now (MemAvailable), or the physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 1 << 40


def _param_counts(net):
    from n2d2py.weights import stored_params

    return {name: sum(int(_prod(p.shape)) for p in stored_params(cell))
            for name, cell in net.cells.items()}


def _prod(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def check_memory(net, available=None):
    """Refuse, before allocating, a network whose parameters would not fit in memory; the
    message names the largest layer and the sizes."""
    counts = _param_counts(net)
    if not counts:
        return
    need = sum(counts.values()) * BYTES_PER_PARAM
    available = available_memory() if available is None else available
    if need > available:
        name = max(counts, key=counts.get)
        raise N2D2PyError(
            f"the network's {sum(counts.values()):,} parameters need about {_gib(need)} "
            f"(data, gradients, solver state), more than the {_gib(available)} of memory "
            f"available; the largest layer, [{name}], has {counts[name]:,} parameters",
            net.doc.path)


def check_allocation(what, nbytes, available=None):
    """Refuse ``what`` when it needs more than half the memory available now."""
    available = available_memory() if available is None else available
    if nbytes > available // 2:
        raise N2D2PyError(f"{what} needs {_gib(nbytes)} of memory, more than half of the "
                          f"{_gib(available)} available")


MAX_STIMULUS_VALUES = 1 << 28  # 1 GiB of float32 per stimulus
MAX_SIDE = 1 << 16  # pixels, a transformation's Width or Height


def check_stimuli(sec, values, batch_size, available=None):
    """Refuse a [sp] whose stimuli or batches could not be held in memory, naming the key."""
    if values > MAX_STIMULUS_VALUES:
        raise sec.error("SizeX", f"a stimulus of {values:,} values (SizeX x SizeY x NbChannels) "
                        f"is over the limit of {MAX_STIMULUS_VALUES:,}")
    available = available_memory() if available is None else available
    need = values * batch_size * 4 * 3  # the batch, the first layer's input copy and gradient
    if need > available // 2:
        raise sec.error("BatchSize", f"a batch of {batch_size:,} stimuli of {values:,} values "
                        f"needs about {_gib(need)}, more than half of the {_gib(available)} "
                        "of memory available")


def saved_bytes(net):
    """About how many bytes a learning run saves into its run folder."""
    return sum(_param_counts(net).values()) * SAVED_BYTES_PER_PARAM


def _gib(n):
    return f"{n / 2**30:,.1f} GiB"
