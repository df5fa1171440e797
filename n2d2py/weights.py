"""N2D2 ``.syntxt`` weight files (spec §2.4) and checkpoints for ``-l``/resume.

A ``.syntxt`` file holds the rows of ``cell.export_rows(param)``, one per line, values separated
by spaces. A checkpoint is a folder with ``state.npz`` (arrays) and ``state.json`` (counters,
RNG state, run metadata). Both are saved as whole folders (``atomic.new_folder``) so that an
interruption never leaves half of one, or a mix of two saves.
"""

import io
import json
import math
import os
import re
import zipfile

import numpy as np

from n2d2py import atomic
from n2d2py.backend import to_host
from n2d2py.errors import N2D2PyError

# Param role → file suffix: <cell>_weights.syntxt, <cell>_biases.syntxt, <cell>_scales.syntxt;
# other roles get <role>s (BatchNorm: <cell>_means.syntxt, <cell>_variances.syntxt)
ROLE_FILES = {"Weights": "weights", "Bias": "biases", "Scale": "scales"}

STATE_FORMAT = "n2d2py-state-1"
_NUMBER = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)


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
        # ONNX node names may hold "/" (PyTorch, tf2onnx): one file in the folder, not a path
        name = f"{cell.name.replace('/', '_').replace(os.sep, '_')}_{suffix}.syntxt"
        if any(name == n for n, _ in out):
            raise RuntimeError(f"{cell.name}: two parameters with role {param.role}")
        out.append((name, param))
    return out


def format_rows(rows):
    """Rows of floats as text: '%.9g' round-trips float32 exactly."""
    fmt = "{:.9g}".format
    lines = (" ".join(map(fmt, np.asarray(r, dtype=np.float32).tolist())) for r in rows)
    return "".join(line + "\n" for line in lines)


def save_weights(cells, directory, commit=True):
    """Write ``<cell>_<role>.syntxt`` for every parameter of ``cells`` (list or dict), as one
    new folder swapped in whole (``commit=False``: kept aside, see ``atomic.new_folder``)."""
    with atomic.new_folder(directory, commit) as tmp:
        for cell in _cell_list(cells):
            for name, param in weight_files(cell):
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(format_rows(cell.export_rows(param)))


def load_weights(cells, directory, ignore_missing=False):
    """Read every cell's ``.syntxt`` files from ``directory``; returns the missing paths.

    All files are parsed and checked against the current layout before any is applied, and
    they all come from one save (``atomic.read_consistent``).
    """
    from n2d2py import run_folder

    may_recover = not run_folder.held_by_other(os.path.dirname(os.path.abspath(directory)))
    plan, missing = atomic.read_consistent(
        directory, lambda d: _read_plan(cells, d, ignore_missing), may_recover)
    for cell, param, rows in plan:
        cell.import_rows(param, rows)
    return missing


def _read_plan(cells, directory, ignore_missing):
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
    return plan, missing


def read_rows(path, expected):
    """Rows of floats from ``path``; ``expected`` lists the length of every row."""
    from n2d2py import limits

    limit = 64 * (sum(expected) + len(expected)) + 4096  # generous: 64 characters a value
    try:
        data = limits.read_regular(path, limit, "weights file")
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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_row(tokens, path, number):
    row = None
    if not any("_" in t for t in tokens):
        try:
            row = [float(t) for t in tokens]
        except ValueError:
            pass
    if row is None:
        for token in tokens:
            if not _NUMBER.fullmatch(token):
                raise N2D2PyError(f'"{token[:40]}" is not a number', path, number)
        row = [float(t) for t in tokens]
    if not all(abs(v) <= FLOAT32_MAX for v in row):  # also false for nan
        bad = next(t for t, v in zip(tokens, row) if not abs(v) <= FLOAT32_MAX)
        what = "not a finite number" if not math.isfinite(float(bad)) else "outside the float32 range"
        raise N2D2PyError(f'"{bad[:40]}" is {what}', path, number)
    return row


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
            if not np.isfinite(value).all():
                raise N2D2PyError(f"checkpoint holds non-finite values in {key}", where)
            if value.shape != tuple(param.shape):
                raise N2D2PyError(
                    f"checkpoint holds {key} with shape {value.shape}, the network needs "
                    f"{tuple(param.shape)}",
                    where,
                )
            state = solver_states.get(key)
            _check_solver_state(key, state, value.shape, where)
            plan.append((cell, param, value, state))
    for cell, param, value, state in plan:
        param.data[...] = cell.device.asarray(value)
        if state is not None and param.solver is not None:
            if state.get("type", type(param.solver).__name__) != type(param.solver).__name__:
                raise N2D2PyError(
                    f"checkpoint solver for {cell.name}/{param.name} is {state.get('type')}, "
                    f"the network uses {type(param.solver).__name__}",
                    where,
                )
            try:
                param.solver.load_state_dict(state)
            except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
                raise N2D2PyError(f"checkpoint solver state for {cell.name}/{param.name} is "
                                  f"invalid ({exc!r})", where) from None


def _check_solver_state(key, state, shape, where):
    """A solver state must be a mapping whose arrays have the parameter's shape and finite
    values, and whose counters are non-negative integers (checked before anything is set)."""
    if state is None:
        return
    if not isinstance(state, dict):
        raise N2D2PyError(f"checkpoint solver state for {key} is not an object", where)
    for name, value in state.items():
        if hasattr(value, "shape"):
            if tuple(value.shape) != tuple(shape) or not np.isfinite(value).all():
                raise N2D2PyError(f"checkpoint solver state {key}.{name} has shape "
                                  f"{tuple(value.shape)} or non-finite values (the parameter "
                                  f"is {tuple(shape)})", where)
        elif name in ("n", "pass", "t") and not (type(value) is int and 0 <= value < 2**62):
            raise N2D2PyError(f"checkpoint solver state {key}.{name} holds {str(value)[:40]!r}, "
                              "not a count", where)


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
    with atomic.new_folder(directory) as tmp:
        with open(os.path.join(tmp, "state.npz"), "wb") as f:
            f.write(buffer.getvalue())
        with open(os.path.join(tmp, "state.json"), "w") as f:
            json.dump(doc, f, indent=1)


def read_state_meta(directory):
    """The ``meta`` dict of a checkpoint (its seed, progress), without loading the arrays."""
    return _read_state_json(_state_dir(directory))[1]["meta"]


def _state_dir(directory):
    """``directory``, checked to be one complete save (an interrupted one recovered)."""
    from n2d2py import run_folder

    directory = os.path.abspath(directory)
    atomic.check_folder(directory, not run_folder.held_by_other(os.path.dirname(directory)))
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
    from n2d2py import run_folder

    directory = os.path.abspath(directory)
    may_recover = not run_folder.held_by_other(os.path.dirname(directory))
    return atomic.read_consistent(directory, _load_state_files, may_recover)


def _check_inflated_size(npz_path):
    """Refuse a state.npz whose arrays would not fit in memory (a zip bomb), from the sizes
    its directory declares (zipfile never inflates a member past its declared size)."""
    from n2d2py import limits

    with zipfile.ZipFile(npz_path) as z:
        total = sum(info.file_size for info in z.infolist())
    available = limits.available_memory() // 2
    if total > available:
        raise N2D2PyError(f"corrupt checkpoint: its arrays inflate to {total:,} bytes, more than "
                          f"half the memory available ({available:,})", npz_path)


def _load_state_files(directory):
    json_path, doc = _read_state_json(directory)
    npz_path = os.path.join(directory, "state.npz")
    try:
        _check_inflated_size(npz_path)
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
