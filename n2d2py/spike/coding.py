"""Input coding: stimulus values → spike trains (spec §6.3), keyed by ``StimulusType=``.

Each input value v (MNIST pixels are in [0, 1]) becomes the spike train of one input node;
d = 1 − |v| is its "delay", negative values give negative spikes. Over the window [0, end):

- SingleBurst: one spike at d·end.
- Periodic: mean period T = 1 / (1/PeriodMeanMin + (1/PeriodMeanMax − 1/PeriodMeanMin)·d)
  (frequency linear in |v|); each interval ~ Normal(T, T·PeriodRelStdDev).
- JitteredPeriodic: the same, the first interval multiplied by U(0, 1) (a random phase).
- Poissonian: intervals ~ Exponential(mean T).
- Linear: period 1 / (|v|·MaxFrequency) (MaxFrequency in Hz), no spike for v = 0.

Intervals after the first are at least PeriodMin; times are rounded to the femtosecond;
a node with d > DiscardedLateStimuli never spikes.

Random draws come from a counter-based generator: the k-th draw of node n of stimulus i is a
hash of (seed, i, n, k). A train therefore does not depend on the order in which it is
generated: the production engine generates it lazily, spike by spike, while ``spike_train``
(tests, the reference engine, plots) generates it whole, and both get the same spikes.
"""

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from n2d2py.registry import STIMULI
from n2d2py.spike.time import MS, S, to_fs

# Coding kinds, as used by the compiled generator.
SINGLE_BURST, PERIODIC, JITTERED, POISSONIAN, LINEAR = range(5)
# Layout of the float64 parameter vector handed to the compiled code.
P_KIND, P_MIN, P_MEAN_MIN, P_MEAN_MAX, P_REL_STD, P_DISCARD, P_MAX_FREQ = range(7)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_U30, _U27, _U31, _U11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)


@dataclass(frozen=True)
class Coding:
    """Spike coding of the ``[env]`` config section; times in femtoseconds."""

    period_min: int = 11 * MS
    period_mean_min: int = 50 * MS
    period_mean_max: int = 12 * S
    rel_std: float = 0.1
    discard: float = 1.0
    max_frequency: float = 1e9  # Hz, Linear only
    kind = SINGLE_BURST

    @classmethod
    def from_section(cls, cfg):
        """The keys of spec §6.3 from the ``[env]`` ConfigSection view, checked."""
        d = cls()
        values = dict(
            period_min=_positive_time(cfg, "PeriodMin", d.period_min),
            period_mean_min=_positive_time(cfg, "PeriodMeanMin", d.period_mean_min),
            period_mean_max=_positive_time(cfg, "PeriodMeanMax", d.period_mean_max),
            rel_std=cfg.get_float("PeriodRelStdDev", d.rel_std),
            discard=cfg.get_float("DiscardedLateStimuli", d.discard),
            max_frequency=cfg.get_float("MaxFrequency", d.max_frequency),
        )
        if not values["period_mean_min"] < values["period_mean_max"]:
            raise cfg.error("PeriodMeanMin", "PeriodMeanMin must be smaller than PeriodMeanMax")
        if not values["period_min"] <= values["period_mean_min"]:
            raise cfg.error("PeriodMin", "PeriodMin must not exceed PeriodMeanMin")
        if values["rel_std"] < 0:
            raise cfg.error("PeriodRelStdDev", "must be ≥ 0")
        if not 0.0 <= values["discard"] <= 1.0:
            raise cfg.error("DiscardedLateStimuli", "must be in [0, 1]")
        if not values["max_frequency"] > 0:
            raise cfg.error("MaxFrequency", "must be > 0 (Hz)")
        return cls(**values)

    def params(self):
        """The float64 vector of P_* entries the compiled generator reads."""
        out = np.zeros(7)
        out[[P_KIND, P_MIN, P_MEAN_MIN, P_MEAN_MAX]] = (self.kind, self.period_min,
                                                         self.period_mean_min, self.period_mean_max)
        out[[P_REL_STD, P_DISCARD, P_MAX_FREQ]] = (self.rel_std, self.discard, self.max_frequency)
        return out

    def spike_train(self, values, end, seed=0, stimulus=0):
        """(times int64, nodes int64, signs int8) of one stimulus, sorted by (time, node)."""
        flat = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
        times, nodes, signs = _whole_train(self.params(), flat, end, seed, stimulus)
        order = np.lexsort((nodes, times))
        return times[order], nodes[order], signs[order]

    def __str__(self):
        return type(self).type_name


