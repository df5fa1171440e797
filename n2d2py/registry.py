"""Name → class registries, keyed by the exact (case-sensitive) INI ``Type=`` strings.

Classes register themselves where they are defined; each package's ``__init__`` imports all of
its modules so that every name is registered once ``n2d2py.network`` is imported.
"""

from n2d2py.errors import N2D2PyError, did_you_mean


class Registry:
    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, *names):
        """Class decorator: register under every given name (the first one is canonical)."""

        def deco(obj):
            for name in names:
                if name in self._items:
                    raise RuntimeError(f"{self.kind} '{name}' registered twice")
                self._items[name] = obj
            if not hasattr(obj, "type_name"):
                obj.type_name = names[0]
            return obj

        return deco

    def get(self, name, where=None):
        """The class registered as ``name``; ``where`` is a Prop (or None) for the error."""
        try:
            return self._items[name]
        except KeyError:
            pass
        hint = did_you_mean(name, self._items, cutoff=0.5)
        message = f"unknown {self.kind} '{name}'{hint} (known: {', '.join(self.names())})"
        if where is not None:
            raise N2D2PyError(message, where.file, where.line, where.section, where.key)
        raise N2D2PyError(message)

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items


CELLS = Registry("cell type")  # [layer] Type=Conv, Pool, Fc, Dropout, Softmax, ...
ACTIVATIONS = Registry("activation")  # ActivationFunction=Rectifier, Tanh, ...
FILLERS = Registry("filler")  # WeightsFiller=HeFiller, XavierFiller, ...
SOLVERS = Registry("solver")  # Solvers=SGD | Adam
LR_POLICIES = Registry("learning-rate policy")  # Solvers.LearningRatePolicy=StepDecay, ...
DATABASES = Registry("database")  # [database] Type=MNIST_IDX_Database, ...
TRANSFORMATIONS = Registry("transformation")  # [sp.Transformation*] Type=RescaleTransformation, ...
TARGETS = Registry("target")  # [cell.Target] Type=TargetScore (default)
STIMULI = Registry("stimulus coding")  # [env] config StimulusType=JitteredPeriodic, ...
TRANSCODERS = Registry("transcoder")  # formal cell type → spiking layer
