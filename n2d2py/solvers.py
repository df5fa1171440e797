"""Solvers: one update rule per Param, holding its own state (spec §3.6); the learning-rate
policies they share are in ``lr_policies``.

Gradients arrive in ``param.grad`` with the standard sign (∂L/∂w) and SUMMED over the batch,
in float64 (``Param``); ``update`` rounds them to the data's dtype once and hands that to
``step``. A solver descends by subtracting. With ``IterationSize`` k > 1 the caller keeps accumulating
into ``param.grad`` (cells add to it) and zeroes it only when ``update`` returns True, i.e.
after the k-th call, so one step sees the gradient summed over k·B stimuli.
"""

import abc
import math

from n2d2py import backend
from n2d2py.backend import array_module, to_host
from n2d2py.ini.section import Section
from n2d2py.lr_policies import lr_step  # noqa: F401  (also fills LR_POLICIES)
from n2d2py.registry import LR_POLICIES, SOLVERS

# -- helpers ----------------------------------------------------------------------------


def parse_clamping(view, key="Clamping"):
    """``min:max``, ``:max``, ``min:`` or empty → (lo or None, hi or None)."""
    text = view.get_str(key, "")
    if not text:
        return None, None
    if ":" not in text:
        raise view.error(key, f'expected "min:max", ":max" or "min:" (e.g. -1.0:1.0), got "{text}"')
    bounds = []
    for part in text.split(":", 1):
        part = part.strip()
        try:
            bounds.append(float(part) if part else None)
        except ValueError:
            raise view.error(key, f'expected "min:max" with numbers, got "{text}"') from None
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:
        raise view.error(key, f"empty clamping range {text} (min > max)")
    return lo, hi


def _count(view, key, default):
    """A non-negative integer; a fractional value (``$(a / b)`` under Python 3) is floored
    with a warning, as the Python 2 that N2D2's models were written for would have computed."""
    value = view.get_float(key, default)
    if value < 0:
        raise view.error(key, f"expected a non-negative integer, got {value:g}")
    if value != int(value):
        view.doc.warn(f"{value:g} is not an integer; using {int(value)}", view.prop(key))
    return int(value)


def _apply(param, step, lo, hi):
    """w ← clamp(w + step), unmapped (mask 0) weights kept at 0; in place."""
    xp, w = array_module(param.data), param.data
    w += step
    if lo is not None or hi is not None:
        xp.clip(w, lo, hi, out=w)
    if param.mask is not None:
        w *= param.mask


class _SolverView(Section):
    """N2D2's precedence: ``<Role>Solver.X`` anywhere in the chain beats ``Solvers.X``."""

    def lookup(self, key):
        for prefix in self.prefixes:
            found = Section(self.doc, self.names, (prefix,), label=self.name).lookup(key)
            if found[1] is not None:
                return found
        return None, None


def make_solver(config_view, role, type_name="SGD", where=None):
    """Solver ``type_name`` for a Param of ``role``, parameters from the ConfigSection chain.

    Keys: ``<role>Solver.X`` then ``Solvers.X`` (the role-specific key wins wherever it is in
    the chain; for one prefix, later config sections win). ``where``: the Prop of the type key.
    """
    cls = SOLVERS.get(type_name, where=where)
    prefixes = (f"{role}Solver.", "Solvers.")
    view = _SolverView(config_view.doc, config_view.names, prefixes, label=config_view.name)
    return cls.from_section(view)


# -- the contract of every SOLVERS entry ------------------------------------------------------


