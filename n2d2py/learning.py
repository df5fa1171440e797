"""The learning loop: batches → forward → targets → backward → solvers, with validation at
every log step, the best weights kept, and a resumable state written on Ctrl-C or SIGTERM."""

import math
import os
import signal
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from n2d2py import parallel, weights
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
    for _, _, target in net.targets:
        target.window = opts.ws
    if parallel.writes(net.device):  # under mpiexec rank 0 alone writes the run folder
        write_schedule(net, out_dir, math.ceil(total / provider.batch_size))
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


def _save_on_stop(net, out_dir, progress):
    path = os.path.join(out_dir, STATE)
    if parallel.writes(net.device):
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
        raise N2D2PyError(
            f"the loss became {loss} after {seen} stimuli: learning diverged (lower the learning "
            "rate?); the last good weights are in weights_validation/ (or weights/)"
        )
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
    writes = parallel.writes(net.device)
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
            weights.atomic_write_text(path, "# update learning_rate\n" + lines)
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
    weights.restore_state(net.cells, params, solver_states, where=directory)
    try:
        progress = Progress(**meta["progress"])
        weights.set_rng_state(net.device.rng, meta["device_rng"])
    except (KeyError, TypeError, ValueError) as exc:
        raise N2D2PyError(f"checkpoint metadata is incomplete ({exc})", directory) from None
    return progress
