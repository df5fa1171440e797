"""The learning loop: batches → forward → targets → backward → solvers, with validation at
every log step, the best weights kept, and a resumable state written on Ctrl-C or SIGTERM."""

import math
import os
import signal
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from n2d2py import atomic, parallel, weights
from n2d2py.errors import N2D2PyError
from n2d2py.evaluation import evaluate, print_metrics, wait_plots, write_plots

STATE = "net_state"
BEST_STATE = "net_state_validation"


@dataclass
class Progress:
    """Where learning stands; saved with the checkpoint so that a resumed run continues."""

    epoch: int = 0  # completed epochs (or 0 for -learn N)
    batch: int = 0  # completed batches of the current epoch / -learn stream
    seen: int = 0  # stimuli learned so far
    next_log: int = 0  # stimuli count of the next log step
    best: float = -1.0
    best_step: int = 0
    stale: int = 0  # validations without improvement (-stop-valid)
    epoch_rng: dict = field(default_factory=dict)  # shuffle RNG state at the epoch's start


class _StopRequest:
    """Ctrl-C or SIGTERM asks the loop to stop at the next batch boundary (so the state
    saved is never half-updated); a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True


def learn(net, opts, out_dir, progress=None):
    """Learn as ``opts`` says (-learn N or -learn-epoch N), validating every log step."""
    provider = net.provider
    has_validation = provider.size("Validation") > 0
    progress = progress or Progress()
    shuffle_rng = np.random.default_rng()
    if progress.epoch_rng:  # resuming: replay the interrupted epoch's shuffle
        weights.set_rng_state(shuffle_rng, progress.epoch_rng)
    else:
        shuffle_rng = np.random.default_rng(net.device.rng.integers(2**63))
    log_every = _log_interval(opts, provider)
    if progress.next_log == 0:
        progress.next_log = log_every
    total = opts.learn_epoch * provider.epoch_size if opts.learn_epoch else opts.learn
    if not opts.learn_epoch:  # the stream's indices are drawn at once: 8 bytes a stimulus
        from n2d2py import limits

        limits.check_allocation(f"-learn {total:,}", total * 8)
    for _, _, target in net.targets:
        target.window = opts.ws
    from n2d2py import run_folder

    if parallel.writes(net.device):  # under mpiexec rank 0 alone writes the run folder
        run_folder.defer(out_dir, lambda: write_schedule(net, out_dir,
                                                         math.ceil(total / provider.batch_size)))
    bar = tqdm(total=total, initial=progress.seen, unit="img", desc="Learning", dynamic_ncols=True,
               mininterval=0.5, disable=None)
    try:
        return _learn_loop(net, opts, out_dir, progress, bar, shuffle_rng, log_every, total,
                           has_validation)
    finally:
        wait_plots()  # the last log step's figures are on disk when learn() returns


def _learn_loop(net, opts, out_dir, progress, bar, shuffle_rng, log_every, total, has_validation):
    provider = net.provider
    rate_line = None  # the latest "Learning rate after ..." line, printed at the next log step
    with _StopRequest() as stop, bar:
        while progress.seen < total:
            progress.epoch_rng = weights.rng_state(shuffle_rng)
            if opts.learn_epoch:
                stream = provider.batches("Learn", rng=shuffle_rng, shuffle=True)
            else:  # -learn N: one stream of N stimuli drawn with replacement
                stream = provider.random_batches(total, shuffle_rng)
            for index, (x, labels, ids) in enumerate(stream):
                if index < progress.batch:
                    continue  # resuming inside an epoch: these batches were learned already
                with np.errstate(over="ignore", invalid="ignore"):  # a NaN loss is reported below
                    loss, changed = _step(net, x, labels, progress.seen, ids, stop)
                if not math.isfinite(loss):
                    raise _diverged(out_dir, progress, f"the loss became {loss} after "
                                    f"{progress.seen + len(labels)} stimuli")
                rate_line = changed or rate_line
                progress.batch += 1
                progress.seen += len(labels)
                bar.update(len(labels))
                bar.set_postfix(success=f"{_window_success(net):.2%}", loss=f"{loss:.4f}", refresh=False)
                if progress.seen >= progress.next_log or progress.seen >= total:
                    bar.clear()
                    if rate_line:  # N2D2 prints it at each change; once per log step is enough
                        print(rate_line)
                        rate_line = None
                    _log_step(net, opts, out_dir, progress, has_validation)
                    progress.next_log += log_every
                    if opts.stop_valid and progress.stale >= opts.stop_valid:
                        print(f"Stopping: {progress.stale} validations without improvement (-stop-valid)")
                        return progress
                if stop.requested:
                    bar.close()
                    _save_on_stop(net, out_dir, progress)
                if progress.seen >= total:
                    break
            else:
                progress.epoch += 1
                progress.batch = 0
    return progress


def _diverged(out_dir, progress, what):
    """The divergence error, naming the folders this run saved its last finite weights in."""
    from n2d2py import run_folder

    saved = [os.path.join(out_dir, name) + f"/ ({why})"
             for name, why in (("weights_validation", "best"), ("weights", "last log step"))
             if run_folder.saved_by_this_run(os.path.join(out_dir, name))]
    where = (f"the last good weights are in {' and '.join(saved)}" if saved else
             "no weights were saved by this run before it")
    return N2D2PyError(f"learning diverged (lower the learning rate?): {what}; {where}")


def _all_finite(net):
    return all(bool(net.device.xp.isfinite(p.data).all()) for p in net.params())


def _save_on_stop(net, out_dir, progress):
    from n2d2py import run_folder

    path = os.path.join(out_dir, STATE)
    if parallel.writes(net.device):
        run_folder.first_save(out_dir)
        save_checkpoint(net, path, progress)
    print(f"\nInterrupted after {progress.seen} stimuli; state saved in {path}/ "
          f"(resume with: -l {path})")
    raise KeyboardInterrupt


def _log_interval(opts, provider):
    if opts.log is not None:
        return opts.log
    if opts.learn_epoch:
        return opts.log_epoch * provider.epoch_size
    return 1000  # N2D2's -log default


def _step(net, x, labels, seen, ids=None, stop=None):
    """One batch: forward, loss gradients of every target, backward, solver updates. Returns
    the loss and the solver's "Learning rate after ..." line when the rate's step changed.

    Under mpiexec the group computes this rank's slice and sums the gradients of the whole
    batch over the ranks in one all-reduce, which also carries every rank's stop request
    (``stop.requested`` becomes true on all ranks at the same batch)."""
    group = parallel.group_of(net.device)
    if group is None:
        grads, losses = net.loss_grads(net.forward(x, train=True), labels, "learning", ids)
        loss = sum(losses)
    else:
        loss, stop_any = group.learn_batch(net, x, labels, ids, stop is not None and stop.requested)
        if stop is not None:
            stop.requested = stop_any
    if not math.isfinite(loss):
        return loss, None  # the loop stops with the folder that holds the last good weights
    if group is None:
        net.backward(grads)
    batch_size = len(labels)
    params = net.params()
    for param in params:
        if param.solver.update(param, batch_size):
            param.grad[...] = 0
    return loss, (params[0].solver.message if params else None)


def _window_success(net):
    return net.targets[0][2].scores("learning").window_success()


def _log_step(net, opts, out_dir, progress, has_validation):
    """Curves and confusion of learning; validation; best weights; state for resuming.
    Under mpiexec every rank validates its part and rank 0 alone writes."""
    from n2d2py import run_folder

    if not _all_finite(net):  # never save a diverged network, as best or at all
        raise _diverged(out_dir, progress, f"the weights hold non-finite values after "
                        f"{progress.seen} stimuli")
    writes = parallel.writes(net.device)
    if writes:
        run_folder.first_save(out_dir)  # the start-of-run files replace the previous run's now
    for _, _, target in net.targets:
        if writes:
            target.record_success(out_dir, "learning", progress.seen)
            target.write_logs(out_dir, "learning")
    if has_validation:
        score = evaluate(net, "Validation", "validation", opts, out_dir, desc="Validation")
        main = net.targets[0][2]
        for _, _, target in net.targets:
            value = target.scores("validation").average(opts.valid_metric)
            if writes:
                target.record_success(out_dir, "validation", progress.seen, value)
        if score > progress.best:
            progress.best, progress.best_step, progress.stale = score, progress.seen, 0
            print(f"+++ BEST validation score: {100 * score:.2f}% [{opts.valid_metric}]")
            if writes:
                weights.save_weights(net.cells, os.path.join(out_dir, "weights_validation"))
                save_checkpoint(net, os.path.join(out_dir, BEST_STATE), progress)
            print("'weights_validation' saved!")
        else:
            progress.stale += 1
            print(f"--- LOWER validation score: {100 * score:.2f}% [{opts.valid_metric}] "
                  f"(best was {100 * progress.best:.2f}%)")
        print_metrics(main.scores("validation"))
    if writes:
        weights.save_weights(net.cells, os.path.join(out_dir, "weights"))
        save_checkpoint(net, os.path.join(out_dir, STATE), progress)
        write_plots(net, out_dir, progress.best_step, progress.best, opts.valid_metric, background=True)
    for _, _, target in net.targets:
        target.scores("learning").clear()  # the next log step's confusion covers its own stretch


def write_schedule(net, out_dir, nb_batches):
    """``schedule/<cell>_<role>_schedule.log`` (update, lr) for every parameter, and the plot
    of the first one's schedule, ``schedule/learning_rate.png``."""
    from n2d2py import plots

    batch = net.provider.batch_size
    first = None
    for name, cell in net.cells.items():
        for param in cell.params():
            rates = param.solver.lr_schedule(batch, nb_batches)
            lines = "".join(f"{i} {lr:.8g}\n" for i, lr in enumerate(rates))
            path = os.path.join(out_dir, "schedule", f"{name}_{param.role.lower()}_schedule.log")
            atomic.atomic_write_text(path, "# update learning_rate\n" + lines)
            first = rates if first is None else first
    if first:
        plots.plot_lr_schedule(os.path.join(out_dir, "schedule", "learning_rate.png"), first, batch)


