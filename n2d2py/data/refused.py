"""Database types N2D2's model files name that n2d2py does not read yet: each is refused by
name with one line, instead of "unknown database".

``N_MNIST_Database`` (N-MNIST: event streams from a neuromorphic camera) is used by N2D2 only
with spiking (STDP) learning, itself not supported yet (``n-mnist-stdp.ini``).
"""

from n2d2py.data.databases import Database
from n2d2py.registry import DATABASES

WHY = {
    "N_MNIST_Database": "N-MNIST event streams are read by N2D2 for spiking (STDP) learning "
                        "only, which n2d2py does not support yet",
}


class Refused(Database):
    """Raises a "not supported yet" error naming the [database] Type."""

    @classmethod
    def from_section(cls, sec):
        raise sec.error(None, f"Type={cls.type_name} is not supported yet: {WHY[cls.type_name]}")

    def load(self, rng):
        raise NotImplementedError(WHY[self.type_name])


@DATABASES.register("N_MNIST_Database")
class N_MNIST_Database(Refused):
    pass
