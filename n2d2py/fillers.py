"""Initial values of parameters (spec §3.5): ``WeightsFiller=…`` with ``WeightsFiller.*`` keys.

A filler draws on the host from the run's numpy Generator (seeded by ``-seed``) and returns a
float32 numpy array; ``Param.initialize`` moves it to the device. ``n`` below is the fan
chosen by ``VarianceNorm``: fan-in, (fan-in + fan-out)/2 or fan-out.
"""

import math

import numpy as np

from n2d2py.registry import FILLERS

VARIANCE_NORMS = ("FanIn", "Average", "FanOut")


def make_filler(sec, key, default_mean=0.0, default_std=0.05):
    """The filler named by ``key`` ("WeightsFiller"/"BiasFiller") in ``sec``, with its
    ``key.*`` parameters; NormalFiller(default_mean, default_std) when the key is absent."""
    name, view = sec.sub(key, None)
    if name is None:
        return NormalFiller(default_mean, default_std)
    return FILLERS.get(name, where=sec.prop(key)).from_section(view)


def _fan(variance_norm, fan_in, fan_out):
    if variance_norm == "FanIn":
        return fan_in
    if variance_norm == "FanOut":
        return fan_out
    return (fan_in + fan_out) / 2.0


class Filler:
    """Base: ``fill(shape, fan_in, fan_out, rng)`` → float32 numpy array."""

    def fill(self, shape, fan_in, fan_out, rng):
        return np.asarray(self._draw(tuple(shape), fan_in, fan_out, rng), dtype=np.float32)

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


@FILLERS.register("ConstantFiller")
class ConstantFiller(Filler):
    """Every value = Value."""

    def __init__(self, value):
        self.value = value

    @classmethod
    def from_section(cls, view):
        return cls(view.get_float("Value"))

    def _draw(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)


@FILLERS.register("NormalFiller")
class NormalFiller(Filler):
    """N(Mean, StdDev)."""

    def __init__(self, mean=0.0, std=1.0):
        self.mean = mean
        self.std = std

    @classmethod
    def from_section(cls, view):
        return cls(view.get_float("Mean", 0.0), _non_negative(view, "StdDev", 1.0))

    def _draw(self, shape, fan_in, fan_out, rng):
        return rng.normal(self.mean, self.std, shape)


@FILLERS.register("UniformFiller")
class UniformFiller(Filler):
    """U(Min, Max)."""

    def __init__(self, low=0.0, high=1.0):
        self.low = low
        self.high = high

    @classmethod
    def from_section(cls, view):
        low, high = view.get_float("Min", 0.0), view.get_float("Max", 1.0)
        if high < low:
            raise view.error("Max", f"Max ({high}) is below Min ({low})")
        return cls(low, high)

    def _draw(self, shape, fan_in, fan_out, rng):
        return rng.uniform(self.low, self.high, shape)


@FILLERS.register("HeFiller")
class HeFiller(Filler):
    """Scaling · N(MeanNorm/n, sqrt(2/n))."""

    def __init__(self, variance_norm="FanIn", mean_norm=0.0, scaling=1.0):
        self.variance_norm = variance_norm
        self.mean_norm = mean_norm
        self.scaling = scaling

    @classmethod
    def from_section(cls, view):
        return cls(
            view.get_enum("VarianceNorm", VARIANCE_NORMS, "FanIn"),
            view.get_float("MeanNorm", 0.0),
            view.get_float("Scaling", 1.0),
        )

    def _draw(self, shape, fan_in, fan_out, rng):
        n = _fan(self.variance_norm, fan_in, fan_out)
        return self.scaling * rng.normal(self.mean_norm / n, math.sqrt(2.0 / n), shape)


@FILLERS.register("XavierFiller")
class XavierFiller(Filler):
    """Scaling · U(±sqrt(3/n)) (Distribution=Uniform) or Scaling · N(0, sqrt(1/n)) (Normal)."""

    def __init__(self, variance_norm="FanIn", distribution="Uniform", scaling=1.0):
        self.variance_norm = variance_norm
        self.distribution = distribution
        self.scaling = scaling

    @classmethod
    def from_section(cls, view):
        return cls(
            view.get_enum("VarianceNorm", VARIANCE_NORMS, "FanIn"),
            view.get_enum("Distribution", ("Uniform", "Normal"), "Uniform"),
            view.get_float("Scaling", 1.0),
        )

    def _draw(self, shape, fan_in, fan_out, rng):
        n = _fan(self.variance_norm, fan_in, fan_out)
        if self.distribution == "Normal":
            return self.scaling * rng.normal(0.0, math.sqrt(1.0 / n), shape)
        bound = math.sqrt(3.0 / n)
        return self.scaling * rng.uniform(-bound, bound, shape)


def _non_negative(view, key, default):
    value = view.get_float(key, default)
    if value < 0:
        raise view.error(key, f"must not be negative, got {value}")
    return value
