"""N2D2 ``.syntxt`` weight files (spec §2.4), checkpoints for ``-l``/resume, atomic writes.

A ``.syntxt`` file holds the rows of ``cell.export_rows(param)``, one per line, values separated
by spaces. A checkpoint is a folder with ``state.npz`` (arrays) and ``state.json`` (counters,
RNG state, run metadata), replaced as a whole so that an interruption never leaves half of one.
"""

import io
import json
import os
import re
import shutil
import tempfile
import zipfile

import numpy as np

from n2d2py.backend import to_host
from n2d2py.errors import N2D2PyError

# Param role → file suffix: <cell>_weights.syntxt, <cell>_biases.syntxt, <cell>_scales.syntxt;
# other roles get <role>s (BatchNorm: <cell>_means.syntxt, <cell>_variances.syntxt)
ROLE_FILES = {"Weights": "weights", "Bias": "biases", "Scale": "scales"}

STATE_FORMAT = "n2d2py-state-1"
_NUMBER = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_FILE_MODE = 0o666 & ~_UMASK


# -- atomic writes ----------------------------------------------------------------------


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder + os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


# -- .syntxt weights --------------------------------------------------------------------


def best_weights_dir(run_dir, has_validation=None):
    """The weights a learning run leaves for ``-test``: ``weights_validation/`` (the best on the
    Validation set) when the model has one, else ``weights/`` (the last). With
    ``has_validation=None`` (the model is not known) the first of the two that exists, or None."""
    names = ("weights_validation", "weights")
    if has_validation is not None:
        return os.path.join(run_dir, names[0] if has_validation else names[1])
    return next((os.path.join(run_dir, n) for n in names if os.path.isdir(os.path.join(run_dir, n))),
                None)


def stored_params(cell):
    """What a cell saves: its learned ``params()`` then its ``buffers()`` (non-learned state
    such as BatchNorm's moving mean and variance, when the cell has any)."""
    return list(cell.params()) + list(cell.buffers())


def weight_files(cell):
    """(file name, Param) pairs of ``cell``: its own ``weight_files()`` or one file per role."""
    if hasattr(cell, "weight_files"):
        return list(cell.weight_files())
    out = []
    for param in stored_params(cell):
        suffix = ROLE_FILES.get(param.role, param.role.lower() + "s")
        name = f"{cell.name}_{suffix}.syntxt"
        if any(name == n for n, _ in out):
            raise RuntimeError(f"{cell.name}: two parameters with role {param.role}")
        out.append((name, param))
    return out


def format_rows(rows):
    """Rows of floats as text: '%.9g' round-trips float32 exactly."""
    fmt = "{:.9g}".format
    lines = (" ".join(map(fmt, np.asarray(r, dtype=np.float32).tolist())) for r in rows)
    return "".join(line + "\n" for line in lines)


def save_weights(cells, directory):
    """Write ``<cell>_<role>.syntxt`` for every parameter of ``cells`` (list or dict)."""
    os.makedirs(directory, exist_ok=True)
    for cell in _cell_list(cells):
        for name, param in weight_files(cell):
            atomic_write_text(os.path.join(directory, name), format_rows(cell.export_rows(param)))


def load_weights(cells, directory, ignore_missing=False):
    """Read every cell's ``.syntxt`` files from ``directory``; returns the missing paths.

    All files are parsed and checked against the current layout before any is applied.
    """
    plan, missing = [], []
    for cell in _cell_list(cells):
        for name, param in weight_files(cell):
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                if ignore_missing:
                    missing.append(path)
                    continue
                raise N2D2PyError(
                    f"weights file not found for layer {cell.name} (-w-ignore keeps the "
                    "initial values instead)",
                    path,
                )
            expected = [len(row) for row in cell.export_rows(param)]
            plan.append((cell, param, read_rows(path, expected)))
    for cell, param, rows in plan:
        cell.import_rows(param, rows)
    return missing


