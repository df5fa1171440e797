#!/usr/bin/env python3
"""Stimuli provider throughput, side by side across source trees (e.g. main and a branch).

    python benchmarks/provider_speed.py --trees /work/main .          # the classification path
    python benchmarks/provider_speed.py --composite /tmp/IMDB-WIKI    # + the composite path

Each run is a child process with PYTHONPATH set to one tree; runs alternate between trees
(``--runs`` each) so that load on the shared machine hits them alike. The classification
case iterates shuffled Learn batches of the shipped MNIST (BatchSize 256, a cached PadCrop to
32x32 and an on-the-fly random flip: the cache, the prefetch thread and the batch
transformations). ``--composite DIR`` also times IMDBWIKI.ini's data pipeline (gray,
keep-ratio rescale, pad-crop, on-the-fly pad-crop and random flip, label maps and ROIs) at
160x120 on an IMDB-WIKI folder written by tools/make_imdbwiki.py, in the first tree.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time, numpy as np
from n2d2py import backend
from n2d2py.data.provider import StimuliProvider
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES
import n2d2py.data
text, limit = sys.argv[1], int(sys.argv[2])
doc = parse_text(text, "bench.ini")
device = backend.cpu(1)
sec = Section(doc, ["database"])
db = DATABASES.get(sec.get_str("Type")).from_section(sec)
sp = StimuliProvider.from_section(Section(doc, ["sp"]), db, device).load(device.rng)
for _ in sp.batches("Learn", device.rng, shuffle=True, limit=1):
    pass  # builds the cache
start, n = time.perf_counter(), 0
for x, labels, ids in sp.batches("Learn", device.rng, shuffle=True, limit=limit):
    n += len(x)
print(json.dumps(n / (time.perf_counter() - start)))
"""

PLAIN = """[database]
Type=MNIST_IDX_Database
Validation=0.2
[sp]
SizeX=32
SizeY=32
BatchSize=256
[sp.Transformation-1]
Type=PadCropTransformation
Width=32
Height=32
[sp.OnTheFlyTransformation-1]
Type=FlipTransformation
RandomHorizontalFlip=1
ApplyTo=LearnOnly
"""

COMPOSITE = """[database]
Type=IMDBWIKI_Database
DataPath={root}
LabelPath={root}/imdb_metadata
Learn=0.9
Validation=0.05
DefaultLabel=background
[sp]
SizeX=160
SizeY=120
BatchSize=48
CompositeStimuli=1
[sp.Transformation-1]
Type=ChannelExtractionTransformation
CSChannel=Gray
[sp.Transformation-2]
Type=RescaleTransformation
Width=171
Height=130
KeepAspectRatio=1
[sp.Transformation-3]
Type=PadCropTransformation
Width=171
Height=130
[sp.OnTheFlyTransformation-1]
Type=PadCropTransformation
Width=160
Height=120
[sp.OnTheFlyTransformation-2]
Type=FlipTransformation
RandomHorizontalFlip=1
"""


def run(tree, text, limit):
    tree = Path(tree).resolve()  # also the working folder: "-c" puts it first on sys.path
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD + "\nassert n2d2py.__file__.startswith("
                          f"{str(tree)!r})", text, str(limit)], env=env, cwd=tree,
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{tree}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(name, rates):
    med = statistics.median(rates)
    print(f"  {name:<40} {med:>10,.0f} stimuli/s (runs {min(rates):,.0f}-{max(rates):,.0f})")
    return med


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", nargs="+", default=["."], help="source trees to compare")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20480, help="stimuli per run")
    parser.add_argument("--composite", help="IMDB-WIKI folder for the composite path")
    args = parser.parse_args()
    rates = {tree: [] for tree in args.trees}
    for _ in range(args.runs):
        for tree in args.trees:
            rates[tree].append(run(tree, PLAIN, args.limit))
    print("classification path (MNIST, batch 256, cached PadCrop + on-the-fly flip):")
    first = None
    for tree, values in rates.items():
        med = report(tree, values)
        first = first or med
        if len(rates) > 1:
            print(f"  {'':<40} {med / first:>10.2f}x the first tree")
    if args.composite:
        text = COMPOSITE.format(root=args.composite)
        values = [run(args.trees[-1], text, 960) for _ in range(args.runs)]
        print("composite path (IMDBWIKI.ini pipeline at 160x120, batch 48, label maps + ROIs):")
        report(args.trees[-1], values)


if __name__ == "__main__":
    main()
