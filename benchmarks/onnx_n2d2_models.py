"""N2D2's ONNX model files through n2d2py: each one builds, or says in one line which .onnx
file it misses.

    python benchmarks/onnx_n2d2_models.py --models N2D2/models         # a checkout's models/
    python benchmarks/onnx_n2d2_models.py --git path/to/N2D2.git      # or a (bare) clone

Every INI with a ``Type=ONNX`` section is run as ``n2d2py X.ini --dry-run`` in a child process
(the user's path); the last line it prints on stderr (or "builds") is reported per file.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def from_git(repo, folder):
    names = subprocess.run(["git", "-C", repo, "ls-tree", "-r", "--name-only", "HEAD", "models"],
                           capture_output=True, text=True, check=True).stdout.split()
    for name in names:
        if name.endswith(".ini"):
            text = subprocess.run(["git", "-C", repo, "show", f"HEAD:{name}"],
                                  capture_output=True, text=True, check=True).stdout
            path = Path(folder) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return Path(folder) / "models"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="N2D2's models/ folder")
    parser.add_argument("--git", help="an N2D2 git repository (read at HEAD)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="n2d2_onnx_models_")
    models = Path(args.models) if args.models else from_git(args.git, work)
    files = sorted(p for p in models.rglob("*.ini") if "Type=ONNX" in p.read_text(errors="replace"))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ok = 0
    for path in files:
        run = subprocess.run([sys.executable, "-m", "n2d2py", str(path), "--dry-run", "-o",
                              os.path.join(work, "run")], capture_output=True, text=True,
                             env=env, cwd=work)
        lines = run.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        verdict = "builds" if run.returncode == 0 else (errors[-1] if errors else lines[-1])
        one_line = run.returncode == 0 or (len(errors) == 1 and "ONNX file not found" in errors[0])
        ok += one_line
        print(f"{'ok ' if one_line else 'BAD'} {path.relative_to(models)}: {verdict}")
    print(f"{ok}/{len(files)} build or name their missing .onnx file in one line")


if __name__ == "__main__":
    main()