def save_checkpoint(net, directory, progress):
    params, solver_states = weights.collect_state(net.cells)
    meta = {
        "progress": progress.__dict__,
        "device_rng": weights.rng_state(net.device.rng),
        "seed": net.seed,
    }
    weights.save_state(directory, params, solver_states, meta)


def load_checkpoint(net, directory):
    """Restore weights, solver states and RNG from ``directory``; returns the Progress."""
    group = parallel.group_of(net.device)  # mpiexec: rank 0 reads, every rank restores
    load = weights.load_state
    params, solver_states, meta = group.on_root(load, directory) if group else load(directory)
    progress = _progress(meta, os.path.join(directory, "state.json"))
    weights.restore_state(net.cells, params, solver_states, where=directory)
    try:
        weights.set_rng_state(net.device.rng, meta["device_rng"])
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise N2D2PyError(f"checkpoint field device_rng is not a valid RNG state ({exc})",
                          os.path.join(directory, "state.json")) from None
    return progress


def _progress(meta, where):
    """The Progress of a checkpoint's metadata, every field checked (a hand-edited field is
    one line naming it, not a TypeError later)."""
    fields = meta.get("progress")
    if not isinstance(fields, dict):
        raise N2D2PyError("checkpoint field progress is missing or not an object", where)
    known = Progress.__dataclass_fields__
    for key, value in fields.items():
        if key not in known:
            raise N2D2PyError(f"checkpoint field progress.{key} is unknown", where)
        if key == "epoch_rng":
            ok = isinstance(value, dict)
        elif key == "best":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and (value == -1 or 0 <= value <= 1)
        else:
            ok = type(value) is int and 0 <= value < 2**62
        if not ok:
            raise N2D2PyError(f"checkpoint field progress.{key} holds {str(value)[:40]!r}, "
                              "not a valid value", where)
    return Progress(**fields)