class Solver(abc.ABC):
    """What every ``Solvers=`` type is: one instance per Param, holding its own state.

    The learning-rate schedule is shared: ``LearningRate``, ``LearningRatePolicy`` and its keys,
    ``IterationSize`` (gradients of k batches summed into one step), ``MaxIterations`` and
    ``Clamping`` mean the same for every solver, and so do ``global_lr`` (-find-lr's override),
    ``current_lr``, ``lr_schedule`` (the rates written to ``schedule/``), ``message`` (the
    "Learning rate after ..." line) and the resumable counters of ``state_dict``. A subclass
    reads its own keys in ``from_section`` (``schedule_keys(view)`` gives the shared ones),
    implements ``step`` (one update at rate α) and adds its arrays to the state.
    """

    def __init__(self, learning_rate=0.01, policy="None", iteration_size=1, max_iterations=0,
                 step_size=1, lr_decay=0.1, power=0.0, warm_up_duration=0, warm_up_lr_frac=0.25,
                 min_decay=0.0, clamping=(None, None)):
        self.learning_rate = float(learning_rate)
        self.power = float(power)
        self.iteration_size = max(1, int(iteration_size))
        self.max_iterations = int(max_iterations)
        self.policy_name = policy
        self.policy = LR_POLICIES.get(policy)
        self.step_size = int(step_size)
        self.lr_decay = float(lr_decay)
        self.clamping = tuple(clamping)
        self.warm_up_duration = int(warm_up_duration)
        self.warm_up_lr_frac = float(warm_up_lr_frac)
        self.min_decay = float(min_decay)
        self.global_lr = None  # -find-lr override: replaces α and skips the policy
        self.n = 0  # updates done so far (stops at MaxIterations when > 0)
        self.pass_ = 0  # batches accumulated towards the next update (IterationSize)
        self.message = None  # "Learning rate after ..." when the step changed at the last update
        self.invalid = None  # a deferred N2D2PyError (e.g. a step size of [sp]_EpochSize = 0)
        self._batch_size = 1

    # -- reading ------------------------------------------------------------------------
    @classmethod
    @abc.abstractmethod
    def from_section(cls, view):
        """The solver of the ``<Role>Solver.``/``Solvers.`` view (see make_solver)."""

    @staticmethod
    def schedule_keys(view, default_rate):
        """The shared keys, as constructor arguments."""
        policy = view.get_str("LearningRatePolicy", "None")
        LR_POLICIES.get(policy, where=view.prop("LearningRatePolicy"))
        iteration_size = view.get_uint("IterationSize", 1)
        if iteration_size == 0:
            raise view.error("IterationSize", "must be at least 1")
        return dict(
            learning_rate=view.get_float("LearningRate", default_rate),
            policy=policy,
            iteration_size=iteration_size,
            max_iterations=_count(view, "MaxIterations", 0),
            step_size=_count(view, "LearningRateStepSize", 1),
            lr_decay=view.get_float("LearningRateDecay", 0.1),
            power=view.get_float("Power", 0.0),
            warm_up_duration=view.get_uint("WarmUpDuration", 0),
            warm_up_lr_frac=view.get_float("WarmUpLRFrac", 0.25),
            min_decay=view.get_float("MinDecay", 0.0),
            clamping=parse_clamping(view),
        )

    def _check(self, view):
        """The first inconsistency of the policy parameters, as an error raised on first use."""
        name = self.policy_name
        if self.policy.step_based and self.step_size <= 0:
            return view.error("LearningRateStepSize", f"must be > 0 for {name}")
        if name in ("PolyDecay", "CosineDecay") and self.max_iterations <= 0:
            return view.error("MaxIterations", f"must be > 0 for {name}")
        if name == "CosineDecay" and self.max_iterations <= self.warm_up_duration:
            return view.error("MaxIterations", "must be larger than WarmUpDuration for CosineDecay")
        return None

    # -- the schedule ---------------------------------------------------------------------
    def lr_at(self, n, batch_size):
        """α given by the policy after ``n`` updates."""
        if self.invalid is not None:
            raise self.invalid
        return self.policy(self.learning_rate, n, batch_size * self.iteration_size, self)

    def current_lr(self, batch_size=None):
        """The α that the next update uses (the global override if set)."""
        if self.global_lr is not None:
            return self.global_lr
        return self.lr_at(self.n, batch_size or self._batch_size)

    def _next_lr(self, batch_size):
        """α for this update, advancing the update counter as N2D2 does."""
        lr = self.lr_at(self.n, batch_size)
        spu = batch_size * self.iteration_size
        self.message = None
        if self.policy.step_based and self.n > 0:
            if lr_step(self.n, spu, self) != lr_step(self.n - 1, spu, self):
                self.message = f"Learning rate after {self.n}(x{spu}) iteration(s): {lr:g}"
        if self.max_iterations == 0 or self.n < self.max_iterations:
            self.n += 1
        return lr

    def lr_schedule(self, batch_size, nb_batches):
        """α applied at each of the next ``nb_batches`` batches from a fresh start (0 = no step)."""
        saved = (self.n, self.pass_, self.message)
        self.n, self.pass_ = 0, 0
        out = []
        try:
            for _ in range(nb_batches):
                if self.pass_ < self.iteration_size - 1:
                    self.pass_ += 1
                    out.append(0.0)
                else:
                    self.pass_ = 0
                    out.append(self._next_lr(batch_size))
        finally:
            self.n, self.pass_, self.message = saved
        return out

    # -- updating -------------------------------------------------------------------------
    def update(self, param, batch_size):
        """One call per batch; steps (returns True) every IterationSize calls."""
        self._batch_size = batch_size
        if self.global_lr is not None:
            lr = self.global_lr  # N2D2: the override bypasses accumulation and the policy
        else:
            if self.learning_rate == 0.0:
                return True
            if self.pass_ < self.iteration_size - 1:
                self.pass_ += 1
                return False
            self.pass_ = 0
            lr = self._next_lr(batch_size)
        if lr == 0.0:
            return True
        if not self._step_on_sum(param, lr, batch_size * self.iteration_size):
            grad = param.grad.astype(param.data.dtype)  # the one rounding of the float64 sum
            self.step(param, grad, lr, batch_size * self.iteration_size)
        return True

    def _step_on_sum(self, param, lr, nb_stimuli):
        """``step`` computed on the float64 ``param.grad`` itself, each element rounded as it
        is read (one compiled pass, the same values), where a solver has such a path on this
        Param; False where it has not (``update`` then rounds a copy and calls ``step``)."""
        return False

    @abc.abstractmethod
    def step(self, param, grad, lr, nb_stimuli):
        """Update ``param.data`` in place at rate ``lr``; ``grad`` is ``param.grad`` (the
        gradient summed over ``nb_stimuli`` stimuli) in the data's dtype. Clamping and the
        mask: ``_apply``."""

    # -- resuming ---------------------------------------------------------------------------
    def state_dict(self):
        """The counters and the subclass's arrays (``_arrays``), host copies."""
        state = {"type": type(self).__name__, "n": self.n, "pass": self.pass_}
        state.update({k: _snapshot(v) for k, v in self._arrays().items()})
        return state

    def load_state_dict(self, state):
        self.n = int(state["n"])
        self.pass_ = int(state["pass"])
        self._load_arrays(state)

    def _arrays(self):
        return {}

    def _load_arrays(self, state):
        pass


