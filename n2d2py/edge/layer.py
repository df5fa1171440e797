"""An Akida-style edge-learning layer: binary inputs, binary weights, one-pass learning.

Every neuron has exactly ``num_weights`` weights at 1 (the others at 0) and belongs to one
class (``neurons_per_class`` consecutive neurons per class). Its potential for a binary input is
the number of coincident ones. The answer is the class of the learned neuron with the highest
potential.

Learning (``fit``) shows labelled samples one at a time, without back-propagation:

- among the sample's class neurons that have learned before and whose potential reaches their
  learning threshold, the one with the highest potential learns; if none does, a neuron that
  never learned (threshold 0) takes the sample; if none is left, nothing learns;
- learning moves ones from inputs that are silent in the sample onto inputs that are active
  (so ``num_weights`` stays constant): all of them for a neuron's first sample, then at most
  ceil(mismatch / (steps + 1)), so the weights follow the running mean of its samples;
- after each step the threshold rises towards the neuron's new potential P on the sample:
  ``threshold += learning_competition * (P - threshold)`` (at least 1). With competition 0 one
  neuron captures its whole class; with 1 a neuron only refines on samples it already matches
  fully, and every other sample goes to a free neuron.

Weights and thresholds live on the host (the learning loop is sequential, compiled with numba);
``forward`` runs on the array module given (numpy or CuPy), batched, as one matrix product.
"""

import io
import json

import numpy as np

from n2d2py.backend import to_host
from n2d2py.edge._kernels import fit_loop
from n2d2py.errors import N2D2PyError
from n2d2py.atomic import atomic_write_bytes

FORMAT = "n2d2py-edge-1"


def to_bits(x):
    """Host uint8 (N, n_in) 0/1 array from any (N, ...) array: non-zero entries are spikes."""
    x = to_host(x)
    return np.ascontiguousarray((x.reshape(len(x), -1) != 0).astype(np.uint8))


