"""Solvers and learning-rate policies (spec §3.6), recomputed by hand."""

import math

import numpy as np
import pytest

from n2d2py.cells.base import Param
from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import LR_POLICIES
from n2d2py.solvers import SGD, Adam, lr_step, make_solver


def param(values, grad=None, mask=None):
    p = Param("w", np.shape(values), filler=None, mask=mask)
    p.data = np.array(values, dtype=np.float32)
    p.grad = np.zeros_like(p.data) if grad is None else np.array(grad, dtype=np.float32)
    if mask is not None:
        p.mask = np.asarray(mask, dtype=np.float32)
    return p


def view(text, chain):
    doc = parse_text(text, "m.ini", Diagnostics(stream=open("/dev/null", "w")))
    return Section(doc, chain, label="fc")


# -- policies ---------------------------------------------------------------------------


def test_step_is_counted_in_stimuli():
    p = SGD(step_size=60000)
    assert lr_step(2499, 24, p) == 0  # 59976 stimuli
    assert lr_step(2500, 24, p) == 1  # 60000
    assert lr_step(5000, 24, p) == 2


@pytest.mark.parametrize(
    "name, n, expected",
    [
        ("None", 7, 0.05),
        ("StepDecay", 2500, 0.05 * 0.993),  # LeNet: one epoch of 60000 at batch 24
        ("StepDecay", 7500, 0.05 * 0.993**3),
        ("ExponentialDecay", 5000, 0.05 * math.exp(-0.993 * 2)),
        ("InvTDecay", 5000, 0.05 / (1 + 0.993 * 2)),
    ],
)
def test_step_policies(name, n, expected):
    p = SGD(step_size=60000, lr_decay=0.993)
    assert LR_POLICIES.get(name)(0.05, n, 24, p) == pytest.approx(expected, rel=1e-12)


def test_poly_and_inv_decay_use_the_update_count():
    p = SGD(max_iterations=100, power=2.0, lr_decay=0.5, step_size=1000)
    assert LR_POLICIES.get("PolyDecay")(0.1, 25, 32, p) == pytest.approx(0.1 * 0.75**2)
    assert LR_POLICIES.get("PolyDecay")(0.1, 100, 32, p) == 0.0
    assert LR_POLICIES.get("InvDecay")(0.1, 4, 32, p) == pytest.approx(0.1 * 3.0**-2)


def test_cosine_decay_with_warm_up_and_floor():
    p = SGD(max_iterations=110, warm_up_duration=10, warm_up_lr_frac=0.25, min_decay=0.1,
            step_size=1)
    f = LR_POLICIES.get("CosineDecay")
    assert f(1.0, 0, 1, p) == pytest.approx(0.25)
    assert f(1.0, 5, 1, p) == pytest.approx(0.75 * 0.5 + 0.25)
    assert f(1.0, 10, 1, p) == pytest.approx(1.0)
    assert f(1.0, 60, 1, p) == pytest.approx(0.9 * 0.5 + 0.1)
    assert f(1.0, 110, 1, p) == pytest.approx(0.1)
    assert f(1.0, 500, 1, p) == pytest.approx(0.1)  # held at the end, no second rise


# -- SGD --------------------------------------------------------------------------------


def test_sgd_plain_equals_lr_times_mean_gradient():
    batch = 8
    p = param([[0.5, -0.25, 1.0]])
    solver = SGD(learning_rate=0.1)
    w = p.data.astype(np.float64).copy()
    for k in range(3):
        per_stimulus = np.random.default_rng(k).normal(size=(batch, 1, 3))
        p.grad[...] = per_stimulus.sum(axis=0)
        assert solver.update(p, batch) is True
        w = w - 0.1 * per_stimulus.mean(axis=0)
        np.testing.assert_allclose(p.data, w, rtol=1e-5, atol=1e-6)


