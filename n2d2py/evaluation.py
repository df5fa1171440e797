"""Scoring a set (validation during learning, the final test) and what it prints and plots."""

import os
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from n2d2py import parallel
from n2d2py.backend import array_module, to_host
from n2d2py.errors import N2D2PyError

SUMMARY_METRICS = ("Sensitivity", "Specificity", "Precision", "Accuracy", "F1Score", "Informedness")


def evaluate(net, db_set, score_set, opts, out_dir, desc, limit=None, index=None):
    """Run ``db_set`` ("Validation"/"Test") through the network without learning.

    Scores accumulate in each target's ``score_set`` ("validation"/"test") after a reset;
    returns the first target's class-averaged ``-valid-metric``. ``index``: that stimulus only.
    Under mpiexec each rank scores its range of the set and the counts are summed.
    """
    provider = net.provider
    group = parallel.group_of(net.device)
    total = provider.size(db_set) if limit is None or limit < 0 else min(limit, provider.size(db_set))
    total = total if index is None else 1
    for _, _, target in net.targets:
        target.scores(score_set).clear()
    lo, hi = group.share(total) if group else (0, total)
    with tqdm(total=hi - lo, unit="img", desc=desc, leave=False, dynamic_ncols=True, mininterval=0.5,
              disable=None) as bar:
        batches = provider.batches(db_set, limit=total) if index is None else [_one(net, db_set, index)]
        for x, labels, ids in batches:
            outputs = net.forward(x, train=False)
            for _, cell_name, target in net.targets:
                target.process(score_set, outputs[cell_name], labels, ids)
                if score_set == "test" and hasattr(target, "log_images"):  # per-pixel targets
                    target.log_images(out_dir, score_set, outputs[net.input_name], ids)
            bar.update(len(labels))
            bar.set_postfix(success=f"{net.targets[0][2].scores(score_set).success_rate():.2%}",
                            refresh=False)
    for _, _, target in net.targets:
        if group is not None:
            group.reduce_scores(target.scores(score_set))
        if parallel.writes(net.device):
            target.write_logs(out_dir, score_set)
    return net.targets[0][2].scores(score_set).average(opts.valid_metric)


def test(net, opts, out_dir):
    """The final test: prints N2D2's lines and writes the test logs; returns the rate."""
    evaluate(net, "Test", "test", opts, out_dir, desc="Testing", limit=opts.nb_test,
             index=getattr(opts, "test_index", None))
    rate = None
    for section, _, target in net.targets:
        scores = target.scores("test")
        if len(net.targets) > 1:
            print(f"[{section}]")
        if hasattr(target, "summary_lines"):  # TargetROIs: boxes, no recognition rate
            print("\n".join(target.summary_lines("test")))
            continue
        rate = scores.success_rate()
        print(f"Final recognition rate: {100 * rate:.2f}%    (error rate: {100 * (1 - rate):.2f}%)")
        print_metrics(scores)
        if parallel.writes(net.device):
            target.record_success(out_dir, "test", 0, rate)
    if parallel.writes(net.device):
        write_plots(net, out_dir, curves=False, sets=("test",))
    return rate


def _one(net, db_set, index):
    """(x, labels, ids) of stimulus ``index`` of ``db_set`` alone (-test-index)."""
    n = net.provider.size(db_set)
    if not 0 <= index < n:
        raise N2D2PyError(f"-test-index {index}: the {db_set} set has {n} stimuli (0 to {n - 1})")
    x, labels, ids = net.provider.read(db_set, [index], net.device.rng)
    return net.device.asarray(x), labels, ids


def print_metrics(scores):
    values = {m: 100 * scores.average(m) for m in SUMMARY_METRICS}
    print("    Sensitivity: {Sensitivity:.2f}% / Specificity: {Specificity:.2f}% / "
          "Precision: {Precision:.2f}%".format(**values))
    print("    Accuracy: {Accuracy:.2f}% / F1-score: {F1Score:.2f}% / "
          "Informedness: {Informedness:.2f}%".format(**values))


def write_plots(net, out_dir, best_step=None, best=None, metric="Sensitivity", curves=True,
                sets=("learning", "validation"), background=False):
    """Success curves and confusion matrices of every target, as PNG beside their .dat files.

    ``background``: draw them on the plotting thread from a snapshot of the data, so that
    learning goes on meanwhile (a log step waits for the previous one's figures first);
    ``wait_plots()`` waits for the last ones and raises what drawing raised."""
    jobs = _plot_jobs(net, out_dir, best_step, best, metric, curves, sets)
    if not background:
        _draw(jobs)
        return
    global _pending
    wait_plots()
    _pending = _PLOTTER.submit(_draw, jobs)


# One plotting thread (matplotlib's object API on Agg, no pyplot state, is safe off the main
# thread); the figures of a log step cost about a second that learning need not wait for.
_PLOTTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plots")
_pending = None  # its current job


def wait_plots():
    global _pending
    job, _pending = _pending, None
    if job is not None:
        job.result()


def _draw(jobs):
    for function, args in jobs:
        function(*args)


def _plot_jobs(net, out_dir, best_step, best, metric, curves, sets):
    """(plot function, arguments) pairs holding copies of everything they draw."""
    from n2d2py import plots

    jobs = []
    if curves:
        by_layer = {name: to_host(_connected(cell.params()[0]), copy=True)
                    for name, cell in net.cells.items() if cell.params()}
        jobs.append((plots.plot_weights_histograms, (os.path.join(out_dir, "weights_histograms.png"), by_layer)))
    for _, _, target in net.targets:
        folder = target.folder(out_dir)
        learning = list(target.scores("learning").history)
        validation = list(target.scores("validation").history)
        best_point = (best_step, best) if best is not None and best >= 0 else None
        if curves and learning:
            jobs.append((plots.plot_success, (os.path.join(folder, "Success_learning.png"), learning)))
        if curves and validation:
            jobs.append((plots.plot_success, (os.path.join(folder, "Success_validation.png"), learning,
                                              validation, best_point, metric)))
        names = list(target.matrix_names())  # a masked target's matrix adds "∅"
        for set_name in sets:
            scores = target.sets.get(set_name)
            if scores is not None and scores.matrix.sum() > 0:
                jobs.append((plots.plot_confusion, (os.path.join(folder, f"ConfusionMatrix_{set_name}.png"),
                                                    scores.matrix.copy(), names, f"{target.name}: {set_name}")))
    return jobs


def _connected(param):
    """The weights a mapping connects (unmapped ones are structural zeros, not learned)."""
    if param.mask is None:
        return param.data
    xp = array_module(param.data)
    return param.data[xp.broadcast_to(param.mask, param.shape).astype(bool)]
