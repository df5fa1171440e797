"""Learning-rate policies (spec §3.6): ``Solvers.LearningRatePolicy=`` entries of LR_POLICIES.

Each is f(base_lr, n, stimuli_per_update, p) -> lr: n = updates done so far,
stimuli_per_update = B·IterationSize, p = the solver (attributes lr_decay k, step_size, power,
max_iterations, warm_up_duration, warm_up_lr_frac, min_decay). Step t =
floor(n·B·IterationSize / StepSize). Every solver applies them (solvers.Solver).
"""

import math
from typing import Protocol

from n2d2py.registry import LR_POLICIES


def lr_step(n, stimuli_per_update, p):
    """The step index t = floor(n·B·IterationSize / LearningRateStepSize)."""
    return (n * stimuli_per_update) // p.step_size


class LRPolicy(Protocol):
    """What every ``LearningRatePolicy=`` entry is: ``f(base_lr, n, stimuli_per_update,
    solver) -> lr``, with ``step_based`` True when it moves by steps of
    ``LearningRateStepSize`` stimuli (a "Learning rate after ..." line is printed then)."""

    step_based: bool

    def __call__(self, base, n, stimuli_per_update, solver) -> float: ...


def _policy(name, step_based=False):
    def deco(fn):
        fn.step_based = step_based
        return LR_POLICIES.register(name)(fn)

    return deco


@_policy("None")
def constant_lr(base, n, spu, p):
    # α = α₀
    return base


@_policy("StepDecay", step_based=True)
def step_decay(base, n, spu, p):
    # α = α₀ · k^t
    return base * p.lr_decay ** lr_step(n, spu, p)


@_policy("ExponentialDecay", step_based=True)
def exponential_decay(base, n, spu, p):
    # α = α₀ · e^(−k·t)
    return base * math.exp(-p.lr_decay * lr_step(n, spu, p))


@_policy("InvTDecay", step_based=True)
def inv_t_decay(base, n, spu, p):
    # α = α₀ / (1 + k·t)
    return base / (1.0 + p.lr_decay * lr_step(n, spu, p))


@_policy("PolyDecay")
def poly_decay(base, n, spu, p):
    # α = α₀ · (1 − n/MaxIterations)^Power
    return base * (1.0 - n / p.max_iterations) ** p.power


@_policy("InvDecay")
def inv_decay(base, n, spu, p):
    # α = α₀ · (1 + k·n)^(−Power)
    return base * (1.0 + p.lr_decay * n) ** (-p.power)


@_policy("CosineDecay", step_based=True)
def cosine_decay(base, n, spu, p):
    # W = WarmUpDuration, f = WarmUpLRFrac, m = MinDecay, M = MaxIterations:
    # t < W: α = α₀·((1−f)·t/W + f); else α = α₀·max(0, (1−m)·½(1 + cos(π·(t−W)/(M−W))) + m),
    # the progress (t−W)/(M−W) held at 1 once reached (no second rise of the cosine).
    t = lr_step(n, spu, p)
    w = p.warm_up_duration
    if t < w:
        return base * ((1.0 - p.warm_up_lr_frac) * t / w + p.warm_up_lr_frac)
    progress = min(1.0, (t - w) / (p.max_iterations - w))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return base * max(0.0, (1.0 - p.min_decay) * cosine + p.min_decay)
