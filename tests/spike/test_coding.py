"""Input codings (spec §6.3): spike times and counts against their formulas; INI keys."""

import io

import numpy as np
import pytest

from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.spike import coding as cd
from n2d2py.spike.time import MS, NS, S, US

P = dict(period_min=1 * NS, period_mean_min=10 * NS, period_mean_max=100 * US)


def mean_period(v, pmin=10 * NS, pmax=100 * US):
    """Frequency linear in |v|: 1/T = 1/pmax + (1/pmin − 1/pmax)·|v|."""
    return 1.0 / (1.0 / pmin + (1.0 / pmax - 1.0 / pmin) * (1.0 - abs(v)))


def test_single_burst_one_spike_at_the_delay_of_the_value():
    values = np.array([1.0, 0.75, -0.5, 0.0, 0.2])
    times, nodes, signs = cd.SingleBurst(**P).spike_train(values, US)
    assert nodes.tolist() == [0, 1, 2, 4]  # v = 0: delay 1 = the window's end, no spike
    assert times.tolist() == [0, 250 * NS, 500 * NS, 800 * NS]
    assert signs.tolist() == [1, 1, -1, 1]


def test_discarded_late_stimuli_silences_small_values():
    coding = cd.SingleBurst(**P, discard=0.5)
    _, nodes, _ = coding.spike_train(np.array([0.9, 0.5, 0.49, -0.6]), US)
    assert sorted(nodes.tolist()) == [0, 1, 3]  # d = 0.51 > 0.5: silent


def test_periodic_without_jitter_fires_every_mean_period():
    values = np.array([1.0, 0.5, 0.1])
    times, nodes, _ = cd.Periodic(**P, rel_std=0.0).spike_train(values, US)
    for node, v in enumerate(values):
        t = times[nodes == node]
        period = round(mean_period(v))
        expected = np.arange(1, US // period + 1) * period
        np.testing.assert_array_equal(t, expected[expected < US])
    assert (nodes == 0).sum() == 99  # 10 ns period, spikes at 10..990 ns


def test_jittered_periodic_has_a_uniform_phase_then_exact_periods():
    values = np.full(4000, 0.5)
    times, nodes, _ = cd.JitteredPeriodic(**P, rel_std=0.0).spike_train(values, 200 * NS, seed=3)
    period = round(mean_period(0.5))
    first = np.array([times[nodes == n][0] for n in range(values.size)])
    assert first.min() >= 0 and first.max() <= period
    assert abs(first.mean() / period - 0.5) < 0.02
    gaps = np.concatenate([np.diff(times[nodes == n]) for n in range(50)])
    assert set(gaps.tolist()) == {period}


def test_black_pixels_rarely_fire_with_jitter():
    """v = 0: mean period 100 µs, so about 1 % of them spike once in a 1 µs window."""
    _, nodes, _ = cd.JitteredPeriodic(**P, rel_std=0.0).spike_train(np.zeros(20000), US, seed=1)
    assert 120 < nodes.size < 290 and np.bincount(nodes).max() == 1


def test_poissonian_intervals_are_exponential_with_a_floor():
    coding = cd.Poissonian(period_min=2 * NS, period_mean_min=10 * NS, period_mean_max=100 * US)
    times, nodes, _ = coding.spike_train(np.full(300, 1.0), 4 * US, seed=5)
    gaps = np.concatenate([np.diff(times[nodes == n]) for n in range(300)])
    assert gaps.min() >= 2 * NS
    # E[max(X, m)] for X ~ Exp(T): T + m − T(1 − e^(−m/T))
    t, m = 10 * NS, 2 * NS
    assert abs(gaps.mean() - (m + t * np.exp(-m / t))) < 0.03 * t


def test_periodic_jitter_has_the_relative_standard_deviation():
    coding = cd.Periodic(period_min=1 * NS, period_mean_min=20 * NS, period_mean_max=100 * US, rel_std=0.1)
    times, nodes, _ = coding.spike_train(np.full(200, 1.0), 4 * US, seed=2)
    gaps = np.concatenate([np.diff(times[nodes == n]) for n in range(200)]) / (20 * NS)
    assert abs(gaps.mean() - 1) < 0.01 and abs(gaps.std() - 0.1) < 0.01


def test_linear_period_is_the_inverse_of_value_times_max_frequency():
    coding = cd.Linear(**P, max_frequency=1e8)  # 10 ns at v = 1
    times, nodes, _ = coding.spike_train(np.array([1.0, 0.25, 0.0]), US)
    np.testing.assert_array_equal(times[nodes == 0], np.arange(1, 100) * 10 * NS)
    np.testing.assert_array_equal(times[nodes == 1], np.arange(1, 25) * 40 * NS)
    assert (nodes == 2).sum() == 0


def test_same_seed_same_train_other_seed_or_stimulus_other_train():
    coding = cd.Poissonian(**P)
    x = np.linspace(0, 1, 50)
    a = coding.spike_train(x, US, seed=4, stimulus=2)[0]
    assert np.array_equal(a, coding.spike_train(x, US, seed=4, stimulus=2)[0])
    assert not np.array_equal(a, coding.spike_train(x, US, seed=5, stimulus=2)[0])
    assert not np.array_equal(a, coding.spike_train(x, US, seed=4, stimulus=3)[0])


def config(text):
    doc = parse_text(f"[env.config]\n{text}\n", "m.ini", Diagnostics(stream=io.StringIO()))
    return Section(doc, ["env.config"])


def test_keys_and_defaults():
    coding = cd.from_config(config("StimulusType=JitteredPeriodic\nPeriodMin=1,000,000\n"
                                   "PeriodMeanMin=10,000,000\nPeriodMeanMax=100,000,000,000\n"
                                   "PeriodRelStdDev=0.0"))
    assert type(coding) is cd.JitteredPeriodic
    assert (coding.period_min, coding.period_mean_min, coding.period_mean_max) == (NS, 10 * NS, 100 * US)
    default = cd.from_config(config(""))
    assert type(default) is cd.SingleBurst
    assert (default.period_min, default.period_mean_min, default.period_mean_max) == (11 * MS, 50 * MS, 12 * S)
    assert (default.rel_std, default.discard, default.max_frequency) == (0.1, 1.0, 1e9)


@pytest.mark.parametrize("text, message", [
    ("PeriodMeanMin=10\nPeriodMeanMax=10", "PeriodMeanMin must be smaller than PeriodMeanMax"),
    ("PeriodMin=20\nPeriodMeanMin=10\nPeriodMeanMax=100", "PeriodMin must not exceed PeriodMeanMin"),
    ("DiscardedLateStimuli=1.5", "must be in [0, 1]"),
    ("PeriodRelStdDev=-0.1", "must be ≥ 0"),
    ("PeriodMin=0", "must be > 0"),
    ("StimulusType=JitterredPeriodic", "did you mean 'JitteredPeriodic'"),
])
def test_bad_keys_are_located_errors(text, message):
    with pytest.raises(N2D2PyError) as info:
        cd.from_config(config(text))
    assert message in str(info.value) and "m.ini:" in str(info.value)