class EdgeLayer:
    """Binary-weight fully connected layer that learns classes from labelled binary samples."""

    def __init__(self, nb_inputs, nb_classes, num_weights, neurons_per_class=1,
                 learning_competition=0.1, seed=1, xp=np):
        checks = (
            (nb_inputs >= 1, f"nb_inputs must be at least 1, got {nb_inputs}"),
            (nb_classes >= 1, f"nb_classes must be at least 1, got {nb_classes}"),
            (neurons_per_class >= 1, f"neurons_per_class must be at least 1, got {neurons_per_class}"),
            (1 <= num_weights <= nb_inputs,
             f"num_weights must be between 1 and the {nb_inputs} inputs, got {num_weights}"),
            (0.0 <= learning_competition <= 1.0,
             f"learning_competition must be between 0 and 1, got {learning_competition}"),
        )
        for ok, message in checks:
            if not ok:
                raise N2D2PyError(message)
        self.nb_inputs = int(nb_inputs)
        self.nb_classes = int(nb_classes)
        self.num_weights = int(num_weights)
        self.neurons_per_class = int(neurons_per_class)
        self.learning_competition = float(learning_competition)
        self.xp = xp
        self.rng = np.random.default_rng(seed)
        n = self.nb_neurons
        # Before learning, each neuron's ones are at random inputs (it answers nothing anyway).
        order = np.argsort(self.rng.random((n, self.nb_inputs)), axis=1)[:, : self.num_weights]
        self._weights = np.zeros((n, self.nb_inputs), np.uint8)
        np.put_along_axis(self._weights, order, 1, axis=1)
        self._thresholds = np.zeros(n, np.float32)
        self._counts = np.zeros(n, np.int64)
        self._device_weights = None

    # -- state ---------------------------------------------------------------------------
    @property
    def nb_neurons(self):
        return self.nb_classes * self.neurons_per_class

    @property
    def weights(self):
        """(neurons, inputs) uint8 0/1, a copy: exactly ``num_weights`` ones per row."""
        return self._weights.copy()

    @property
    def threshold_learning(self):
        """Learning threshold of every neuron (float32, a copy); 0 = never learned."""
        return self._thresholds.copy()

    @property
    def learning_steps(self):
        """How many samples each neuron learned (int64, a copy)."""
        return self._counts.copy()

    @property
    def learned(self):
        """Boolean (neurons,): whether each neuron has learned at least once."""
        return self._thresholds > 0

    @property
    def neuron_classes(self):
        return np.repeat(np.arange(self.nb_classes), self.neurons_per_class)

    def __repr__(self):
        return (f"EdgeLayer({self.nb_inputs} inputs -> {self.nb_classes} classes x "
                f"{self.neurons_per_class} neurons, {self.num_weights} weights, competition "
                f"{self.learning_competition:g}, {int(self.learned.sum())} learned)")

    # -- learning ------------------------------------------------------------------------
    def fit(self, x, y):
        """Learn the samples ``x`` (N, ...; non-zero = spike) with classes ``y`` (N; −1 skips),
        in order, one pass. Returns the neuron that learned each sample (−1: none)."""
        bits = to_bits(x)
        classes = np.asarray(to_host(y), np.int64).reshape(-1)
        if bits.shape[1] != self.nb_inputs:
            raise N2D2PyError(f"fit: samples have {bits.shape[1]} inputs, the layer {self.nb_inputs}")
        if len(classes) != len(bits):
            raise N2D2PyError(f"fit: {len(classes)} labels for {len(bits)} samples")
        if len(classes) and (classes.max() >= self.nb_classes or classes.min() < -1):
            bad = int(classes.max() if classes.max() >= self.nb_classes else classes.min())
            raise N2D2PyError(f"fit: class {bad} out of range 0..{self.nb_classes - 1} (−1 skips)")
        winners = np.empty(len(bits), np.int64)
        before = np.empty(len(bits), np.int64)
        seed = int(self.rng.integers(2**31))
        fit_loop(self._weights, self._thresholds, self._counts, bits, classes,
                 self.neurons_per_class, self.learning_competition, seed, winners, before)
        self._device_weights = None
        return winners

    # -- inference -----------------------------------------------------------------------
    def _device(self):
        if self._device_weights is None:
            self._device_weights = self.xp.asarray(self._weights.T, dtype=self.xp.float32)
        return self._device_weights

    def forward(self, x):
        """Potentials (N, neurons) float32 on the layer's array module: coincident ones.

        ``x`` is binary (N, ...) on any module: non-zero entries are spikes."""
        xp = self.xp
        x = xp.asarray(x).reshape(len(x), -1)
        if x.shape[1] != self.nb_inputs:
            raise N2D2PyError(f"forward: samples have {x.shape[1]} inputs, the layer {self.nb_inputs}")
        return (x != 0).astype(xp.float32) @ self._device()

    def class_scores(self, potentials):
        """(N, classes): the best potential of each class's learned neurons (−1: none learned)."""
        xp = self.xp
        masked = xp.where(xp.asarray(self.learned)[None, :], potentials, -1.0)
        return masked.reshape(len(potentials), self.nb_classes, self.neurons_per_class).max(axis=2)

    def predict(self, x):
        """Host int64 (N,): the class of the learned neuron with the highest potential
        (ties between classes: the larger class index, as TargetScore decides)."""
        scores = to_host(self.class_scores(self.forward(x)))
        return (self.nb_classes - 1 - np.argmax(scores[:, ::-1], axis=1)).astype(np.int64)

    # -- files ---------------------------------------------------------------------------
    def state(self):
        """(meta dict, arrays dict) describing the layer completely."""
        meta = {
            "format": FORMAT, "nb_inputs": self.nb_inputs, "nb_classes": self.nb_classes,
            "num_weights": self.num_weights, "neurons_per_class": self.neurons_per_class,
            "learning_competition": self.learning_competition,
            "rng": self.rng.bit_generator.state,
        }
        arrays = {"weights": np.packbits(self._weights, axis=1),
                  "threshold_learning": self._thresholds, "learning_steps": self._counts}
        return meta, arrays

    def save(self, path):
        """Write the layer to ``path`` (.npz), atomically."""
        meta, arrays = self.state()
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path, xp=np):
        """A layer read from a file written by ``save``; errors name the file."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
            meta = json.loads(data["meta"].tobytes().decode())
        except FileNotFoundError:
            raise N2D2PyError("edge layer state not found", str(path)) from None
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise N2D2PyError(f"not an edge layer state ({exc})", str(path)) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise N2D2PyError(f"not an edge layer state (expected format {FORMAT})", str(path))
        try:
            layer = cls(meta["nb_inputs"], meta["nb_classes"], meta["num_weights"],
                        meta["neurons_per_class"], meta["learning_competition"], xp=xp)
            layer.set_state(meta, data)
        except (KeyError, ValueError, TypeError) as exc:
            raise N2D2PyError(f"corrupt edge layer state ({exc})", str(path)) from None
        return layer

    def set_state(self, meta, arrays):
        """Inverse of ``state`` (on a layer of the same shape); checks the invariants."""
        n, n_in = self.nb_neurons, self.nb_inputs
        weights = np.unpackbits(arrays["weights"], axis=1, count=n_in).astype(np.uint8)
        thresholds = np.asarray(arrays["threshold_learning"], np.float32)
        counts = np.asarray(arrays["learning_steps"], np.int64)
        if weights.shape != (n, n_in) or thresholds.shape != (n,) or counts.shape != (n,):
            raise ValueError(f"arrays do not match {n} neurons x {n_in} inputs")
        if not (weights.sum(axis=1) == self.num_weights).all():
            raise ValueError(f"a neuron does not have exactly {self.num_weights} weights at 1")
        self._weights, self._thresholds, self._counts = weights, thresholds, counts
        if "rng" in meta:
            self.rng.bit_generator.state = meta["rng"]
        self._device_weights = None

    def compatible(self, other):
        """Whether ``other`` has the same shape and parameters (for loading a saved state)."""
        keys = ("nb_inputs", "nb_classes", "num_weights", "neurons_per_class")
        return all(getattr(self, k) == getattr(other, k) for k in keys)
