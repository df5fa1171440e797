"""Edge learning on MNIST (issue #10): the table of BrainChip's tips (neurons per class → test
accuracy, time ratio) on the LeNet feature extractor, and the few-shot experiment on an extractor
that only ever learned the digits 0-4.

    n2d2py models/LeNet.ini -learn-epoch 10 -seed 1 -o runs/lenet          # extractor, 10 digits
    n2d2py models/LeNet_0-4.ini -learn-epoch 3 -seed 1 -o runs/lenet04      # extractor, 0-4 only
    python benchmarks/edge_mnist.py [--lenet DIR] [--lenet04 DIR] [--draws 5] [--shots 1,5,10,20,50]

Table: the EdgeFc layer of models/LeNet_Edge.ini (its NumWeights, LearningCompetition and
InputThreshold) learns the 60,000 learning images once per NeuronsPerClass value and is scored
on the 10,000 test images. Time ratio: (one-pass learning + test) relative to 300 neurons per
class, for the edge layer alone and with the extractor's forward pass included (shared by all).

Few-shot: the EdgeFc layer of models/LeNet_Edge_FewShot.ini, on the 0-4 extractor, learns all the
learning images of 0-4, then SHOTS random learning images of each of 5-9 (1, 5, 10, 20, 50); it is scored on the
test images of 5-9 and of 0-4 (10-way: every class competes), over DRAWS random draws of the shots.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NEURONS = (10, 20, 50, 100, 200, 300)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lenet", default=str(ROOT / "runs/lenet/weights_validation"))
    p.add_argument("--lenet04", default=str(ROOT / "runs/lenet04/weights_validation"))
    p.add_argument("--draws", type=int, default=5, help="random draws of the few shots [5]")
    p.add_argument("--shots", type=lambda t: [int(v) for v in t.split(",")], default=[1, 5, 10, 20, 50],
                   help="labelled images per new digit, comma-separated [1,5,10,20,50]")
    p.add_argument("--repeats", type=int, default=3, help="timings: best of N [3]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-table", action="store_true")
    p.add_argument("--skip-fewshot", action="store_true")
    return p.parse_args()


def extract(ini, weights_dir, seed):
    """(cell, {set: (bits, labels)}, seconds): every Learn and Test image through the frozen
    layers below the model's EdgeFc cell, binarised as the cell does."""
    from n2d2py import backend, network, weights
    from n2d2py.edge import features
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    doc = parse_file(ini, Diagnostics(stream=open(os.devnull, "w")))
    net = network.build(doc, backend.cpu(seed))
    net.initialize()
    cells = features.edge_cells(net)
    weights.load_weights([c for c in net.cells.values() if c not in cells], weights_dir)
    cell = cells[0]
    start = time.perf_counter()
    data = {s: features.collect(net, cell, s, np.arange(net.provider.size(s)), desc=s)
            for s in ("Learn", "Test")}
    return cell, data, time.perf_counter() - start


def timed(fn, repeats):
    """(result of the last call, best time over ``repeats`` calls)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def table(args):
    from n2d2py.edge import EdgeLayer

    cell, data, extract_s = extract(ROOT / "models/LeNet_Edge.ini", args.lenet, args.seed)
    (x, y), (xt, yt) = data["Learn"], data["Test"]
    base = cell.layer
    order = np.random.default_rng(args.seed).permutation(len(x))
    x, y = x[order], y[order]
    print(f"Extractor {args.lenet} up to {','.join(p.name for p in cell.inputs)}, spikes: "
          f"{cell.input_threshold:g} < activation; median {np.median(x.sum(1)):g} spikes of "
          f"{x.shape[1]}; NumWeights={base.num_weights}, "
          f"LearningCompetition={base.learning_competition:g}")
    print(f"Forward pass of the extractor over {len(x) + len(xt)} images: {extract_s:.1f} s")
    rows = []
    for npc in NEURONS:
        def learn():
            layer = EdgeLayer(x.shape[1], 10, base.num_weights, npc, base.learning_competition,
                              seed=args.seed)
            layer.fit(x, y)
            return layer
        layer, fit_s = timed(learn, args.repeats)
        pred, test_s = timed(lambda: layer.predict(xt), args.repeats)
        rows.append((npc, float((pred == yt).mean()), fit_s, test_s, int(layer.learned.sum())))
    ref = rows[-1][2] + rows[-1][3]
    print("\n| Nb. neurons | Accuracy | Time ratio | Time ratio (with extractor) | learn 60,000 | "
          "test 10,000 | neurons learned |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for npc, acc, fit_s, test_s, learned in rows:
        print(f"| {npc} | {100 * acc:.2f} % | {(fit_s + test_s) / ref:.2f} | "
              f"{(fit_s + test_s + extract_s) / (ref + extract_s):.2f} | {fit_s:.3f} s | "
              f"{test_s:.3f} s | {learned}/{10 * npc} |")


def fewshot(args):
    cell, data, _ = extract(ROOT / "models/LeNet_Edge_FewShot.ini", args.lenet04, args.seed)
    (x, y), (xt, yt) = data["Learn"], data["Test"]
    base = cell.layer
    print(f"\nFew-shot: extractor {args.lenet04} (learned 0-4 only), EdgeFc on "
          f"{','.join(p.name for p in cell.inputs)} > {cell.input_threshold:g} "
          f"({x.shape[1]} inputs, median {np.median(x.sum(1)):g} spikes), "
          f"NumWeights={base.num_weights}, NeuronsPerClass={base.neurons_per_class}, "
          f"LearningCompetition={base.learning_competition:g}")
    print("| shots per new digit | 5-9 test (10-way) | 0-4 test (10-way) | 0-4 before 5-9 | "
          "5-9 among 5-9 (5-way) | all 10,000 |")
    print("|---:|---:|---:|---:|---:|---:|")
    for shots in args.shots:
        r = np.array([fewshot_draw(x, y, xt, yt, base, shots, args.seed, d)
                      for d in range(args.draws)])
        cells = " | ".join(f"{100 * r[:, k].mean():.2f} ± {100 * r[:, k].std():.2f} %"
                           for k in range(r.shape[1]))
        print(f"| {shots} | {cells} |")
    print(f"(mean ± std over {args.draws} random draws of the shots)")


def fewshot_draw(x, y, xt, yt, base, shots, seed, draw):
    """Learn all 0-4 images, then ``shots`` random images of each of 5-9; the five scores."""
    from n2d2py.edge import EdgeLayer

    rng = np.random.default_rng([seed, draw])
    first = rng.permutation(np.nonzero(y < 5)[0])
    picked = rng.permutation(np.concatenate(
        [rng.permutation(np.nonzero(y == c)[0])[:shots] for c in range(5, 10)]))
    layer = EdgeLayer(x.shape[1], 10, base.num_weights, base.neurons_per_class,
                      base.learning_competition, seed=int(rng.integers(2**31)))
    layer.fit(x[first], y[first])
    new, old = yt >= 5, yt < 5
    before = float((layer.predict(xt[old]) == yt[old]).mean())
    layer.fit(x[picked], y[picked])
    pred = layer.predict(xt)
    scores = np.asarray(layer.class_scores(layer.forward(xt[new])))
    return (float((pred[new] == yt[new]).mean()), float((pred[old] == yt[old]).mean()), before,
            float((scores[:, 5:].argmax(1) + 5 == yt[new]).mean()), float((pred == yt).mean()))


def main():
    args = parse_args()
    sys.path.insert(0, str(ROOT))
    if not args.skip_table:
        table(args)
    if not args.skip_fewshot:
        fewshot(args)


if __name__ == "__main__":
    main()
