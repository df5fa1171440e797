"""Small random spike networks for the engine and layer tests (imported as spike_nets)."""

import numpy as np
from n2d2py.spike import coding as cd
from n2d2py.spike.layers import SpikeConv, SpikeFc, SpikeNetwork, SpikePool
from n2d2py.spike.neuron import NeuronParams
from n2d2py.spike.time import NS, US

# Fast codings: a white pixel fires every 10 ns, as in LeNet_Spike.ini.
PERIODS = dict(period_min=1 * NS, period_mean_min=10 * NS, period_mean_max=100 * US)
CODINGS = {
    "SingleBurst": cd.SingleBurst(**PERIODS),
    "Periodic": cd.Periodic(**PERIODS, rel_std=0.0),
    "JitteredPeriodic": cd.JitteredPeriodic(**PERIODS, rel_std=0.0),
    "JitteredPeriodic+jitter": cd.JitteredPeriodic(**PERIODS, rel_std=0.2),
    "Poissonian": cd.Poissonian(**PERIODS),
    "Linear": cd.Linear(**PERIODS, max_frequency=1e8),
}


def random_mask(rng, outputs, channels):
    mask = rng.random((outputs, channels)) < 0.6
    mask[np.arange(outputs), rng.integers(0, channels, outputs)] = True  # every output has an input
    return mask


def random_network(seed, coding, pooling="Max", bipolar=False, leak=0, refractory=0, delay=0,
                   terminate=0, stride=1, padding=1, general_pool=False, scale=0.7):
    """env (2×7×7) → conv 3×3 (3 maps, partial map) → pool 2×2 → fc (4, bipolar)."""
    rng = np.random.default_rng(seed)
    hidden = NeuronParams(threshold=1.0, bipolar=bipolar, leak=leak, refractory=refractory,
                          incoming_delay=delay)
    out = NeuronParams(threshold=0.8, bipolar=True, leak=leak, incoming_delay=delay,
                       terminate_delta=terminate)
    size = (7 + 2 * padding - 3) // stride + 1
    conv = SpikeConv("conv", [("env", (2, 7, 7))], (3, size, size),
                     np.clip(rng.normal(0, scale, (3, 2, 3, 3)), -1, 1), (stride, stride),
                     (padding, padding), random_mask(rng, 3, 2), hidden)
    pool_mask = random_mask(rng, 3, 3) if general_pool else np.eye(3, dtype=bool)
    pooled = (3, size // 2, size // 2)
    pool = SpikePool("pool", [("conv", conv.out_shape)], pooled, (2, 2), (2, 2), (0, 0), pool_mask,
                     pooling)
    fc = SpikeFc("fc", [("pool", pooled)], np.clip(rng.normal(0, scale, (4, int(np.prod(pooled)))), -1, 1),
                 out)
    layers = {"conv": conv, "pool": pool, "fc": fc}
    return SpikeNetwork("env", (2, 7, 7), coding, layers, ["fc"])


def random_input(seed, signed=False):
    rng = np.random.default_rng(1000 + seed)
    x = rng.random((2, 7, 7)) * (rng.random((2, 7, 7)) < 0.7)
    return x * np.where(rng.random(x.shape) < 0.3, -1, 1) if signed else x
