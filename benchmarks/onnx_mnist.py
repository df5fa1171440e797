"""A PyTorch-trained CNN, exported to ONNX (opset 13), tested by n2d2py through an INI written
N2D2's way; both scores on the full MNIST test set, side by side.

    python benchmarks/onnx_mnist.py                    # --epochs 2 --opset 13 --out /tmp/onnx_mnist
    python benchmarks/onnx_mnist.py --onnx other.onnx  # skip training: any MNIST model file
                                                       #   (with its --mean/--std normalisation)

PyTorch reads the shipped MNIST (datasets/mnist) as x/255 normalised by (x - mean)/std. n2d2py
runs ``n2d2py X.ini -test`` (the user's path, in a child process), where that normalisation is
written as transformations: the raw 0-255 pixels are divided by 255, then mean and std applied
(a RangeAffineTransformation keeps the data float, so n2d2py's implicit [0, 1] mapping of
integer images no longer applies: both steps must be written).
"""

import argparse
import gzip
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INI = """; written by benchmarks/onnx_mnist.py: an ONNX model run N2D2's way
DefaultModel=Frame

[database]
Type=MNIST_IDX_Database

[sp]
SizeX=28
SizeY=28
BatchSize=256

; PyTorch saw (x/255 - mean)/std: the same input scaling, written as N2D2 transformations
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0

[sp.Transformation-2]
Type=RangeAffineTransformation
FirstOperator=Minus
FirstValue={mean}
SecondOperator=Divides
SecondValue={std}

[onnx]
Input=sp
Type=ONNX
File={file}

[{output}.Target]
"""


def idx(name):
    with gzip.open(ROOT / "datasets" / "mnist" / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def train(args):
    import torch
    import torch.nn as nn

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    x = (x - args.mean) / args.std
    model = nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, groups=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.ReLU6(), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x))
        start = time.time()
        for i in range(0, len(x), 128):
            batch = order[i:i + 128]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} ({time.time() - start:.0f} s)", flush=True)
    return model.eval()


def torch_score(args, model):
    import torch

    x = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)
    y = idx("t10k-labels-idx1-ubyte.gz")
    with torch.no_grad():
        pred = model((x - args.mean) / args.std).argmax(1).numpy()
    return 100.0 * float((pred == y).mean())


def ort_score(args, path):
    import onnxruntime as ort

    x = idx("t10k-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255
    y = idx("t10k-labels-idx1-ubyte.gz")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: (x - args.mean) / args.std})[0]
    return 100.0 * float((out.reshape(len(y), -1).argmax(1) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mean", type=float, default=0.1307)
    parser.add_argument("--std", type=float, default=0.3081)
    parser.add_argument("--onnx", default=None, help="an MNIST ONNX model: no training")
    parser.add_argument("--out", default="/tmp/onnx_mnist")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reference = None
    if args.onnx is None:
        import torch

        model = train(args)
        reference = torch_score(args, model)
        path = out / "mnist_cnn.onnx"
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), opset_version=args.opset,
                          input_names=["input"], output_names=["logits"], dynamo=False,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    else:
        path = Path(args.onnx).resolve()
    import onnx

    output = onnx.load(str(path)).graph.output[0].name  # the last node: the target
    ini = out / "mnist_onnx.ini"
    ini.write_text(INI.format(mean=args.mean, std=args.std, file=path, output=output))
    runtime = ort_score(args, path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.time()
    run = subprocess.run([sys.executable, "-m", "n2d2py", str(ini), "-test", "-o",
                          str(out / "run")], capture_output=True, text=True, env=env, cwd=out)
    if run.returncode:
        sys.exit(run.stderr)
    ours = float(re.findall(r"Final recognition rate: ([\d.]+)%", run.stdout)[-1])
    print(f"INI: {ini}  (n2d2py -test: {time.time() - start:.0f} s)")
    if reference is not None:
        print(f"PyTorch          : {reference:.2f} %")
    print(f"onnxruntime      : {runtime:.2f} %")
    print(f"n2d2py (Type=ONNX): {ours:.2f} %")
    base = reference if reference is not None else runtime
    print(f"difference       : {ours - base:+.2f} points ({'within' if abs(ours - base) <= 0.05 else 'OUTSIDE'} 0.05)")


if __name__ == "__main__":
    main()