# -- solvers ----------------------------------------------------------------------------


@SOLVERS.register("SGD")
class SGD(Solver):
    """N2D2's SGD: v ← μv − α/(B·k)·Σgrad − α·Decay·w; w ← clamp(w + v); policy on α."""

    def __init__(self, learning_rate=0.01, momentum=0.0, decay=0.0, polyak_momentum=True,
                 **schedule):
        super().__init__(learning_rate, **schedule)
        self.momentum = float(momentum)
        self.decay = float(decay)
        self.polyak_momentum = bool(polyak_momentum)
        self.velocity = None
        self._mapped_at = self._mapped_of = None  # ``_mapped``'s indices, and of which mask

    @classmethod
    def from_section(cls, view):
        solver = cls(
            momentum=view.get_float("Momentum", 0.0),
            decay=view.get_float("Decay", 0.0),
            polyak_momentum=view.get_bool("PolyakMomentum", True),
            **cls.schedule_keys(view, 0.01),
        )
        solver.invalid = solver._check(view)
        return solver

    def _step_on_sum(self, param, lr, nb_stimuli):
        """The momentum path of ``step`` as one compiled pass on the CPU (``kernels.sgd``),
        chunks of the weights on the worker threads, for a Param without clamping; a masked
        one at its mapped elements only (the others' update is 0: ``step`` multiplies it by
        the mask)."""
        w, v, kernels = param.data, self.velocity, backend.cpu_kernels(param.data)
        if (kernels is None or self.momentum == 0.0 or self.clamping != (None, None)
                or v is None or v.dtype != w.dtype or array_module(v) is not array_module(w)
                or not w.flags.c_contiguous or not v.flags.c_contiguous
                or not param.grad.flags.c_contiguous):
            return False
        cast = w.dtype.type
        m, r, d = cast(self.momentum), cast(lr / nb_stimuli), cast(lr * self.decay)
        flat_g, flat_v, flat_w = param.grad.reshape(-1), v.reshape(-1), w.reshape(-1)
        if param.mask is None:
            kernel = kernels.sgd_momentum(self.decay != 0.0, w.dtype)
            unused = array_module(w).empty(0, dtype=array_module(w).intp)  # ``at``: not read
            backend.run_split(backend.split_batch(flat_w, flat_w.size, flat_w.size * 4),
                              lambda a, b: kernel(flat_g[a:b], flat_v[a:b], flat_w[a:b], unused,
                                                  m, r, d))
            return True
        mapped = self._mapped(param)
        kernel = kernels.sgd_momentum(self.decay != 0.0, w.dtype, True)
        backend.run_split(backend.split_batch(mapped, mapped.size, mapped.size * 4),
                          lambda a, b: kernel(flat_g, flat_v, flat_w, mapped[a:b], m, r, d))
        return True

    def _mapped(self, param):
        """The flat indices of ``param``'s mapped elements (its mask, broadcast), kept."""
        if self._mapped_of is not param.mask:
            xp = array_module(param.data)
            full = xp.broadcast_to(param.mask != 0, param.shape)
            self._mapped_at, self._mapped_of = xp.flatnonzero(full), param.mask
        return self._mapped_at

    def step(self, param, grad, lr, nb_stimuli):
        xp = array_module(param.data)
        rate = lr / nb_stimuli
        if self.momentum == 0.0 and self.decay == 0.0:
            step = -rate * grad
        else:  # in place on the velocity: the same float operations, no temporaries
            if self.velocity is None:
                self.velocity = xp.zeros_like(param.data)
            elif array_module(self.velocity) is not xp:
                self.velocity = xp.array(self.velocity)  # loaded from a checkpoint
            v = self.velocity
            v *= self.momentum
            v -= rate * grad
            if self.decay != 0.0:
                v -= (lr * self.decay) * param.data
            if param.mask is not None:
                v *= param.mask
            step = v
        _apply(param, step, *self.clamping)

    def _arrays(self):
        return {"velocity": self.velocity}

    def _load_arrays(self, state):
        velocity = state.get("velocity")  # host array; moved to the device on next update
        self.velocity = None if velocity is None else velocity.copy()  # updated in place

    def __repr__(self):
        return (f"SGD(lr={self.learning_rate:g}, momentum={self.momentum:g}, decay={self.decay:g}, "
                f"policy={self.policy_name})")


