"""Survey: N2D2's own model files, each run unchanged with ``n2d2py FILE --dry-run``.

    python benchmarks/n2d2_model_files.py PATH/TO/N2D2/models [--data DIR] [--jobs 2]

The ``models`` folder is copied to a scratch folder (with its ``.tpl`` and ``.dat``
companions) and every ``*.ini`` under it is dry-run there in its own process, with
``N2D2_DATA`` pointing at ``--data`` or, by default, at a scratch folder holding tiny
generated data in N2D2's layouts (ImageNet, GTSRB, CIFAR-10/100, MNIST from the shipped
copy). One table row per file: what it uses (ONNX, STDP/spiking learning), the outcome
(OK, or the error), and the line that says so (the parameter total, or the error).
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_data(root):
    """Tiny data sets for every driver N2D2's model files name."""
    import numpy as np

    from n2d2py.data.cifar import write_batch
    from n2d2py.data.layouts import write_gtsrb, write_ilsvrc2012

    write_ilsvrc2012(root / "ILSVRC2012")
    write_gtsrb(root / "GTSRB")
    rng = np.random.default_rng(0)
    cifar10 = root / "cifar-10-batches-bin"
    cifar10.mkdir(parents=True)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        write_batch(cifar10 / name, rng.integers(0, 256, (4, 32, 32, 3), np.uint8),
                    rng.integers(0, 10, 4))
    cifar100 = root / "cifar-100-binary"
    cifar100.mkdir(parents=True)
    for name in ("train.bin", "test.bin"):
        write_batch(cifar100 / name, rng.integers(0, 256, (4, 32, 32, 3), np.uint8),
                    rng.integers(0, 100, 4), coarse=rng.integers(0, 20, 4))
    mnist = ROOT / "n2d2py" / "datasets" / "mnist"  # the copy shipped inside the package
    if mnist.is_dir():
        (root / "mnist").symlink_to(mnist)


def kind(text):
    """What the file needs beyond a plain build: ONNX import, spiking (STDP) learning."""
    uses = []
    if re.search(r"^\s*Type\s*=\s*ONNX", text, re.M | re.I) or ".onnx" in text:
        uses.append("ONNX")
    if re.search(r"DefaultModel\s*=\s*Spike", text) or "stdp" in text.lower():
        uses.append("STDP")
    return ",".join(uses) or "-"


def summary(output):
    """(outcome, line): "OK" and the Total line, or "error" and the first error line."""
    lines = output.splitlines()
    for line in lines:
        if line.startswith("error:") or line.startswith("Error"):
            return "error", line
    for line in lines:
        if line.startswith("Total:"):
            return "OK", line
    tail = [line for line in lines if line.strip()]
    return "error", (tail[-1] if tail else "(no output)")


def run_one(path, folder, data, timeout):
    env = dict(os.environ, N2D2_DATA=str(data), PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as out:
        try:
            proc = subprocess.run([sys.executable, "-m", "n2d2py", str(path), "--dry-run",
                                   "-o", out], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=timeout)
            output = proc.stdout + "\n" + proc.stderr
        except subprocess.TimeoutExpired:
            return "error", f"timed out after {timeout} s"
    if "Traceback" in output:
        return "error", "TRACEBACK: " + output.strip().splitlines()[-1]
    return summary(output)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, help="N2D2's models/ folder")
    parser.add_argument("--data", type=Path, help="N2D2_DATA (default: generated tiny data)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="n2d2_models_"))
    try:
        models = scratch / "models"
        shutil.copytree(args.models, models)
        data = args.data
        if data is None:
            data = scratch / "data"
            data.mkdir()
            make_data(data)
        files = sorted(models.rglob("*.ini"))
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(
                lambda p: run_one(p.relative_to(models), models, data, args.timeout), files))
        rows = [(str(p.relative_to(models)), kind(p.read_text(errors="replace")), *r)
                for p, r in zip(files, results)]
        width = max(len(r[0]) for r in rows)
        print(f"{'file':{width}}  uses       outcome  first line")
        for name, uses, outcome, line in rows:
            print(f"{name:{width}}  {uses:9}  {outcome:7}  {line}")
        plain = [r for r in rows if r[1] == "-"]
        print(f"\n{sum(r[2] == 'OK' for r in rows)}/{len(rows)} files build; without ONNX "
              f"or STDP: {sum(r[2] == 'OK' for r in plain)}/{len(plain)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
