"""The edge learning rule: its invariants, a separable problem learned perfectly, files."""

import numpy as np
import pytest

from n2d2py.edge import EdgeLayer
from n2d2py.errors import N2D2PyError


def random_problem(seed, n=300, n_in=40, classes=3, density=0.3):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, n_in)) < density).astype(np.uint8)
    y = rng.integers(0, classes, n)
    return x, y


def separable(seed, per_class=40, classes=4, block=10, flips=1):
    """Class c lights inputs [c*block, (c+1)*block) (minus ``flips`` random ones) plus
    ``flips`` random inputs elsewhere."""
    rng = np.random.default_rng(seed)
    n_in = classes * block
    xs, ys = [], []
    for c in range(classes):
        for _ in range(per_class):
            x = np.zeros(n_in, np.uint8)
            on = np.arange(c * block, (c + 1) * block)
            x[rng.permutation(on)[: block - flips]] = 1
            x[rng.choice(np.setdiff1d(np.arange(n_in), on), flips, replace=False)] = 1
            xs.append(x)
            ys.append(c)
    order = rng.permutation(len(ys))
    return np.array(xs)[order], np.array(ys)[order]


@pytest.mark.parametrize("competition", [0.0, 0.1, 0.5, 1.0])
def test_one_sample_at_a_time_invariants(competition):
    """Exactly num_weights ones per neuron; at most one neuron learns per sample, one of the
    sample's class; only its weights change; thresholds never decrease; 0 = never learned."""
    x, y = random_problem(1)
    layer = EdgeLayer(40, 3, 9, neurons_per_class=4, learning_competition=competition, seed=2)
    assert (layer.weights.sum(axis=1) == 9).all()
    for xi, yi in zip(x, y):
        w0, t0, s0 = layer.weights, layer.threshold_learning, layer.learning_steps
        winner = layer.fit(xi[None], [yi])[0]
        w1, t1, s1 = layer.weights, layer.threshold_learning, layer.learning_steps
        assert (w1.sum(axis=1) == 9).all()
        assert set(np.unique(w1)) <= {0, 1}
        assert (t1 >= t0).all()
        changed = np.nonzero(s1 != s0)[0]
        if winner < 0:
            assert len(changed) == 0 and (w1 == w0).all()
            continue
        assert list(changed) == [winner] and s1[winner] == s0[winner] + 1
        assert winner // 4 == yi
        others = np.arange(12) != winner
        assert (w1[others] == w0[others]).all() and (t1[others] == t0[others]).all()
        assert t1[winner] >= 1
    assert ((layer.threshold_learning > 0) == (layer.learning_steps > 0)).all()


def test_competition_zero_lets_one_neuron_capture_its_class():
    """Threshold 1: the first neuron takes every sample it shares a spike with (all, here)."""
    x, y = random_problem(4, n=200, density=0.6)
    layer = EdgeLayer(40, 3, 10, neurons_per_class=6, learning_competition=0.0, seed=1)
    layer.fit(x, y)
    learned = layer.learned.reshape(3, 6).sum(axis=1)
    assert (learned == 1).all()


def test_more_competition_recruits_more_neurons():
    x, y = random_problem(5, n=600, density=0.6)
    counts = []
    for competition in (0.0, 0.1, 0.5, 1.0):
        layer = EdgeLayer(40, 3, 10, neurons_per_class=30, learning_competition=competition, seed=1)
        layer.fit(x, y)
        counts.append(int(layer.learned.sum()))
    assert counts == sorted(counts) and counts[0] == 3 and counts[-1] > counts[1] > 3, counts


def test_first_sample_is_taken_whole():
    layer = EdgeLayer(20, 1, 5, neurons_per_class=2, seed=3)
    x = np.zeros((1, 20), np.uint8)
    x[0, [1, 4, 7, 9, 15, 18]] = 1  # 6 active inputs > 5 weights: all 5 ones land on them
    assert layer.fit(x, [0])[0] == 0
    assert (layer.weights[0] <= x[0]).all()
    assert layer.forward(x)[0, 0] == 5
    assert layer.threshold_learning[0] >= 1 and layer.threshold_learning[1] == 0


def test_separable_problem_is_learned_perfectly():
    x, y = separable(6)
    layer = EdgeLayer(40, 4, 10, neurons_per_class=3, learning_competition=0.1, seed=1)
    layer.fit(x, y)
    assert (layer.predict(x) == y).all()
    x_test, y_test = separable(7)
    assert (layer.predict(x_test) == y_test).all()


def test_forward_counts_coincident_ones_and_predict_ignores_unlearned():
    x, y = random_problem(8, n=50)
    layer = EdgeLayer(40, 3, 8, 4, seed=2)
    layer.fit(x[:5], y[:5])
    potentials = np.asarray(layer.forward(x))
    assert np.array_equal(potentials, (x[:, None, :] & layer.weights[None]).sum(axis=2))
    scores = np.asarray(layer.class_scores(potentials))
    learned = layer.learned.reshape(3, 4)
    for c in range(3):
        if not learned[c].any():
            assert (scores[:, c] == -1).all()
    # ties between classes go to the larger index, as TargetScore decides
    tie = EdgeLayer(4, 2, 2, 1, seed=1)
    tie.fit(np.array([[1, 1, 0, 0], [0, 0, 1, 1]]), [0, 1])
    assert tie.predict(np.array([[1, 0, 1, 0]]))[0] == 1


def test_save_load_round_trip_and_continue(tmp_path):
    x, y = random_problem(9)
    a = EdgeLayer(40, 3, 11, 5, 0.3, seed=4)
    a.fit(x[:150], y[:150])
    path = tmp_path / "edge.npz"
    a.save(path)
    b = EdgeLayer.load(path)
    assert repr(a) == repr(b)
    for name in ("weights", "threshold_learning", "learning_steps"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.predict(x), b.predict(x))
    a.fit(x[150:], y[150:])
    b.fit(x[150:], y[150:])  # the RNG state travels with the file: the same moves
    assert np.array_equal(a.weights, b.weights)
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_files_and_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(N2D2PyError, match="not found"):
        EdgeLayer.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(N2D2PyError, match="not an edge layer state"):
        EdgeLayer.load(tmp_path / "junk.npz")
    with pytest.raises(N2D2PyError, match="num_weights"):
        EdgeLayer(10, 2, 11)
    with pytest.raises(N2D2PyError, match="learning_competition"):
        EdgeLayer(10, 2, 3, learning_competition=1.5)
    layer = EdgeLayer(10, 2, 3)
    with pytest.raises(N2D2PyError, match="class 2 out of range"):
        layer.fit(np.ones((1, 10)), [2])
    with pytest.raises(N2D2PyError, match="12 inputs"):
        layer.fit(np.ones((1, 12)), [0])
    assert layer.fit(np.ones((1, 10)), [-1])[0] == -1  # −1 skips
