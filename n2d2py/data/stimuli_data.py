"""``[<sp>.StimuliData*]`` blocks: value statistics of a stimuli set (spec §1.5, §4.3).

N2D2 computes, when the block is met while building the provider, the minimum, maximum,
mean and standard deviation of every value of the stimuli of the sets chosen by ``ApplyTo``
(all sets by default), read through the transformations written *before* the block, and
writes them as the generated keys ``_GlobalValue.minVal``, ``.maxVal``, ``.mean`` and
``.stdDev`` of the block's section. ``cifar-10.ini`` standardises its input with them::

    [sp.StimuliData-normalize]
    ApplyTo=LearnOnly
    [sp.Transformation-normalize]
    Type=RangeAffineTransformation
    FirstOperator=Minus
    FirstValue=[sp.StimuliData-normalize]_GlobalValue.mean
    ...

A stimulus read with no transformation is taken as its raw values (0–255 for bytes); after
transformations, as the provider delivers it (integer data mapped to [0, 1]). Until the data
is loaded (a dry run), the keys hold placeholders (min 0, max 1, mean 0, std. dev. 1).
"""

import numpy as np

from n2d2py.data.transformations import APPLY_TO, applies

SETS = ("Learn", "Validation", "Test")
PLACEHOLDERS = {"minVal": 0.0, "maxVal": 1.0, "mean": 0.0, "stdDev": 1.0}
CHUNK = 1024


class StimuliData:
    """One statistics block: its section, the sets it reads, where it sits in the file."""

    def __init__(self, section, apply_to="All", order=0, view=None):
        self.section = section
        self.apply_to = apply_to
        self.order = order
        self.view = view
        self.values = dict(PLACEHOLDERS)

    @classmethod
    def from_section(cls, view, order):
        apply_to = view.get_enum("ApplyTo", APPLY_TO, "All")
        view.get_bool("LogSizeRange", False)  # N2D2's plots of the size and value ranges;
        view.get_bool("LogValueRange", False)  # n2d2py does not draw them
        for key in ("MeanData", "StdDevData"):
            if view.get_bool(key, False):
                raise view.error(key, f"{key}=1 (per-pixel statistics files) is not "
                                 "supported yet")
        block = cls(view.name, apply_to, order, view)
        block.publish()
        return block

    def publish(self):
        """Write the ``_GlobalValue.*`` keys into the block's section."""
        if self.view is None:
            return
        for key, value in self.values.items():
            self.view.doc.set_generated(self.section, f"_GlobalValue.{key}", repr(float(value)))

    def sets(self):
        return [s for s in SETS if applies(self.apply_to, s)]

    def compute(self, database, steps, finish, pipeline):
        """Statistics over the chosen sets; ``steps`` are those before the block (all sets),
        ``finish(imgs)`` maps integer data to [0, 1], ``pipeline(imgs, steps, rng)`` runs
        steps. Returns and publishes {minVal, maxVal, mean, stdDev}."""
        acc = _Accumulator()
        rng = np.random.default_rng(0)
        for set_name in self.sets():
            before = [s for s in steps if s.transform.applies_to(set_name)]
            n = database.size(set_name)
            for start in range(0, n, CHUNK):
                imgs = database.images(set_name, np.arange(start, min(start + CHUNK, n)))
                if before:
                    imgs = finish(pipeline(imgs, before, rng))
                for x in (imgs if isinstance(imgs, list) else [imgs]):
                    acc.add(np.asarray(x, np.float64))
        if acc.count:
            self.values = acc.result()
        self.publish()
        return dict(self.values)


class _Accumulator:
    """Running min, max, mean and population standard deviation of many arrays."""

    def __init__(self):
        self.count = 0
        self.shift = None
        self.s1 = self.s2 = 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, x):
        if x.size == 0:
            return
        if self.shift is None:
            self.shift = float(x.mean())  # shifted sums keep the variance accurate
        d = x - self.shift
        self.count += x.size
        self.s1 += float(d.sum())
        self.s2 += float((d * d).sum())
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))

    def result(self):
        mean = self.s1 / self.count
        var = max(self.s2 / self.count - mean * mean, 0.0)
        return {"minVal": self.lo, "maxVal": self.hi, "mean": self.shift + mean,
                "stdDev": float(np.sqrt(var))}