def _positive_time(cfg, key, default):
    value = cfg.get_float(key, default)
    if not value > 0:
        raise cfg.error(key, f"a period in femtoseconds must be > 0, got {value:g}")
    return to_fs(value)


@STIMULI.register("SingleBurst")
class SingleBurst(Coding):
    kind = SINGLE_BURST


@STIMULI.register("Periodic")
class Periodic(Coding):
    kind = PERIODIC


@STIMULI.register("JitteredPeriodic")
class JitteredPeriodic(Coding):
    kind = JITTERED


@STIMULI.register("Poissonian")
class Poissonian(Coding):
    kind = POISSONIAN


@STIMULI.register("Linear")
class Linear(Coding):
    kind = LINEAR


def from_config(cfg):
    """The coding named by ``StimulusType`` (default SingleBurst, as N2D2) in ``cfg``."""
    name = cfg.get_str("StimulusType", "SingleBurst")
    return STIMULI.get(name, where=cfg.prop("StimulusType")).from_section(cfg)


# -- compiled generator -------------------------------------------------------------------


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@njit(cache=True)
def uniform(seed, stimulus, node, counter):
    """A uniform number in [0, 1) for draw ``counter`` of ``node`` of ``stimulus``."""
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _mix(h + np.uint64(stimulus) + _GOLDEN)
    h = _mix(h + np.uint64(node) + _GOLDEN)
    h = _mix(h + np.uint64(counter) + _GOLDEN)
    return np.float64(h >> _U11) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def mean_period(params, value, end):
    """The node's mean interval in fs (SingleBurst: its spike time); −1: the node is silent."""
    d = 1.0 - min(abs(value), 1.0)
    kind = int(params[P_KIND])
    if d > params[P_DISCARD]:
        return -1.0
    if kind == SINGLE_BURST:
        return d * end
    if kind == LINEAR:
        return -1.0 if value == 0.0 else 1e15 / (abs(value) * params[P_MAX_FREQ])
    inv_min, inv_max = 1.0 / params[P_MEAN_MIN], 1.0 / params[P_MEAN_MAX]
    return 1.0 / (inv_min + (inv_max - inv_min) * d)


@njit(cache=True)
def _interval(params, period, seed, stimulus, node, k):
    """Interval k (k = 0: the first one) of a periodic or Poisson node, in fs (float)."""
    kind = int(params[P_KIND])
    if kind == POISSONIAN:
        dt = -period * math.log(1.0 - uniform(seed, stimulus, node, 2 * k + 1))
    elif kind == LINEAR or params[P_REL_STD] == 0.0:
        dt = period
    else:  # Box-Muller from two draws of this interval
        u1 = 1.0 - uniform(seed, stimulus, node, 2 * k + 1)
        u2 = uniform(seed, stimulus, node, 2 * k + 2)
        normal = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
        dt = period * (1.0 + params[P_REL_STD] * normal)
    if k == 0:
        if kind == JITTERED:
            dt *= uniform(seed, stimulus, node, 0)
        return max(dt, 0.0)
    return max(dt, params[P_MIN])


@njit(cache=True)
def first_spike(params, period, seed, stimulus, node, end):
    """Time of the node's first spike, or −1 when it has none before ``end``."""
    if period < 0.0:
        return -1
    if int(params[P_KIND]) == SINGLE_BURST:
        t = np.int64(math.floor(period + 0.5))
    else:
        t = np.int64(math.floor(_interval(params, period, seed, stimulus, node, 0) + 0.5))
    return t if t < end else -1


@njit(cache=True)
def next_spike(params, period, t, k, seed, stimulus, node, end):
    """Time of spike k (k ≥ 1) of the node, given spike k−1 at ``t``; −1 when past ``end``."""
    if int(params[P_KIND]) == SINGLE_BURST:
        return -1
    dt = _interval(params, period, seed, stimulus, node, k)
    t = t + np.int64(math.floor(dt + 0.5))
    return t if t < end else -1


@njit(cache=True)
def _whole_train(params, values, end, seed, stimulus):
    times, nodes, signs = [], [], []
    for node in range(values.size):
        period = mean_period(params, values[node], end)
        sign = -1 if values[node] < 0 else 1
        t = first_spike(params, period, seed, stimulus, node, end)
        k = 1
        while t >= 0:
            times.append(t)
            nodes.append(node)
            signs.append(sign)
            t = next_spike(params, period, t, k, seed, stimulus, node, end)
            k += 1
    return (np.array(times, dtype=np.int64), np.array(nodes, dtype=np.int64),
            np.array(signs, dtype=np.int8))
