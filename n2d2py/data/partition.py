"""N2D2's Learn/Validation/Test partitioning of loaded stimuli (DIR_Database, CSV_Database).

Stimuli are loaded into an *unpartitioned* pool; each ``[database]`` (or ``LoadMore``)
section then moves stimuli from the pool to the three sets:

- ``PerLabelPartitioning=1`` (default): ``Learn``/``Validation``/``Test`` are fractions
  taken per label; with ``EquivLabelPartitioning=1`` (default) of the smallest label's
  count, so every label gets the same number of Learn and Validation stimuli. Whatever is
  left in the pool (stimuli beyond that count, or without a label) then goes to Test.
- ``PerLabelPartitioning=0``: ``Learn``/``Validation``/``Test`` are numbers of stimuli
  drawn from the pool regardless of labels; ``Test`` defaults to what is left.

Counts are rounded as N2D2 does: Learn half-up, Validation + Test half-down. Draws are
random (the run's seeded generator) unless ``RandomPartitioning=0``, which takes the pool
in loading order.
"""

import math
from dataclasses import dataclass

import numpy as np

SETS = ("Learn", "Validation", "Test")


def half_up(x):
    return int(math.floor(x + 0.5))


def half_down(x):
    return int(math.ceil(x - 0.5))


@dataclass
class Split:
    """The partitioning keys of one database section."""

    learn: float
    validation: float = 0.0
    test: float = None  # None: the rest
    per_label: bool = True
    equiv_label: bool = True

    @classmethod
    def from_section(cls, sec, learn_default=None, validation_default=0.0):
        per_label = sec.get_bool("PerLabelPartitioning", True)
        learn = sec.get_float("Learn") if learn_default is None else sec.get_float(
            "Learn", learn_default)
        split = cls(learn, sec.get_float("Validation", validation_default),
                    sec.get_float("Test", None), per_label,
                    sec.get_bool("EquivLabelPartitioning", True))
        for key in ("Learn", "Validation", "Test"):
            value = getattr(split, key.lower())
            if value is not None and value < 0:
                raise sec.error(key, f"must not be negative, got {value}")
            if value is not None and not per_label and not float(value).is_integer():
                raise sec.error(key, f"with PerLabelPartitioning=0, {key} is a number of "
                                f"stimuli (N2D2), got {value}")
        if per_label:
            total = split.learn + split.validation + (split.test or 0.0)
            if split.learn + split.validation > 1.0 or total > 1.0 + 1e-12:
                key = "Test" if split.test is not None else "Validation"
                raise sec.error(key, "Learn + Validation (+ Test) fractions exceed 1")
        return split


class Pool:
    """The unpartitioned stimuli and the three sets being filled (lists of ids)."""

    def __init__(self, rng, random=True):
        self.rng = rng
        self.random = random
        self.unpartitioned = []
        self.sets = {name: [] for name in SETS}

    def add(self, ids):
        self.unpartitioned.extend(int(i) for i in ids)

    def _take(self, candidates, count):
        """``count`` ids of ``candidates`` (random or the first ones), in draw order."""
        count = min(count, len(candidates))
        if self.random:
            return [candidates[i] for i in self.rng.permutation(len(candidates))[:count]]
        return list(candidates[:count])

    def _remove_partitioned(self):
        done = set()
        for ids in self.sets.values():
            done.update(ids)
        self.unpartitioned = [i for i in self.unpartitioned if i not in done]

    def split(self, split, labels):
        """Partition the pool with ``split``; ``labels`` maps every id to its label."""
        if split.per_label:
            self._per_label(split, labels)
            self._remove_partitioned()
            self.sets["Test"].extend(self._take(self.unpartitioned, len(self.unpartitioned)))
            self.unpartitioned = []
            return
        n = len(self.unpartitioned)
        learn, validation = int(split.learn), int(split.validation)
        test = n - learn - validation if split.test is None else int(split.test)
        if learn + validation + test > n:
            raise ValueError(f"Learn + Validation + Test = {learn + validation + test} "
                             f"stimuli, but only {n} are left to partition")
        for name, count in zip(SETS, (learn, validation, test)):
            self.sets[name].extend(self._take(self.unpartitioned, count))
            self._remove_partitioned()

    def _per_label(self, split, labels):
        groups = {}
        for i in self.unpartitioned:
            if labels[i] >= 0:
                groups.setdefault(int(labels[i]), []).append(i)
        if not groups:
            return
        smallest = min(len(g) for g in groups.values())
        test = split.test if split.test is not None else max(
            0.0, 1.0 - split.learn - split.validation)
        frac_val = split.validation / (split.validation + test) if split.validation > 0 else 0.0
        for label in sorted(groups):
            group = groups[label]
            n = smallest if split.equiv_label else len(group)
            n_learn = half_up(n * split.learn)
            n_vt = min(half_down(n * (split.validation + test)), n - n_learn)
            n_val = half_up(n_vt * frac_val)
            n_test = min(half_down(n_vt * (1.0 - frac_val)), n - n_learn - n_val)
            for name, count in zip(SETS, (n_learn, n_val, n_test)):
                picked = self._take(group, count)
                taken = set(picked)
                group = [i for i in group if i not in taken]
                self.sets[name].extend(picked)

    def result(self):
        return {name: np.sort(np.asarray(ids, np.int64)) for name, ids in self.sets.items()}


def load_sections(sec, load_one, rng, random, learn_default=None, validation_default=0.0):
    """Run ``load_one(section view) -> (ids, labels so far)`` on ``sec`` and its ``LoadMore``
    chain, partitioning after each; returns the three sets."""
    from n2d2py.ini.section import Section

    pool, seen, current = Pool(rng, random), set(), sec
    while True:
        split = Split.from_section(current, learn_default, validation_default)
        ids, labels = load_one(current)
        pool.add(ids)
        try:
            pool.split(split, labels)
        except ValueError as exc:
            raise current.error("Test", str(exc)) from None
        nxt = current.get_str("LoadMore", "")
        if not nxt:
            return pool.result()
        if nxt not in sec.doc or nxt in seen:
            why = "does not exist" if nxt not in sec.doc else "is loaded twice (a cycle)"
            raise current.error("LoadMore", f"section [{nxt}] {why}")
        seen.add(nxt)
        current = Section(sec.doc, [nxt])
