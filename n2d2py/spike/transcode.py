"""Formal network + weights → spike network (spec §6.1, §6.9), through TRANSCODERS.

Conv, Fc and Pool cells have spiking equivalents; a Transcode model with any other cell
(Dropout, Softmax, BatchNorm…) cannot run the spike test. Spike cells have no bias; ReLU
becomes a one-sided threshold and a linear output a bipolar one (unless BipolarThreshold says
otherwise). Weights outside [-1, 1] are refused unless ``CheckWeightRange=0``.

Data-based layer-wise normalisation (Diehl et al. 2015; Rueckauer et al. 2017 for the
percentile), chosen by global keys written before the first section:

    WeightsNormalization=Percentile   ; None (default, as N2D2 since 2019) | Max | Percentile
    WeightsNormalization.Percentile=99.9
    WeightsNormalization.NbStimuli=1000  ; Learn stimuli whose activations set the scales

λ_l, the max (or percentile) of |output| of layer l over the first NbStimuli Learn stimuli,
is the activation that should fire at the input's top rate; the weights of l become
W·λ_in/λ_l (λ of the input node: 1; a pool passes its input's λ on). Where that leaves a
weight above 1, the weights and the threshold of the layer are divided by the same factor,
which leaves the neuron dynamics unchanged and the weights in range.
"""

from dataclasses import dataclass, replace

import numpy as np

from n2d2py.errors import N2D2PyError
from n2d2py.ini.section import Section
from n2d2py.registry import TRANSCODERS
from n2d2py.spike import coding as _coding
from n2d2py.spike.layers import SpikeConv, SpikeFc, SpikeNetwork, SpikePool
from n2d2py.spike.neuron import NeuronParams

NORMALIZATIONS = ("None", "Max", "Percentile")
ONE_SIDED = ("Rectifier",)  # activations transcoded to a positive-only threshold
BIPOLAR = (None, "Linear")  # activations transcoded to a bipolar threshold


@dataclass
class Settings:
    """What the INI says about the spike simulation, read when the network is built."""

    coding: object
    transcoders: dict  # cell name -> transcoder
    unsupported: list  # cells without a spiking equivalent
    check_range: bool = True
    normalization: str = "None"
    percentile: float = 99.9
    nb_stimuli: int = 1000
    last_fc: str = None  # name of the last Fc cell, for the error message of unsupported cells


def read_settings(doc, cells, provider):
    """Read every spike key (coding, neurons, normalisation) so that typos are reported."""
    gsec = Section(doc, [doc.GLOBAL], label=None)
    norm = gsec.get_enum("WeightsNormalization", NORMALIZATIONS, "None")
    sub = gsec.prefixed("WeightsNormalization.")
    percentile = sub.get_float("Percentile", 99.9)
    if not 0 < percentile <= 100:
        raise sub.error("Percentile", f"must be in (0, 100], got {percentile:g}")
    nb_stimuli = sub.get_uint("NbStimuli", 1000)
    if nb_stimuli < 1:
        raise sub.error("NbStimuli", "must be at least 1")
    transcoders, unsupported = {}, []
    for name, cell in cells.items():
        if cell.type_name in TRANSCODERS:
            transcoders[name] = TRANSCODERS.get(cell.type_name).from_cell(cell)
        else:
            unsupported.append(cell)
    last_fc = next((n for n, c in reversed(cells.items()) if c.type_name == "Fc"), None)
    return Settings(_coding.from_config(provider.config), transcoders, unsupported,
                    gsec.get_bool("CheckWeightRange", True), norm, percentile, nb_stimuli, last_fc)


def transcode(net, settings, learn_batches=None):
    """The SpikeNetwork of ``net`` with its current weights.

    ``learn_batches`` (an iterable of input batches) feeds the normalisation statistics;
    it is required when WeightsNormalization is not None.
    """
    transcode_check(settings)
    scales = {}
    if settings.normalization != "None":
        if learn_batches is None:
            raise N2D2PyError("WeightsNormalization needs Learn stimuli: the database has none")
        scales = activation_scales(net, learn_batches, settings)
    layers = {}
    for name, cell in net.cells.items():
        layers[name] = settings.transcoders[name].layer(cell, scales, settings)
    outputs = [cell_name for _, cell_name, _ in net.targets]
    return SpikeNetwork(net.input_name, net.provider.shape, settings.coding, layers, outputs,
                        scales)


def transcode_check(settings):
    """A located error for the first cell without a spiking equivalent."""
    if settings.unsupported:
        cell = settings.unsupported[0]
        fc = settings.last_fc or "<last Fc>"
        raise cell.section.error(None, (
            f"{cell.type_name} has no spiking equivalent: remove [{cell.name}] from the spiking "
            "INI (as N2D2's tutorial does with Dropout and Softmax) and attach the Target to "
            f"the last Fc: [{fc}.Target]"))