def test_sgd_momentum_decay_by_hand():
    lr, mu, decay, batch = 0.05, 0.9, 0.01, 4
    p = param([1.0, -2.0])
    solver = SGD(learning_rate=lr, momentum=mu, decay=decay)
    grads = [[0.4, -0.8], [1.2, 0.4], [-0.4, 2.0]]
    w, v = [1.0, -2.0], [0.0, 0.0]
    for g in grads:
        p.grad[...] = g
        solver.update(p, batch)
        for i in range(2):
            v[i] = mu * v[i] - lr / batch * g[i] - lr * decay * w[i]
            w[i] = w[i] + v[i]
        np.testing.assert_allclose(p.data, w, rtol=1e-6)
    assert solver.n == 3


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_sgd_momentum_in_one_compiled_pass_is_the_numpy_update_bit_for_bit(monkeypatch, decay,
                                                                           masked):
    """The CPU path (``kernels.sgd``, chunks on three worker threads) from the float64 sum
    against ``step`` on its rounded copy: the same weights and velocity, bit for bit; a
    masked Param (a grouped map's, broadcast over the kernel) at its mapped elements only."""
    from n2d2py import backend

    monkeypatch.setattr(backend, "_workers", backend._Pool(3))
    monkeypatch.setattr(backend, "MIN_CHUNK_WORK", 1)
    rng = np.random.default_rng(7)
    start = rng.standard_normal((40, 9)).astype(np.float32)
    grads = [rng.standard_normal((40, 9)) * 10.0 ** rng.uniform(-3, 3, (40, 9))
             for _ in range(4)]
    results, taken = [], []
    real = SGD._step_on_sum
    monkeypatch.setattr(SGD, "_step_on_sum", lambda *a: taken.append(real(*a)) or taken[-1])
    for fused in (True, False):
        if not fused:
            assert taken == [False, True, True, True]  # the velocity exists from step 2
            monkeypatch.setattr(SGD, "_step_on_sum", lambda *a: False)
        p = param(start.copy())
        if masked:  # (40 maps, 9 channels, 1): maps 10k..10k+9 read channels 3k..3k+2, k < 3
            p.mask = (np.arange(40)[:, None, None] // 10 == np.arange(9)[:, None] // 3)
            p.mask = p.mask.astype(np.float32)
            p.data, p.shape = start[:, :, None] * p.mask, (40, 9, 1)
        p.grad = np.zeros(p.data.shape)  # float64, as cells accumulate it
        solver = SGD(learning_rate=0.05, momentum=0.9, decay=decay)
        for g in grads:
            p.grad[...] = g.reshape(p.grad.shape) * (1 if p.mask is None else p.mask)
            solver.update(p, 16)
        results.append((p.data.copy(), solver.velocity.copy()))
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    if masked:  # the unmapped weights stayed 0, the mapped ones moved
        assert not results[0][0][p.mask == 0].any() and (results[0][0] != 0).sum() == 90


def test_sgd_clamping_forms():
    for text, expected in [("-0.5:0.5", [0.5, -0.5]), (":0.2", [0.2, -3.0]), ("0:", [3.0, 0.0])]:
        v = view(f"[c]\nSolvers.Clamping={text}\n", ["c"])
        solver = make_solver(v, "Weights")
        p = param([1.0, -1.0], grad=[-8.0, 8.0])  # w − 0.01·(∓8)/1/... with lr 0.25 below
        solver.learning_rate = 0.25
        solver.update(p, 1)
        np.testing.assert_allclose(p.data, expected)


def test_bad_clamping_is_located():
    with pytest.raises(N2D2PyError, match=r"m.ini:2: \[c\] Solvers.Clamping: expected"):
        make_solver(view("[c]\nSolvers.Clamping=1\n", ["c"]), "Weights")


def test_iteration_size_accumulates():
    p = param([1.0])
    solver = SGD(learning_rate=0.1, iteration_size=2)
    p.grad[...] = 3.0  # batch 1 (summed over 4 stimuli)
    assert solver.update(p, 4) is False
    assert p.data[0] == 1.0
    p.grad[...] += 5.0  # the cell accumulates batch 2
    assert solver.update(p, 4) is True
    assert p.data[0] == pytest.approx(1.0 - 0.1 * 8.0 / 8)
    assert solver.n == 1


def test_mask_keeps_unmapped_weights_at_zero():
    p = param([0.0, 1.0], grad=[1.0, 1.0], mask=[0.0, 1.0])
    solver = SGD(learning_rate=0.1, momentum=0.5, decay=0.1)
    for _ in range(3):
        solver.update(p, 1)
    assert p.data[0] == 0.0 and p.data[1] < 1.0


def test_policy_in_update_and_message():
    solver = SGD(learning_rate=1.0, policy="StepDecay", step_size=10, lr_decay=0.5)
    p = param([0.0], grad=[-1.0])
    lrs = []
    for _ in range(4):
        lrs.append(solver.current_lr(5))
        solver.update(p, 5)
    assert lrs == [1.0, 1.0, 0.5, 0.5]
    assert p.data[0] == pytest.approx((1.0 + 1.0 + 0.5 + 0.5) / 5)
    assert solver.lr_schedule(5, 4) == lrs


def test_step_message_on_change():
    solver = SGD(learning_rate=1.0, policy="StepDecay", step_size=10, lr_decay=0.5)
    p = param([0.0])
    messages = []
    for _ in range(3):
        solver.update(p, 5)
        messages.append(solver.message)
    assert messages == [None, None, "Learning rate after 2(x5) iteration(s): 0.5"]


def test_max_iterations_stops_the_counter():
    solver = SGD(learning_rate=1.0, policy="PolyDecay", max_iterations=2, power=1.0)
    p = param([0.0], grad=[-1.0])
    for _ in range(4):
        solver.update(p, 1)
    assert solver.n == 2
    assert p.data[0] == pytest.approx(1.0 + 0.5)


def test_global_lr_overrides_policy_but_keeps_batch_scaling():
    solver = SGD(learning_rate=0.5, policy="StepDecay", step_size=1, lr_decay=0.1)
    solver.global_lr = 0.2
    p = param([0.0], grad=[-4.0])
    for _ in range(3):
        assert solver.update(p, 4)
    assert p.data[0] == pytest.approx(3 * 0.2)
    assert solver.current_lr() == 0.2


def test_sgd_state_dict_resumes_exactly():
    grads = np.random.default_rng(1).normal(size=(6, 3)).astype(np.float32)
    a = SGD(learning_rate=0.1, momentum=0.9, policy="StepDecay", step_size=4)
    pa = param([0.1, 0.2, 0.3])
    for g in grads:
        pa.grad[...] = g
        a.update(pa, 2)
    b = SGD(learning_rate=0.1, momentum=0.9, policy="StepDecay", step_size=4)
    pb = param([0.1, 0.2, 0.3])
    for g in grads[:3]:
        pb.grad[...] = g
        b.update(pb, 2)
    c = SGD(learning_rate=0.1, momentum=0.9, policy="StepDecay", step_size=4)
    c.load_state_dict(b.state_dict())
    for g in grads[3:]:
        pb.grad[...] = g
        c.update(pb, 2)
    np.testing.assert_array_equal(pa.data, pb.data)


def test_step_size_zero_fails_on_first_use():
    v = view("[c]\nSolvers.LearningRatePolicy=StepDecay\nSolvers.LearningRateStepSize=0\n", ["c"])
    solver = make_solver(v, "Weights")  # dry runs with [sp]_EpochSize=0 still build
    with pytest.raises(N2D2PyError, match="m.ini:3: .*LearningRateStepSize: must be > 0"):
        solver.update(param([0.0]), 1)


# -- Adam -------------------------------------------------------------------------------


def test_adam_by_hand():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    p = param([0.5, -0.5])
    solver = Adam(learning_rate=lr)
    w, m, v = [0.5, -0.5], [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate([[1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]], 1):
        p.grad[...] = g
        solver.update(p, 16)
        corr = math.sqrt(1 - b2**t)
        alpha = lr * corr / (1 - b1**t)
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            w[i] -= alpha * m[i] / (math.sqrt(v[i]) + eps * corr)
        np.testing.assert_allclose(p.data, w, rtol=1e-6)
    state = solver.state_dict()
    assert state["t"] == 3 and state["m"].shape == (2,)


# -- configuration ----------------------------------------------------------------------

CONFIG = """
[common.config]
Solvers.LearningRate=0.1
Solvers.Momentum=0.9
WeightsSolver.Decay=0.5
[fc.config]
Solvers.LearningRate=0.2
WeightsSolver.LearningRate=0.3
[late.config]
Solvers.Decay=0.7
"""


def test_defaults():
    s = make_solver(view(CONFIG, []), "Weights")
    assert (s.learning_rate, s.momentum, s.decay, s.iteration_size) == (0.01, 0.0, 0.0, 1)
    assert (s.policy_name, s.step_size, s.lr_decay, s.clamping) == ("None", 1, 0.1, (None, None))
    assert (s.warm_up_duration, s.warm_up_lr_frac, s.min_decay) == (0, 0.25, 0.0)
    a = make_solver(view(CONFIG, []), "Bias", "Adam")
    assert (a.learning_rate, a.beta1, a.beta2, a.epsilon) == (0.001, 0.9, 0.999, 1e-8)


def test_role_prefix_beats_solvers_and_later_section_wins():
    chain = ["common.config", "fc.config"]
    w = make_solver(view(CONFIG, chain), "Weights")
    b = make_solver(view(CONFIG, chain), "Bias")
    assert w.learning_rate == 0.3 and b.learning_rate == 0.2  # fc.config over common.config
    assert w.momentum == 0.9 and b.momentum == 0.9
    assert w.decay == 0.5 and b.decay == 0.0


def test_role_prefix_in_earlier_section_beats_solvers_in_later_one():
    # N2D2 merges the chain, then applies Solvers.* and then WeightsSolver.* over it.
    w = make_solver(view(CONFIG, ["common.config", "late.config"]), "Weights")
    b = make_solver(view(CONFIG, ["common.config", "late.config"]), "Bias")
    assert w.decay == 0.5 and b.decay == 0.7


def test_unknown_names_are_located():
    with pytest.raises(N2D2PyError, match="unknown solver 'Adamm'; did you mean 'Adam'"):
        make_solver(view(CONFIG, []), "Weights", "Adamm")
    v = view("[c]\nSolvers.LearningRatePolicy=StepDecy\n", ["c"])
    with pytest.raises(N2D2PyError, match=r"m.ini:2: .*did you mean 'StepDecay'"):
        make_solver(v, "Weights")


def test_solvers_module_does_not_import_numpy():
    import n2d2py.solvers as mod

    text = open(mod.__file__).read()
    assert "import numpy" not in text


# -- optional comparison with torch ------------------------------------------------------


def test_matches_torch_sgd_with_constant_lr():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)).astype(np.float32)
    batch, lr, mu, decay = 5, 0.05, 0.9, 0.001
    p = param(w0)
    ours = SGD(learning_rate=lr, momentum=mu, decay=decay)
    tw = torch.tensor(w0, requires_grad=True)
    # torch: b ← μb + g + λw, w ← w − lr·b; N2D2: v ← μv − lr·g − lr·λw. Same trajectory with a
    # constant lr (v = −lr·b); they differ once lr changes between steps.
    opt = torch.optim.SGD([tw], lr=lr, momentum=mu, weight_decay=decay)
    for k in range(5):
        g = rng.normal(size=(batch, 4, 3)).astype(np.float32)
        p.grad[...] = g.sum(axis=0)
        ours.update(p, batch)
        opt.zero_grad()
        tw.grad = torch.tensor(g.mean(axis=0))
        opt.step()
    np.testing.assert_allclose(p.data, tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_fractional_counts_are_floored_with_a_warning():
    messages = []
    doc = parse_text("[c]\nSolvers.MaxIterations=$(100 / 8)\n", "m.ini",
                     Diagnostics(stream=open("/dev/null", "w")))
    doc.diagnostics.messages = messages
    solver = make_solver(Section(doc, ["c"]), "Weights")
    assert solver.max_iterations == 12
    assert "12.5 is not an integer; using 12" in messages[0]
