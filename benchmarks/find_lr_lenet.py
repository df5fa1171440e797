"""Does -find-lr's suggestion train? For each seed: `-find-lr N` on models/LeNet.ini, then
`-learn-epoch 1` from the same seed with `WeightsSolver.LearningRate` set to the suggestion,
and the best validation score. Prints one row per seed and a summary.

    python benchmarks/find_lr_lenet.py                 # seeds 1-7, N = 10000
    python benchmarks/find_lr_lenet.py --seeds 1-3 -n 40000
    python benchmarks/find_lr_lenet.py --seeds 1-8 --rates 0.05,0.11   # fixed rates, no sweep

The learning runs go through the CLI exactly as a user would type them; run folders are made
under a temporary directory and removed.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = os.path.join(ROOT, "models", "LeNet.ini")


def cli(*args):
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "n2d2py", *args], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"n2d2py {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - started


def with_rate(path, rate, out):
    text = open(path).read()
    text, count = re.subn(r"(?m)^WeightsSolver\.LearningRate=.*$",
                          f"WeightsSolver.LearningRate={rate:.6g}", text)
    if count != 1:
        sys.exit(f"{path}: expected one WeightsSolver.LearningRate line, found {count}")
    with open(out, "w") as f:
        f.write(text)


def one_epoch(path, rate, seed, run):
    """Best validation score of `-learn-epoch 1 -seed SEED` with the INI's rate set to RATE."""
    ini = os.path.join(os.path.dirname(os.path.abspath(path)), f".find_lr_bench_{seed}.ini")
    try:
        with_rate(path, rate, ini)
        out, _ = cli(ini, "-learn-epoch", "1", "-seed", str(seed), "-o", run)
    finally:
        os.remove(ini)
    return float(re.findall(r"BEST validation score: ([\d.]+)%", out)[-1])


def fixed_rates(args):
    """One row per rate: the one-epoch validation score of each seed, and how many reach 97 %."""
    print(f"{'rate':>6}  validation after one epoch, seeds {args.seeds[0]}-{args.seeds[-1]}")
    with tempfile.TemporaryDirectory() as tmp:
        for rate in args.rates:
            scores = [one_epoch(args.ini, rate, seed, os.path.join(tmp, f"{rate}_{seed}"))
                      for seed in args.seeds]
            good = sum(v >= 97.0 for v in scores)
            print(f"{rate:6.3g}  {' '.join(f'{v:.2f}' for v in scores)}  ({good}/{len(scores)} >= 97 %)",
                  flush=True)


def seeds_arg(text):
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seeds_arg, default=seeds_arg("1-7"))
    parser.add_argument("-n", type=int, default=10000, help="-find-lr N (stimuli)")
    parser.add_argument("--ini", default=LENET, help="model [models/LeNet.ini]")
    parser.add_argument("--rates", type=lambda t: [float(v) for v in t.split(",")],
                        help="skip -find-lr: one epoch at each of these fixed rates")
    args = parser.parse_args()
    if args.rates:
        return fixed_rates(args)
    rows = []
    print(f"{'seed':>4} {'suggested':>10} {'find-lr s':>9} {'1-epoch valid':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = os.path.join(tmp, str(seed))
            out, took = cli(args.ini, "-find-lr", str(args.n), "-seed", str(seed), "-o", run)
            found = re.search(r"Suggested learning rate for \S+: (\S+)", out)
            if not found:
                print(f"{seed:>4} {'none':>10} {took:9.1f}")
                continue
            rate = float(found.group(1))
            best = one_epoch(args.ini, rate, seed, run)
            rows.append((seed, rate, best))
            print(f"{seed:>4} {rate:10.4g} {took:9.1f} {best:12.2f}%", flush=True)
    if rows:
        good = sum(best >= 97.0 for _, _, best in rows)
        rates = sorted(rate for _, rate, _ in rows)
        print(f"{good}/{len(rows)} seeds reach >= 97 % validation after one epoch; "
              f"suggestions {rates[0]:.3g} - {rates[-1]:.3g} (median {rates[len(rates) // 2]:.3g})")


if __name__ == "__main__":
    main()