def activation_scales(net, batches, settings):
    """λ of every cell: max or percentile of |output| over ``batches`` (the input node: 1)."""
    values = {name: [] for name in net.cells}
    for x in batches:
        outputs = net.forward(x, train=False)
        for name in net.cells:
            values[name].append(np.abs(net.device.to_host(outputs[name])).reshape(-1))
    q = 100.0 if settings.normalization == "Max" else settings.percentile
    scales = {net.input_name: 1.0}
    for name, cell in net.cells.items():
        if cell.type_name == "Pool":  # a pool keeps its input's scale
            scales[name] = max(scales[p.name] for p in cell.inputs)
            continue
        lam = float(np.percentile(np.concatenate(values[name]), q))
        scales[name] = lam if lam > 0 else 1.0
    return scales


class _Synaptic:
    """Conv and Fc: neuron parameters from the ConfigSection, weights from the cell."""

    def __init__(self, params, problem=None):
        self.params = params
        self.problem = problem

    @classmethod
    def from_cell(cls, cell):
        act = None if cell.activation is None else cell.activation.type_name
        problem = None
        if act not in ONE_SIDED + BIPOLAR:
            problem = (f"ActivationFunction={act} has no spiking equivalent: use Rectifier "
                       "(or no activation / Linear on the output layer)")
        params = NeuronParams.from_section(cell.section.config, bipolar_default=act not in ONE_SIDED)
        return cls(params, problem)

    def layer(self, cell, scales, settings):
        if self.problem:
            raise cell.section.error("ActivationFunction", self.problem)
        _warn_bias(cell)
        weights = np.array(cell.device.to_host(cell.weights.data), dtype=np.float64)
        if getattr(cell, "mask", None) is not None and weights.ndim == 4:
            weights *= cell.mask[:, :, None, None]
        threshold = self.params.threshold
        if scales:
            weights = _scale_inputs(cell, weights, scales)
            peak = float(np.abs(weights).max()) if weights.size else 0.0
            if peak > 1.0:  # same dynamics with weights and threshold divided by peak
                weights, threshold = weights / peak, threshold / peak
        elif settings.check_range:
            _check_range(cell, weights)
        params = replace(self.params, threshold=threshold)
        return self._build(cell, weights, params)


def _scale_inputs(cell, weights, scales):
    """W·λ_in/λ_out, per input of the cell (channels for Conv, columns for Fc)."""
    out = weights.copy()
    start = 0
    for port in cell.inputs:
        width = port.shape[0] if weights.ndim == 4 else int(np.prod(port.shape))
        factor = scales[port.name] / scales[cell.name]
        out[:, start : start + width] *= factor
        start += width
    return out


def _check_range(cell, weights):
    if weights.size == 0 or np.abs(weights).max() <= 1.0:
        return
    worst = float(weights.flat[np.abs(weights).argmax()])
    raise cell.section.error(None, (
        f"weight {worst:g} of {cell.name} is outside [-1, 1], the range of spike synapses: "
        "learn with Solvers.Clamping=-1.0:1.0, or set WeightsNormalization=Percentile "
        "(data-based normalisation) before the first section, or CheckWeightRange=0"))


def _warn_bias(cell):
    bias = getattr(cell, "bias", None)
    if bias is not None and np.any(cell.device.to_host(bias.data) != 0):
        cell.section.doc.warn(f"spike cells have no bias: the biases of {cell.name} are ignored "
                              "(learn with NoBias=1)", section=cell.name)


@TRANSCODERS.register("Conv")
class ConvTranscoder(_Synaptic):
    def _build(self, cell, weights, params):
        if tuple(cell.dilation) != (1, 1):
            raise cell.section.error("Dilation", "spike Conv cells need Dilation=1")
        ports = [(p.name, p.shape) for p in cell.inputs]
        return SpikeConv(cell.name, ports, cell.out_shape, weights, cell.stride, cell.padding,
                         cell.mask, params)


@TRANSCODERS.register("Fc")
class FcTranscoder(_Synaptic):
    def _build(self, cell, weights, params):
        return SpikeFc(cell.name, [(p.name, p.shape) for p in cell.inputs], weights, params)


@TRANSCODERS.register("Pool")
class PoolTranscoder:
    """Max or Average pooling of spike counts; no parameters."""

    @classmethod
    def from_cell(cls, cell):
        return cls()

    def layer(self, cell, scales, settings):
        act = None if cell.activation is None else cell.activation.type_name
        if act not in BIPOLAR + ONE_SIDED:
            raise cell.section.error("ActivationFunction", f"a spike Pool has no {act} activation")
        ports = [(p.name, p.shape) for p in cell.inputs]
        return SpikePool(cell.name, ports, cell.out_shape, cell.pool, cell.stride, cell.padding,
                         cell.mask, cell.pooling)
