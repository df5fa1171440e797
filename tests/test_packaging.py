"""What a wheel carries: the package and the shipped MNIST, found once installed elsewhere."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz", "SHA256SUMS", "README.md"]


def test_wheel_carries_mnist_and_finds_it_from_anywhere(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "n2d2py", src / "n2d2py",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("n2d2py-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in MNIST:
        assert f"n2d2py/datasets/mnist/{name}" in names, name
    # installed elsewhere (the wheel unpacked as site-packages would hold it), run from an
    # empty folder without N2D2_DATA: the database reads the shipped files, hashes checked
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    code = ("import numpy as np; from n2d2py.registry import DATABASES; import n2d2py.network; "
            "db = DATABASES.get('MNIST_IDX_Database')(); "
            "from n2d2py.data.databases import dataset_dir; db.data_path = dataset_dir('mnist'); "
            "db.load(np.random.default_rng(0)); print(db.data_path, db.size('Learn'), db.size('Test'))")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("N2D2_DATA", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=empty,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(site / "n2d2py" / "datasets" / "mnist"), "60000", "10000"]
