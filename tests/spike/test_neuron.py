"""The integrate-and-fire rules (spec §6.5) and the neuron keys of a ConfigSection."""

import io
import math

import pytest

from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.spike.neuron import NeuronParams, integrate_fire, leak
from n2d2py.spike.time import PS


def test_fires_at_threshold_and_keeps_the_residue():
    u, o = integrate_fire(0.7, 0.5, 1, 1.0, False, 10, 0)
    assert o == 1 and u == pytest.approx(0.2)  # reset by subtraction
    u, o = integrate_fire(0.2, 0.5, 1, 1.0, False, 11, 0)
    assert o == 0 and u == pytest.approx(0.7)
    u, o = integrate_fire(0.5, 0.5, 1, 1.0, False, 11, 0)
    assert o == 1 and u == 0.0  # u ≥ θ fires (equality included)


def test_one_spike_per_input_even_far_above_threshold():
    u, o = integrate_fire(0.0, 2.5, 1, 1.0, False, 0, 0)
    assert o == 1 and u == pytest.approx(1.5)


def test_negative_spikes_only_with_a_bipolar_threshold():
    u, o = integrate_fire(-0.6, 0.5, -1, 1.0, False, 0, 0)
    assert o == 0 and u == pytest.approx(-1.1)  # one-sided (ReLU): no negative spike
    u, o = integrate_fire(-0.6, 0.5, -1, 1.0, True, 0, 0)
    assert o == -1 and u == pytest.approx(-0.1)
    u, o = integrate_fire(0.6, -0.5, -1, 1.0, True, 0, 0)  # a negative spike through −w adds
    assert o == 1 and u == pytest.approx(0.1)


def test_refractory_period_integrates_but_does_not_fire():
    u, o = integrate_fire(0.9, 0.5, 1, 1.0, False, 99, 100)
    assert o == 0 and u == pytest.approx(1.4)
    u, o = integrate_fire(1.4, 0.1, 1, 1.0, False, 100, 100)
    assert o == 1 and u == pytest.approx(0.5)


def test_exponential_leak_and_its_floor():
    assert leak(2.0, 100, 100 + 50, 50.0) == pytest.approx(2.0 * math.exp(-1))
    assert leak(2.0, 0, 10, 0.0) == 2.0  # τ = 0: no leak
    assert leak(2.0, 0, 47 * 50, 50.0) == 0.0  # e^-47 < 1e-20


def cfg(text):
    doc = parse_text(f"[c]\n{text}\n", "m.ini", Diagnostics(stream=io.StringIO()))
    return Section(doc, ["c"])


def test_keys_of_a_config_section():
    p = NeuronParams.from_section(cfg("Threshold=0.5\nBipolarThreshold=1\nLeak=1000\nRefractory=20\n"
                                      "IncomingDelay=3\nTerminateDelta=4\nTerminateMax=9"), False)
    assert p == NeuronParams(0.5, True, 1000, 20, 3, 4, 9)
    default = NeuronParams.from_section(cfg(""), False)
    assert (default.threshold, default.bipolar, default.incoming_delay) == (1.0, False, PS)
    assert not default.terminates


@pytest.mark.parametrize("text, message", [
    ("Threshold=0", "must be > 0"),
    ("Leak=-5", "must be ≥ 0"),
    ('IncomingDelay="1000; 100"', "spread of per-synapse delays is not supported"),
    ("TerminateDelta=-1", "non-negative integer"),
])
def test_bad_neuron_keys(text, message):
    with pytest.raises(N2D2PyError) as info:
        NeuronParams.from_section(cfg(text), True)
    assert message in str(info.value) and "m.ini:2" in str(info.value)


def test_neuron_rules_do_no_array_math():
    """design.md: spike/neuron.py holds scalar rules shared by both engines, no numpy."""
    import ast
    from pathlib import Path

    import n2d2py.spike.neuron as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {a.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for a in node.names} | {node.module for node in ast.walk(tree)
                                        if isinstance(node, ast.ImportFrom)}
    assert "numpy" not in imported and "np" not in imported
