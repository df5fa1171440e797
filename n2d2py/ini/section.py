"""Typed, tracked views over INI sections: the only way the rest of n2d2py reads keys.

A ``Section`` looks keys up in a chain of raw sections (later ones win: the ``ConfigSection``
list) under one or several prefixes (``WeightsSolver.`` before ``Solvers.``). Every read is
recorded in the Document so that keys nothing consumed are reported with file:line.
"""

import os
import re

from n2d2py.errors import N2D2PyError, did_you_mean
from n2d2py.ini.resolve import expand_environment, resolve, unresolved_variable

MISSING = object()

_INT = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)")
_FLOAT = re.compile(
    r"[+-]?((\d{1,3}(,\d{3})+|\d+)(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE
)

# Per-dimension key suffixes of each dims() family, N2D2 order (x, then y).
_AXES = {
    "Kernel": ("Width", "Height"),
    "Pool": ("Width", "Height"),
}


class Section:
    """View over raw sections ``names`` (later wins) with key ``prefixes`` (first wins)."""

    def __init__(self, doc, names, prefixes=("",), label=None):
        self.doc = doc
        self.names = list(names)
        self.prefixes = tuple(prefixes)
        self.name = label if label is not None else (self.names[-1] if self.names else "")

    def __repr__(self):
        return f"Section({self.name!r}, chain={self.names}, prefixes={self.prefixes})"

    # -- lookup -------------------------------------------------------------------------
    def lookup(self, key):
        """(owning section, Prop) that a read of ``key`` would use, or (None, None).

        The probe is recorded (for "did you mean" on unread keys); a view over no section
        (a layer without ConfigSection) records it under ``config_probe_name(label)``.
        """
        if not self.names:
            probed = self.doc.probed.setdefault(config_probe_name(self.name), set())
            probed.update(prefix + key for prefix in self.prefixes)
        for name in reversed(self.names):
            probed = self.doc.probed.setdefault(name, set())
            for prefix in self.prefixes:
                probed.add(prefix + key)
                found = self.doc.prop(name, prefix + key)
                if found is not None:
                    return name, found
        return None, None

    def prop(self, key):
        """The Prop that a read of ``key`` would use, or None."""
        return self.lookup(key)[1]

    def has(self, key):
        return self.prop(key) is not None

    def keys(self):
        """Keys visible through this view, prefixes removed."""
        out = []
        for name in self.names:
            for key in self.doc.sections[name].props:
                for prefix in self.prefixes:
                    if key.startswith(prefix) and key[len(prefix) :] not in out:
                        out.append(key[len(prefix) :])
        return out

    def error(self, key, message):
        """A user error located at ``key`` if present, else at the section header."""
        prop = self.prop(key) if key else None
        if prop is not None:
            return N2D2PyError(message, prop.file, prop.line, prop.section or None, prop.key)
        raw = self.doc.sections.get(self.name)
        file, line = (raw.file, raw.line) if raw is not None else (self.doc.path, None)
        return N2D2PyError(message, file, line, self.name, key and self.prefixes[0] + key)

    def _value(self, key, default):
        owner, prop = self.lookup(key)
        if prop is None:
            if default is MISSING:
                raise self.error(key, "required key is missing")
            return None, default
        self.doc.mark_read(prop.section, prop.key)
        self.doc.mark_read(owner, prop.key)
        # Inherited values resolve in the context of the section that reads them.
        value = resolve(self.doc, owner, prop)
        return prop, value.strip()

    def _check_variables(self, prop, value):
        name = unresolved_variable(value)
        if name is not None:
            raise N2D2PyError(
                f"undefined variable ${{{name}}} (define ${name}=… in this section or before "
                "the first section)",
                prop.file,
                prop.line,
                prop.section or None,
                prop.key,
            )

    # -- typed getters ------------------------------------------------------------------
    def get_str(self, key, default=MISSING):
        prop, value = self._value(key, default)
        if prop is not None:
            self._check_variables(prop, value)
        return value

    def get_int(self, key, default=MISSING):
        prop, value = self._value(key, default)
        return value if prop is None else self._int(prop, value)

    def get_uint(self, key, default=MISSING):
        prop, value = self._value(key, default)
        if prop is None:
            return value
        number = self._int(prop, value, "a non-negative integer")
        if number < 0:
            raise _bad(prop, value, "a non-negative integer")
        return number

    def get_float(self, key, default=MISSING):
        prop, value = self._value(key, default)
        return value if prop is None else self._float(prop, value)

    def get_bool(self, key, default=MISSING):
        prop, value = self._value(key, default)
        if prop is None:
            return value
        if value in ("0", "1"):
            return value == "1"
        if value.lower() in ("true", "false"):
            self.doc.warn(f"N2D2 reads booleans as 0/1 only; taking '{value}'", prop)
            return value.lower() == "true"
        raise _bad(prop, value, "0 or 1")

    def get_enum(self, key, choices, default=MISSING):
        prop, value = self._value(key, default)
        if prop is None or value in choices:
            return value
        hint = did_you_mean(value, choices)
        raise _bad(prop, value, "one of " + ", ".join(choices), hint)

    def get_floats(self, key, default=MISSING, count=None):
        """Whitespace-separated numbers; ``count`` checks how many."""
        prop, value = self._value(key, default)
        if prop is None:
            return value
        items = [self._float(prop, v) for v in value.split()]
        return _check_count(prop, value, items, count, "numbers")

    def get_ints(self, key, default=MISSING, count=None):
        prop, value = self._value(key, default)
        if prop is None:
            return value
        items = [self._int(prop, v) for v in value.split()]
        return _check_count(prop, value, items, count, "integers")

    def get_list(self, key, default=MISSING):
        """A comma-separated list (``Input=a,b``), split without trimming as N2D2 does."""
        prop, value = self._value(key, default)
        if prop is None:
            return value
        self._check_variables(prop, value)
        items = value.split(",")
        if any(item == "" for item in items):
            raise _bad(prop, value, "a comma-separated list of names", " (empty item)")
        return items

    def get_path(self, key, default=MISSING):
        """A file path: environment variables expanded, relative to the working directory."""
        prop, value = self._value(key, default)
        if prop is None:
            return value
        value = expand_environment(value, self.doc)
        return os.path.expanduser(value)

    def get_spread(self, key, default=MISSING):
        """N2D2's spread values: ``v``, ``"v; sd"``, ``"v; p%"`` or ``"v; mean; sd"``.

        Returns (value, relative_stddev_or_None, absolute_stddev_or_None).
        """
        prop, value = self._value(key, default)
        if prop is None:
            return value
        parts = [p.strip() for p in value.split(";")]
        if len(parts) > 3 or not parts[0]:
            raise _bad(prop, value, 'a value or "value; spread"')
        mean = self._float(prop, parts[0])
        if len(parts) == 1:
            return mean, None, None
        last = parts[-1]
        if last.endswith("%"):
            return mean, self._float(prop, last[:-1]) / 100.0, None
        return mean, None, self._float(prop, last)

    def dims(self, family, default=MISSING, n=2):
        """A 2-D size family, returned as (height, width) — NCHW order.

        Accepts ``<F>Dims`` (N2D2 order: x then y), ``<F>`` or ``<F>Size`` (one value for
        every axis), and per-axis keys (``KernelWidth``/``KernelHeight``, ``StrideX``/
        ``StrideY``, ...), each falling back to ``default`` (an int or an (h, w) pair).
        """
        if self.has(family + "Dims"):
            xy = self.get_ints(family + "Dims", count=n)
            return tuple(reversed(xy))
        for key in (family, family + "Size"):
            if self.has(key):
                return (self.get_int(key),) * n
        axes = _AXES.get(family, ("X", "Y"))
        fallback = default if isinstance(default, tuple) or default is MISSING else (default,) * n
        values = []
        for i, axis in enumerate(axes[:n]):
            axis_default = MISSING if fallback is MISSING else fallback[n - 1 - i]
            if not self.has(family + axis) and axis_default is MISSING:
                raise self.error(
                    family + "Dims",
                    f"missing {family}Dims (or {family}{axes[0]} and {family}{axes[1]})",
                )
            values.append(self.get_int(family + axis, axis_default))
        return tuple(reversed(values))

    # -- sub-objects --------------------------------------------------------------------
    def sub(self, key, default=MISSING):
        """``Key=TypeName`` with parameters ``Key.*``: returns (type name, prefixed view)."""
        type_name = self.get_str(key, default)
        view = Section(
            self.doc, self.names, tuple(p + key + "." for p in self.prefixes), label=self.name
        )
        return type_name, view

    def prefixed(self, *prefixes):
        """A view over the same chain with parameters under ``prefixes`` (first wins)."""
        return Section(self.doc, self.names, prefixes, label=self.name)

    # -- number parsing -----------------------------------------------------------------
    def _int(self, prop, text, expected="an integer"):
        self._check_variables(prop, text)
        if _INT.fullmatch(text):
            if len(text) > _MAX_INT_DIGITS:
                raise _bad(prop, text[:20] + "...", f"an integer of at most {_MAX_INT_DIGITS} digits")
            return int(text.replace(",", ""))
        if _FLOAT.fullmatch(text):
            number = float(text.replace(",", ""))
            if number.is_integer():
                return int(number)
        raise _bad(prop, text, expected)

    def _float(self, prop, text):
        self._check_variables(prop, text)
        if _FLOAT.fullmatch(text):
            return float(text.replace(",", ""))
        raise _bad(prop, text, "a number")


_MAX_INT_DIGITS = 1000


def config_probe_name(label):
    """Where probes of an empty ConfigSection chain of layer ``label`` are recorded."""
    return f"\0config:{label}"


def _bad(prop, value, expected, hint=""):
    return N2D2PyError(
        f'expected {expected}, got "{value}"{hint}',
        prop.file,
        prop.line,
        prop.section or None,
        prop.key,
    )


def _check_count(prop, value, items, count, what):
    if count is not None and len(items) != count:
        raise _bad(prop, value, f"{count} {what}")
    return items
