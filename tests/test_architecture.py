"""The layout rules of design.md, checked: where array math may use numpy, module sizes,
dependencies between packages, and one place that reads Type=."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "n2d2py"
NUMERIC = ["cells", "activations.py", "solvers.py"]
HOT = {"forward", "backward", "_forward", "_backward", "update", "loss_grad"}


def modules(*names):
    for name in names:
        path = PACKAGE / name
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_hot_paths_use_xp_not_numpy():
    """Forward/backward/update code must run on CuPy arrays too: no np.* inside them."""
    offenders = []
    for path in modules(*NUMERIC):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef) and fn.name in HOT:
                for node in ast.walk(fn):
                    if isinstance(node, ast.Name) and node.id in ("np", "numpy"):
                        offenders.append(f"{path.name}:{node.lineno} in {fn.name}")
    assert not offenders, offenders


def test_modules_stay_small():
    big = [f"{p.relative_to(PACKAGE)} ({n} lines)" for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 600]
    assert not big, big


def test_cells_never_import_spike():
    for path in modules("cells"):
        assert "n2d2py.spike" not in path.read_text(), path.name


def test_only_the_builder_and_provider_read_type():
    """network.build reads layers' Type=; the provider reads its transformation sections'."""
    readers = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py") if '("Type"' in p.read_text()}
    assert readers <= {"network.py", "data/provider.py"}, readers


def test_compiled_cpu_kernels_are_chosen_in_one_place():
    """n2d2py/kernels/ (numba, CPU-only) is handed out by backend.cpu_kernels alone: a call site
    asks it for the kernels of its array and keeps the xp path for CuPy arrays. (The kernels
    are the one numerical code that is not xp; tests/cells/test_kernels_cpu.py holds them to
    the xp path.)"""
    def imports_kernels(path):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "n2d2py.kernels" or n.startswith("n2d2py.kernels.") for n in names):
                return True
        return False

    users = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
             if p.parent.name != "kernels" and imports_kernels(p)}
    assert users == {"backend.py"}, users
