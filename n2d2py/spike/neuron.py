"""The integrate-and-fire neuron of spike Conv/Fc cells (spec §6.5): frozen parameters and
the pure update rules, written once for scalars and shared by both engines.

The rules are numba-compiled scalar functions: the reference engine calls them from Python,
the production engine inlines them in its compiled event loop, so that both integrate with
the same arithmetic. No array math here (spike/layers.py and the engines own the arrays).
"""

import math
from dataclasses import dataclass

from numba import njit

from n2d2py.spike.time import PS, to_fs

LEAK_FLOOR = 1e-20  # a decay factor below this sets the membrane to 0 (spec §6.5)


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of one spike Conv/Fc cell, all times in femtoseconds."""

    threshold: float = 1.0
    bipolar: bool = True  # N2D2's default for Spike cells; the transcoder picks it from the activation
    leak: int = 0  # time constant τ of the exponential leak; 0: no leak
    refractory: int = 0
    incoming_delay: int = PS  # added to the 1 fs hop of every spike reaching this cell
    terminate_delta: int = 0  # output layer: stop once best − second best ≥ this (0: off)
    terminate_max: int = 0  # output layer: stop once the best count ≥ this (0: off)

    @classmethod
    def from_section(cls, cfg, bipolar_default):
        """Read the spike keys from the cell's ConfigSection view ``cfg`` (spec §1.9)."""
        threshold = cfg.get_float("Threshold", 1.0)
        if not threshold > 0:
            raise cfg.error("Threshold", f"must be > 0, got {threshold:g}")
        leak = _time(cfg, "Leak", 0)
        refractory = _time(cfg, "Refractory", 0)
        delay = _delay(cfg)
        cfg.get_str("WeightsRelInit", None)  # initial weights of Spike models: transcoding sets them
        return cls(
            threshold=threshold,
            bipolar=cfg.get_bool("BipolarThreshold", bipolar_default),
            leak=leak,
            refractory=refractory,
            incoming_delay=delay,
            terminate_delta=cfg.get_uint("TerminateDelta", 0),
            terminate_max=cfg.get_uint("TerminateMax", 0),
        )

    @property
    def terminates(self):
        return self.terminate_delta > 0 or self.terminate_max > 0


def _time(cfg, key, default):
    value = cfg.get_float(key, default)
    if value < 0:
        raise cfg.error(key, f"a duration in femtoseconds must be ≥ 0, got {value:g}")
    return to_fs(value)


def _delay(cfg):
    """IncomingDelay: one value in fs. N2D2 draws each synapse's delay from a spread (default
    "1 ps; 100 fs"); per-synapse delays are not supported, so the default is 1 ps flat."""
    spread = cfg.get_spread("IncomingDelay", None)
    if spread is None:
        return PS
    mean, rel, absolute = spread
    if (rel or 0.0) != 0.0 or (absolute or 0.0) != 0.0:
        raise cfg.error("IncomingDelay", "a spread of per-synapse delays is not supported: "
                        "give one value in femtoseconds (e.g. IncomingDelay=0)")
    if mean < 0:
        raise cfg.error("IncomingDelay", f"must be ≥ 0, got {mean:g}")
    return to_fs(mean)


@njit(cache=True)
def leak(u, t_last, t, tau):
    """Membrane ``u`` last updated at ``t_last`` decayed to time ``t`` (τ = 0: no leak)."""
    if tau <= 0 or t <= t_last:
        return u
    factor = math.exp(-(t - t_last) / tau)
    return u * factor if factor >= LEAK_FLOOR else 0.0


@njit(cache=True)
def integrate_fire(u, weight, sign, threshold, bipolar, t, refractory_end):
    """One input spike of ``sign`` (±1) through ``weight`` at time ``t``.

    Returns (new membrane, output sign: +1, -1 or 0). A spike resets by subtraction (the
    residue is kept); none is emitted before ``refractory_end``.
    """
    u = u + sign * weight
    if u >= threshold:
        if t >= refractory_end:
            return u - threshold, 1
    elif bipolar and -u >= threshold:
        if t >= refractory_end:
            return u + threshold, -1
    return u, 0