def read_rows(path, expected):
    """Rows of floats from ``path``; ``expected`` lists the length of every row."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise N2D2PyError(f"cannot read weights file: {exc.strerror}", path) from None
    if b"\0" in data:
        raise N2D2PyError("not a text weights file (binary data)", path)
    rows = []
    number = 0
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        row = _parse_row(tokens, path, number)
        if len(rows) == len(expected):
            raise N2D2PyError(
                f"expected {len(expected)} rows, found more (one row per output)", path, number
            )
        if len(row) != expected[len(rows)]:
            raise N2D2PyError(
                f"expected {expected[len(rows)]} values on line {number}, got {len(row)}",
                path,
                number,
            )
        rows.append(row)
    if len(rows) != len(expected):
        raise N2D2PyError(
            f"expected {len(expected)} rows (one per output), got {len(rows)}", path, number or None
        )
    return rows


def _parse_row(tokens, path, number):
    if not any("_" in t for t in tokens):
        try:
            return [float(t) for t in tokens]
        except ValueError:
            pass
    for token in tokens:
        if not _NUMBER.fullmatch(token):
            raise N2D2PyError(f'"{token[:40]}" is not a number', path, number)
    return [float(t) for t in tokens]


def _cell_list(cells):
    return list(cells.values()) if isinstance(cells, dict) else list(cells)


# -- checkpoints ------------------------------------------------------------------------


def collect_state(cells):
    """(params, solver states) of ``cells`` keyed ``<cell>/<param>``, for save_state."""
    params, solvers = {}, {}
    for cell in _cell_list(cells):
        for param in stored_params(cell):
            key = f"{cell.name}/{param.name}"
            params[key] = param.data
            if param.solver is not None:
                solvers[key] = param.solver.state_dict()
    return params, solvers


def restore_state(cells, params, solver_states, where=""):
    """Inverse of collect_state: check every shape first, then set data and solver state."""
    plan = []
    for cell in _cell_list(cells):
        for param in stored_params(cell):
            key = f"{cell.name}/{param.name}"
            if key not in params:
                raise N2D2PyError(
                    f"checkpoint has no values for {key} (saved from another network?)", where
                )
            value = np.asarray(params[key], dtype=np.float32)
            if value.shape != tuple(param.shape):
                raise N2D2PyError(
                    f"checkpoint holds {key} with shape {value.shape}, the network needs "
                    f"{tuple(param.shape)}",
                    where,
                )
            plan.append((cell, param, value, solver_states.get(key)))
    for cell, param, value, state in plan:
        param.data[...] = cell.device.asarray(value)
        if state is not None and param.solver is not None:
            if state.get("type", type(param.solver).__name__) != type(param.solver).__name__:
                raise N2D2PyError(
                    f"checkpoint solver for {cell.name}/{param.name} is {state.get('type')}, "
                    f"the network uses {type(param.solver).__name__}",
                    where,
                )
            param.solver.load_state_dict(state)


def rng_state(generator):
    """A JSON-able snapshot of a numpy Generator."""
    return generator.bit_generator.state


def set_rng_state(generator, state):
    generator.bit_generator.state = state


def save_state(directory, params_by_name, solver_states, meta):
    """Write a checkpoint folder (state.npz + state.json), replacing any previous one whole."""
    arrays, names, solvers = {}, {}, {}

    def store(a):
        key = f"arr_{len(arrays)}"
        arrays[key] = to_host(a)
        return key

    for name, value in params_by_name.items():
        names[name] = store(value)
    for name, state in solver_states.items():
        solvers[name] = {
            k: ({"array": store(v)} if hasattr(v, "shape") else v) for k, v in state.items()
        }
    doc = {"format": STATE_FORMAT, "params": names, "solvers": solvers, "meta": meta}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(directory)}.tmp-")
    try:
        with open(os.path.join(tmp, "state.npz"), "wb") as f:
            f.write(buffer.getvalue())
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(doc, f, indent=1)
        os.chmod(tmp, 0o777 & ~_UMASK)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp, directory):
    """Rename ``tmp`` to ``directory``; the previous folder survives as ``.old`` meanwhile."""
    old = directory + ".old"
    if os.path.isdir(directory):
        if os.path.exists(old):
            shutil.rmtree(old)
        os.rename(directory, old)
    os.rename(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def read_state_meta(directory):
    """The ``meta`` dict of a checkpoint (its seed, progress), without loading the arrays."""
    return _read_state_json(_state_dir(directory))[1]["meta"]


def _state_dir(directory):
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory) and os.path.isdir(directory + ".old"):
        directory += ".old"  # a save was interrupted between its two renames
    return directory


def _read_state_json(directory):
    """(path, document) of a checkpoint's state.json, checked."""
    json_path = os.path.join(directory, "state.json")
    if not os.path.isdir(directory):
        raise N2D2PyError("checkpoint folder not found", directory)
    try:
        with open(json_path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise N2D2PyError("not a checkpoint folder (no state.json)", directory) from None
    except (OSError, ValueError) as exc:
        raise N2D2PyError(f"corrupt checkpoint: {exc}", json_path) from None
    if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
        raise N2D2PyError(f"not an n2d2py checkpoint (expected format {STATE_FORMAT})", json_path)
    if not isinstance(doc.get("meta"), dict):
        raise N2D2PyError("corrupt checkpoint: no metadata", json_path)
    return json_path, doc


def load_state(directory):
    """(params_by_name, solver_states, meta) from a checkpoint folder written by save_state."""
    directory = _state_dir(directory)
    json_path, doc = _read_state_json(directory)
    npz_path = os.path.join(directory, "state.npz")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise N2D2PyError("corrupt checkpoint: state.npz is missing", directory) from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise N2D2PyError(f"corrupt checkpoint: {exc}", npz_path) from None

    def fetch(key):
        if key not in arrays:
            raise N2D2PyError(f"corrupt checkpoint: array {key} is missing", npz_path)
        return arrays[key]

    try:
        params = {name: fetch(key) for name, key in doc["params"].items()}
        solvers = {
            name: {
                k: (fetch(v["array"]) if isinstance(v, dict) and "array" in v else v)
                for k, v in state.items()
            }
            for name, state in doc["solvers"].items()
        }
        meta = doc["meta"]
    except (KeyError, AttributeError, TypeError) as exc:
        raise N2D2PyError(f"corrupt checkpoint: bad entry {exc}", json_path) from None
    return params, solvers, meta