@SOLVERS.register("Adam")
class Adam(Solver):
    """N2D2's Adam on the summed batch gradient (no 1/B). N2D2's Adam has no policy and no
    IterationSize (it refuses those keys); here the shared schedule applies to α as for SGD,
    so a model valid for N2D2 learns the same, and a schedule on Adam does what it says."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, **schedule):
        super().__init__(learning_rate, **schedule)
        self.beta1 = float(beta1)
        self.beta2 = float(beta2)
        self.epsilon = float(epsilon)
        self.t = 0
        self.m = None
        self.v = None

    @classmethod
    def from_section(cls, view):
        solver = cls(
            beta1=view.get_float("Beta1", 0.9),
            beta2=view.get_float("Beta2", 0.999),
            epsilon=view.get_float("Epsilon", 1e-8),
            **cls.schedule_keys(view, 0.001),
        )
        solver.invalid = solver._check(view)
        return solver

    def step(self, param, grad, lr, nb_stimuli):
        """m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w − α·√(1−β₂ᵗ)/(1−β₁ᵗ)·m/(√v + ε√(1−β₂ᵗ))."""
        xp = array_module(param.data)
        self.t += 1
        g = grad
        m = xp.zeros_like(param.data) if self.m is None else xp.asarray(self.m)
        v = xp.zeros_like(param.data) if self.v is None else xp.asarray(self.v)
        self.m = self.beta1 * m + (1.0 - self.beta1) * g
        self.v = self.beta2 * v + (1.0 - self.beta2) * (g * g)
        correction = math.sqrt(1.0 - self.beta2**self.t)
        alpha = lr * correction / (1.0 - self.beta1**self.t)
        step = -alpha * self.m / (xp.sqrt(self.v) + self.epsilon * correction)
        _apply(param, step, *self.clamping)

    def state_dict(self):
        return {**super().state_dict(), "t": self.t}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.t = int(state["t"])

    def _arrays(self):
        return {"m": self.m, "v": self.v}

    def _load_arrays(self, state):
        self.m = state.get("m")
        self.v = state.get("v")

    def __repr__(self):
        return f"Adam(lr={self.learning_rate:g}, beta1={self.beta1:g}, beta2={self.beta2:g})"


def _snapshot(a):
    """A host copy of a state array (None while the state is not allocated yet)."""
    return None if a is None else to_host(a, copy=True)
