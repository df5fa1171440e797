"""Transcoding (spec §6.1, §6.9): weights and thresholds, range check, unsupported cells,
data-based normalisation."""

import io

import numpy as np
import pytest

from n2d2py import backend, network
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import parse_text
from n2d2py.spike import transcode

INI = """DefaultModel=Transcode
{globals}
[env]
SizeX=6
SizeY=6
ConfigSection=env.config
[env.config]
StimulusType=JitteredPeriodic
PeriodMin=1,000,000
PeriodMeanMin=10,000,000
PeriodMeanMax=100,000,000,000
PeriodRelStdDev=0.0
[conv]
Input=env
Type=Conv
KernelDims=3 3
NbOutputs=2
ActivationFunction=Rectifier
ConfigSection=common.config
[pool]
Input=conv
Type=Pool
PoolDims=2 2
Stride=2
NbOutputs=2
Pooling=Max
Mapping.Size=1
{extra}
[fc]
Input={fc_input}
Type=Fc
NbOutputs=3
ConfigSection=common.config,fc.config
[fc.Target]
[common.config]
NoBias=1
Threshold=0.5
IncomingDelay=0
[fc.config]
TerminateDelta=4
"""


def build(globals_="", extra="", fc_input="pool"):
    text = INI.format(globals=globals_, extra=extra, fc_input=fc_input)
    doc = parse_text(text, "s.ini", Diagnostics(stream=io.StringIO()))
    net = network.build(doc, backend.cpu(1))
    net.initialize()
    return net


def set_weights(net, scale=0.3, seed=0):
    rng = np.random.default_rng(seed)
    for cell in net.cells.values():
        for p in cell.params():
            p.data[...] = rng.normal(0, scale, p.shape).astype(np.float32)


def test_thresholds_and_polarity_follow_the_config_and_activation():
    net = build()
    set_weights(net)
    snet = transcode.transcode(net, net.spike)
    conv, fc = snet.layers["conv"], snet.layers["fc"]
    assert (conv.params.threshold, conv.params.bipolar) == (0.5, False)  # Rectifier: one-sided
    assert (fc.params.threshold, fc.params.bipolar, fc.params.terminate_delta) == (0.5, True, 4)
    np.testing.assert_array_equal(conv.weights, np.asarray(net.cells["conv"].weights.data))
    assert snet.outputs == ["fc"] and list(snet.layers) == ["conv", "pool", "fc"]


def test_weights_out_of_range_name_the_cell_and_the_fixes():
    net = build()
    set_weights(net, scale=0.1)
    net.cells["fc"].weights.data[1, 2] = -1.5
    with pytest.raises(N2D2PyError) as info:
        transcode.transcode(net, net.spike)
    message = str(info.value)
    assert message.startswith("s.ini:") and "[fc]" in message and "-1.5" in message
    for fix in ("Solvers.Clamping=-1.0:1.0", "WeightsNormalization=Percentile", "CheckWeightRange=0"):
        assert fix in message
    relaxed = build("CheckWeightRange=0")
    set_weights(relaxed, scale=0.1)
    relaxed.cells["fc"].weights.data[1, 2] = -1.5
    assert transcode.transcode(relaxed, relaxed.spike).layers["fc"].weights[1, 2] == -1.5


@pytest.mark.parametrize("extra, cell_type", [
    ("[drop]\nInput=pool\nType=Dropout\nNbOutputs=2", "Dropout"),
    ("[soft]\nInput=pool\nType=Softmax\nNbOutputs=2", "Softmax"),
])
def test_cells_without_a_spiking_equivalent_are_refused_with_the_fix(extra, cell_type):
    name = extra[1:extra.index("]")]
    net = build(extra=extra, fc_input=name)
    with pytest.raises(N2D2PyError) as info:
        transcode.transcode_check(net.spike)
    message = str(info.value)
    assert f"[{name}] {cell_type} has no spiking equivalent" in message
    assert f"remove [{name}]" in message and "[fc.Target]" in message


def test_an_activation_without_spiking_equivalent_is_refused():
    net = build()
    net.spike.transcoders["conv"].problem = "ActivationFunction=Tanh has no spiking equivalent"
    set_weights(net)
    with pytest.raises(N2D2PyError, match="Tanh has no spiking equivalent"):
        transcode.transcode(net, net.spike)


def spike_forward(snet, x):
    """The formal forward pass of the transcoded weights (ReLU where one-sided, max pool)."""
    conv, fc = snet.layers["conv"], snet.layers["fc"]
    src, tgt, w, _ = conv.fanout(0)
    y = np.maximum(np.bincount(tgt, weights=x.reshape(-1)[src] * w, minlength=conv.size), 0)
    y = y.reshape(conv.out_shape)
    pooled = y.reshape(2, 2, 2, 2, 2).max(axis=(2, 4))
    return fc.weights.astype(np.float64) @ pooled.reshape(-1)


@pytest.mark.parametrize("mode", ["Max", "Percentile"])
def test_normalisation_divides_each_layer_by_its_activation_scale(mode):
    net = build(f"WeightsNormalization={mode}\nWeightsNormalization.Percentile=90")
    set_weights(net, scale=1.5)  # unclamped: weights up to ~5
    rng = np.random.default_rng(3)
    batches = [rng.random((8, 1, 6, 6)).astype(np.float32) for _ in range(3)]
    snet = transcode.transcode(net, net.spike, batches)
    outputs = [net.forward(b) for b in batches]
    q = 100 if mode == "Max" else 90
    for name in ("conv", "fc"):
        expected = np.percentile(np.abs(np.concatenate([o[name].reshape(-1) for o in outputs])), q)
        assert snet.scales[name] == pytest.approx(expected, rel=1e-5)
    assert snet.scales["pool"] == snet.scales["conv"]
    for name in ("conv", "fc"):  # weights in range; the threshold carries any extra factor
        assert np.abs(snet.layers[name].weights).max() <= 1.0 + 1e-6
    x = batches[0][0]
    formal = outputs[0]["fc"][0].reshape(-1) / snet.scales["fc"]
    spiking_scale = snet.layers["fc"].params.threshold / 0.5  # 1 unless weights had to shrink
    conv_shrink = snet.layers["conv"].params.threshold / 0.5
    np.testing.assert_allclose(spike_forward(snet, x) / spiking_scale / conv_shrink, formal,
                               rtol=1e-4, atol=1e-6)


def test_bad_normalisation_keys():
    with pytest.raises(N2D2PyError, match="one of None, Max, Percentile"):
        build("WeightsNormalization=Robust")
    with pytest.raises(N2D2PyError, match=r"must be in \(0, 100\]"):
        build("WeightsNormalization=Percentile\nWeightsNormalization.Percentile=150")
