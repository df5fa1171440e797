#!/usr/bin/env python3
"""N2D2's IMDBWIKI.ini (face and gender segmentation, TargetROIs) with its sizes lowered, learned
on a generated IMDB-WIKI set (tools/make_imdbwiki.py, MNIST digits as faces) and tested on a
second generated set drawn from MNIST's test digits, never seen in learning.

    python benchmarks/imdbwiki.py N2D2_MODELS_DIR OUT [--epochs 10] [--frames 3000]

N2D2_MODELS_DIR holds N2D2's IMDBWIKI.ini and IMDBWIKI_target_{face,gender}.dat (from N2D2's
``models/``). Only sizes change: input 96×72 (the learning rescale 103×78 keeps N2D2's
514/480 margin), batch 24, channels 8/12/12/16/16/16/24/24 instead of 48/64/64/96/96/96/128/128,
TargetROIs' FilterMinWidth/Height 1 instead of 5 (they count output pixels: 12×9 instead of 60×45).
Prints pixel accuracy of both targets and the box precision, recall and class accuracy of
both TargetROIs on the unseen set.
"""

import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOWER = {("sp", "SizeX"): "96", ("sp", "SizeY"): "72", ("sp", "BatchSize"): "24",
         ("sp.Transformation-2", "Width"): "103", ("sp.Transformation-2", "Height"): "78",
         ("conv1.1", "NbOutputs"): "8", ("conv2.1", "NbOutputs"): "12",
         ("conv2.2", "NbOutputs"): "12", ("conv3.1", "NbOutputs"): "16",
         ("conv3.2", "NbOutputs"): "16", ("conv3.3", "NbOutputs"): "16",
         ("fc1", "NbOutputs"): "24", ("fc2", "NbOutputs"): "24"}
for _target in ("face", "gender"):  # box size filters are in output pixels: 5 × 96/480 = 1
    for _key in ("FilterMinWidth", "FilterMinHeight"):
        LOWER[(f"post.Transformation-thres.Target-{_target}", _key)] = "1"


def lowered(text):
    """The INI text with the keys of LOWER replaced, nothing else touched."""
    out, section = [], None
    for line in text.splitlines():
        header = re.match(r"\[(.+)\]", line)
        section = header.group(1) if header else section
        key = re.match(r"(\w+)=", line)
        if key and (section, key.group(1)) in LOWER:
            line = f"{key.group(1)}={LOWER[(section, key.group(1))]}"
        out.append(line)
    return "\n".join(out) + "\n"


def run(cmd, env, cwd, log):
    print("$", " ".join(cmd), f"(in {cwd}, N2D2_DATA={env['N2D2_DATA']})", flush=True)
    with open(log, "w") as f:
        subprocess.run(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return open(log).read()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", help="folder with N2D2's IMDBWIKI.ini and its .dat files")
    parser.add_argument("out", help="work folder (data sets, run folder)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    models = os.path.abspath(args.models)
    os.makedirs(out, exist_ok=True)
    tool = os.path.join(ROOT, "tools", "make_imdbwiki.py")
    for name, seed, source, frames in (("train", 1, "train", args.frames),
                                       ("unseen", 2, "test", 4 * args.frames // 3)):
        os.makedirs(os.path.join(out, name), exist_ok=True)
        subprocess.run([sys.executable, tool, os.path.join(out, name, "IMDB-WIKI"), "--frames",
                        str(frames), "--width", "160", "--height", "120", "--max-faces", "1",
                        "--seed", str(seed), "--source", source, "--force"], check=True,
                       stderr=subprocess.DEVNULL)
    with open(os.path.join(models, "IMDBWIKI.ini")) as f:
        ini = lowered(f.read())
    small = os.path.join(models, "IMDBWIKI_small.ini")
    with open(small, "w") as f:
        f.write(ini)
    run_dir = os.path.join(out, "run")
    os.makedirs(run_dir, exist_ok=True)
    env = dict(os.environ, N2D2_MODELS=models, PYTHONPATH=ROOT,
               N2D2_DATA=os.path.join(out, "train"))
    n2d2py = [sys.executable, "-m", "n2d2py", small]
    run(n2d2py + ["-learn-epoch", str(args.epochs), "-seed", "1"], env, run_dir,
        os.path.join(out, "learn.log"))
    env["N2D2_DATA"] = os.path.join(out, "unseen")
    text = run(n2d2py + ["-test", "-seed", "1"], env, run_dir, os.path.join(out, "test.log"))
    start = text.find("[fc3.face.Target]")
    print(text[start:] if start >= 0 else text[-3000:])
    for target in ("fc3.face.Target", "fc3.gender.Target"):
        matrix = _matrix(os.path.join(run_dir, target, "ConfusionMatrix_test.dat"))
        n = 2  # the target classes; a masked target's matrix has a "masked" row/column more
        right = sum(matrix.get((t, t), 0) for t in range(n))
        scored = sum(v for (t, e), v in matrix.items() if t < n and e < n)
        print(f"{target}: pixel accuracy {100 * right / max(scored, 1):.2f}% "
              f"({right}/{scored} pixels scored)")


def _matrix(path):
    cells = {}
    with open(path) as f:
        next(f)
        for line in f:
            t, e, count, _ = line.split()
            cells[(int(t), int(e))] = int(count)
    return cells


if __name__ == "__main__":
    main()
