"""Name → class registries, keyed by the exact (case-sensitive) INI ``Type=`` strings.

Classes register themselves where they are defined; each package's ``__init__`` imports all of
its modules so that every name is registered once ``n2d2py.network`` (and, for STIMULI and
TRANSCODERS, ``n2d2py.spike``) is imported.

One contract per kind: each registry names the base class (or Protocol) its entries are, where
that contract is written (beside the entries), and the members an entry must define itself.
``register`` records what an entry lacks of it (``violations``); ``tests/test_conformance.py``
fails on any, then runs every entry through the public path it serves (the CLI), and fails
for a registered name that has no case there.
"""

import importlib
from typing import Protocol

from n2d2py.errors import N2D2PyError, did_you_mean


class Registry:
    """``kind``: the noun used in messages. ``contract``: ``"module:Name"`` of the base class or
    Protocol the entries follow (imported when the first entry registers: the entries' module
    imports it anyway). ``required``: the members an entry must define itself (for a base
    class: override; for a Protocol: have); ``"a|b"``: either."""

    def __init__(self, kind, contract, required=()):
        self.kind = kind
        self.contract_path = contract
        self.required = tuple(required)
        self.violations = []  # contract problems of registered entries (tests/test_conformance.py)
        self._items = {}
        self._not_yet = {}  # N2D2 names known but not supported yet → what they are

    @property
    def contract(self):
        module, _, name = self.contract_path.partition(":")
        return getattr(importlib.import_module(module), name)

    def contract_problem(self, obj, name):
        """What ``obj`` (registered as ``name``) lacks of the kind's contract, or None."""
        base = self.contract
        what = f"{self.kind} '{name}' ({getattr(obj, '__qualname__', obj)!s})"
        where = f"(contract: {self.contract_path})"
        if Protocol in getattr(base, "__mro__", ()):
            has = lambda member: hasattr(obj, member)  # noqa: E731
        else:
            if not (isinstance(obj, type) and issubclass(obj, base)):
                return f"{what} must subclass {base.__name__} {where}"
            own = obj.__mro__[: obj.__mro__.index(base)]
            has = lambda member: any(member in k.__dict__ for k in own)  # noqa: E731
        # "a|b": either member will do
        missing = [m for m in self.required if not any(has(a) for a in m.split("|"))]
        if missing:
            return f"{what} does not define {', '.join(missing)} {where}"
        return None

    def register(self, *names):
        """Class decorator: register under every given name (the first one is canonical)."""

        def deco(obj):
            problem = self.contract_problem(obj, names[0])
            if problem:  # kept, not raised: the conformance test fails on it, imports go on
                self.violations.append(problem)
            for name in names:
                if name in self._items:
                    raise RuntimeError(f"{self.kind} '{name}' registered twice")
                self._items[name] = obj
            if not hasattr(obj, "type_name"):
                obj.type_name = names[0]
            return obj

        return deco

    def refuse(self, name, what):
        """An N2D2 ``name`` that is not supported yet: ``get`` says so, naming ``what`` it is."""
        self._not_yet[name] = what

    def get(self, name, where=None):
        """The class registered as ``name``; ``where`` is a Prop (or None) for the error."""
        try:
            return self._items[name]
        except KeyError:
            pass
        if name in self._not_yet:
            message = f"{self.kind} '{name}' ({self._not_yet[name]}) is not supported yet"
        else:
            hint = did_you_mean(name, self._items, cutoff=0.5)
            message = f"unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names())})"
        if where is not None:
            raise N2D2PyError(message, where.file, where.line, where.section, where.key)
        raise N2D2PyError(message)

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items


class Target(Protocol):
    """What every ``[<cell>.Target] Type=`` entry is (TargetScore is the reference): built by
    ``from_section(sec, cell_name, nb_outputs, label_names)``; ``loss_grad(y, labels)`` →
    (dL/dy, loss) for learning; ``process(set, y, labels, ids)`` scores a batch into
    ``scores(set)``; ``estimate``/``targets_of``/``output_names`` for the figures; the logs of
    a run folder: ``write_labels_mapping``, ``record_success``, ``write_logs``, ``folder``."""

    def loss_grad(self, y, labels): ...

    def process(self, set_name, y, labels, ids=None): ...

    def scores(self, set_name): ...


TARGET_MEMBERS = ("from_section", "loss_grad", "process", "scores", "estimate", "targets_of",
                  "output_names", "write_labels_mapping", "record_success", "write_logs", "folder")


class Transcoder(Protocol):
    """What every TRANSCODERS entry is, keyed by the formal cell type it transcodes:
    ``from_cell(cell)`` when a Transcode model is built (it reads the cell's spike keys, so
    that typos are reported before anything runs), then ``layer(cell, scales, settings)`` → the
    spiking layer (n2d2py.spike.layers) with the cell's current weights."""

    def layer(self, cell, scales, settings): ...


CELLS = Registry("cell type", "n2d2py.cells.base:Cell", ("from_section", "_forward", "_backward"))
ACTIVATIONS = Registry("activation", "n2d2py.activations:Activation", ("forward", "backward"))
FILLERS = Registry("filler", "n2d2py.fillers:Filler", ("from_section", "_draw"))
SOLVERS = Registry("solver", "n2d2py.solvers:Solver", ("from_section", "step"))
LR_POLICIES = Registry("learning-rate policy", "n2d2py.lr_policies:LRPolicy",
                       ("__call__", "step_based"))
DATABASES = Registry("database", "n2d2py.data.databases:Database", ("_read|load",))
TRANSFORMATIONS = Registry("transformation", "n2d2py.data.transformations:Transformation",
                           ("apply|apply_batch",))
TARGETS = Registry("target", "n2d2py.registry:Target", TARGET_MEMBERS)
STIMULI = Registry("stimulus coding", "n2d2py.spike.coding:Coding", ("kind",))
TRANSCODERS = Registry("transcoder", "n2d2py.registry:Transcoder", ("from_cell", "layer"))

# The INI key each kind answers (for messages): [layer] Type=Conv, ActivationFunction=Rectifier,
# WeightsFiller=HeFiller, Solvers=SGD|Adam, Solvers.LearningRatePolicy=StepDecay,
# [database] Type=MNIST_IDX_Database, [sp.Transformation*] Type=RescaleTransformation,
# [cell.Target] Type=TargetScore, [env] config StimulusType=JitteredPeriodic; TRANSCODERS:
# formal cell type → spiking layer (Transcode models).
