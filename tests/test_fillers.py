"""Fillers (spec §3.5): distributions on large samples, fans, INI parameters, defaults.

Statistics use 200,000 draws: means within 0.01·scale and standard deviations within 1 %.
"""

import io
import math

import numpy as np
import pytest

from n2d2py import fillers
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text

N = (400, 500)


def section(body):
    doc = parse_text(f"[fc]\n{body}\n", "m.ini", Diagnostics(stream=io.StringIO()))
    return Section(doc, ["fc"])


def draw(filler, fan_in=50, fan_out=200, seed=0):
    values = filler.fill(N, fan_in, fan_out, np.random.default_rng(seed))
    assert values.dtype == np.float32 and values.shape == N
    return values.astype(np.float64)


def assert_stats(values, mean, std):
    assert abs(values.mean() - mean) < 0.01 * max(std, 1e-9) * 3 + 1e-9
    assert abs(values.std() - std) < 0.01 * std


def test_constant():
    assert (draw(fillers.ConstantFiller(0.25)) == 0.25).all()


def test_normal_and_uniform():
    assert_stats(draw(fillers.NormalFiller(0.5, 2.0)), 0.5, 2.0)
    values = draw(fillers.UniformFiller(-1.0, 3.0))
    assert values.min() >= -1 and values.max() <= 3
    assert_stats(values, 1.0, 4 / math.sqrt(12))


@pytest.mark.parametrize("norm, n", [("FanIn", 50), ("FanOut", 200), ("Average", 125)])
def test_he(norm, n):
    assert_stats(draw(fillers.HeFiller(norm)), 0.0, math.sqrt(2 / n))
    assert_stats(draw(fillers.HeFiller(norm, mean_norm=1.0, scaling=2.0)), 2.0 / n, 2 * math.sqrt(2 / n))


@pytest.mark.parametrize("norm, n", [("FanIn", 50), ("FanOut", 200), ("Average", 125)])
def test_xavier(norm, n):
    values = draw(fillers.XavierFiller(norm))
    bound = math.sqrt(3 / n)
    assert values.min() >= -bound and values.max() <= bound
    assert_stats(values, 0.0, bound / math.sqrt(3))
    assert_stats(draw(fillers.XavierFiller(norm, "Normal", 0.5)), 0.0, 0.5 * math.sqrt(1 / n))


def test_seeded():
    a, b = draw(fillers.HeFiller(), seed=4), draw(fillers.HeFiller(), seed=4)
    np.testing.assert_array_equal(a, b)


def test_make_filler_default_and_parameters():
    default = fillers.make_filler(section("Type=Fc"), "WeightsFiller")
    assert isinstance(default, fillers.NormalFiller) and (default.mean, default.std) == (0.0, 0.05)
    sec = section("WeightsFiller=XavierFiller\nWeightsFiller.VarianceNorm=Average\n"
                  "WeightsFiller.Distribution=Normal\nWeightsFiller.Scaling=2\n"
                  "BiasFiller=ConstantFiller\nBiasFiller.Value=0.1")
    w = fillers.make_filler(sec, "WeightsFiller")
    assert (w.variance_norm, w.distribution, w.scaling) == ("Average", "Normal", 2.0)
    assert fillers.make_filler(sec, "BiasFiller").value == 0.1
    sec = section("WeightsFiller=NormalFiller\nWeightsFiller.Mean=1\nWeightsFiller.StdDev=3\n"
                  "BiasFiller=UniformFiller\nBiasFiller.Min=-2\nBiasFiller.Max=2")
    n = fillers.make_filler(sec, "WeightsFiller")
    assert (n.mean, n.std) == (1.0, 3.0)
    u = fillers.make_filler(sec, "BiasFiller")
    assert (u.low, u.high) == (-2.0, 2.0)
    assert fillers.make_filler(section("WeightsFiller=HeFiller"), "WeightsFiller").variance_norm == "FanIn"


def test_errors_are_located():
    with pytest.raises(N2D2PyError, match=r"m.ini:2: \[fc\] WeightsFiller: unknown filler 'He'"):
        fillers.make_filler(section("WeightsFiller=He"), "WeightsFiller")
    with pytest.raises(N2D2PyError, match=r"\[fc\] WeightsFiller.Value: required key is missing"):
        fillers.make_filler(section("WeightsFiller=ConstantFiller"), "WeightsFiller")
    with pytest.raises(N2D2PyError, match="expected one of FanIn, Average, FanOut"):
        fillers.make_filler(section("WeightsFiller=HeFiller\nWeightsFiller.VarianceNorm=FanAvg"),
                            "WeightsFiller")
    with pytest.raises(N2D2PyError, match="Max .* is below Min"):
        fillers.make_filler(section("WeightsFiller=UniformFiller\nWeightsFiller.Max=-1"), "WeightsFiller")
