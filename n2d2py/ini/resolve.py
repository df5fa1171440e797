"""Lazy value resolution (spec §1.3): ``[S]Key`` references, then ``${VAR}``, then ``$(expr)``.

``$(expr)`` is evaluated in-process by a small arithmetic evaluator over Python's ``ast``:
numbers, arithmetic, comparisons, ``x if c else y`` and a few pure functions — never ``eval``
and never a subprocess (N2D2 shells out to ``python -c``).

Everything is bounded, so that no INI text can hang or exhaust the process: an expression's
length and nesting, every integer's size (checked before ``**``, ``pow`` or ``*`` computes it),
a value's length after substitution, the nesting of references and variables, and the number
of substitutions a document may make. A breach is one error naming file:line and the limit.
"""

import ast
import math
import operator
import os
import re

from n2d2py.errors import N2D2PyError, did_you_mean

_MAX_DEPTH = 50
MAX_EXPRESSION_CHARS = 10_000
MAX_EXPRESSION_DEPTH = 100
MAX_INT_BITS = 4096  # about 1,233 decimal digits
MAX_VALUE_CHARS = 1 << 20
MAX_EVALUATED_CHARS = 2_000_000  # $(…) text evaluated per document
MAX_SUBSTITUTIONS = 100_000  # per document (MobileNet_v1.ini makes 742)
_WHITESPACE = " \t\n\v\f\r"


def resolve(doc, section, prop, _depth=0):
    """The fully substituted value of ``prop`` read in the context of ``section``."""
    if _depth > _MAX_DEPTH:
        raise _error(prop, f"reference cycle (or references nested more than {_MAX_DEPTH} deep)")
    if _depth:
        doc.substitutions = getattr(doc, "substitutions", 0) + 1
        if doc.substitutions > MAX_SUBSTITUTIONS:
            raise _error(prop, f"references and variables expand more than {MAX_SUBSTITUTIONS:,} "
                         "times in this file (an expansion bomb?)")
    value = _references(doc, prop, _depth)
    value = _variables(doc, section, prop, value, _depth)
    return _expressions(value, prop, doc)


def _bounded(prop, parts):
    """Join ``parts``, refusing a value longer than MAX_VALUE_CHARS."""
    if sum(map(len, parts)) > MAX_VALUE_CHARS:
        raise _error(prop, f"the value expands to more than {MAX_VALUE_CHARS:,} characters")
    return "".join(parts)


def _error(prop, message):
    return N2D2PyError(message, prop.file, prop.line, prop.section or None, prop.key)


def _references(doc, prop, depth):
    value, out, i = prop.raw, [], 0
    while True:
        start = value.find("[", i)
        end = value.find("]", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(value[i:])
            return _bounded(prop, out)
        name = value[start + 1 : end]
        if name not in doc.sections or name == "":
            out.append(value[i : end + 1])
            i = end + 1
            continue
        stop = end + 1
        while stop < len(value) and value[stop] not in _WHITESPACE:
            stop += 1
        key = value[end + 1 : stop]
        target = doc.prop(name, key)
        if target is None:
            hint = _close_key(doc, name, key)
            raise _error(prop, f"property {key or '(empty)'} not found in section [{name}]{hint}")
        doc.mark_read(name, key)
        out.append(value[i:start])
        out.append(resolve(doc, name, target, depth + 1))
        _bounded(prop, out)
        i = stop


def _close_key(doc, section, key):
    return did_you_mean(key, doc.sections[section].props, f"[{section}]{{}}")


def _variables(doc, section, prop, value, depth):
    out, i = [], 0
    while True:
        start = value.find("${", i)
        if start < 0:
            break
        end = value.find("}", start)
        if end < 0:
            break
        name = value[start + 2 : end]
        out.append(value[i:start])
        out.append(_variable(doc, section, prop, name, value[start : end + 1], depth))
        _bounded(prop, out)
        i = end + 1
    out.append(value[i:])
    return _bounded(prop, out)


def _variable(doc, section, prop, name, text, depth):
    if name == "SECTION_NAME":
        return section
    if name == "PREV_SECTION_NAME":
        return doc.sections[section].prev if section in doc.sections else ""
    for owner in (section, doc.GLOBAL):
        found = doc.prop(owner, "$" + name) if owner in doc.sections else None
        if found is not None:
            doc.mark_read(owner, "$" + name)
            return resolve(doc, section, found, depth + 1)
    return text  # left for environment expansion in path-valued keys


def unresolved_variable(value):
    """The first ``${NAME}`` left in a resolved value, or None."""
    match = re.search(r"\$\{([^}]*)\}", value)
    return match.group(1) if match else None


def _expressions(value, prop, doc=None):
    out, i = [], 0
    while True:
        start = value.find("$(", i)
        if start < 0:
            out.append(value[i:])
            return "".join(out)
        depth, j = 0, start + 1
        while j < len(value):
            depth += {"(": 1, ")": -1}.get(value[j], 0)
            if depth == 0:
                break
            j += 1
        if depth:
            raise _error(prop, f"unbalanced parentheses in {value[start:]!r}")
        out.append(value[i:start])
        if doc is not None:  # a document evaluates a bounded amount of arithmetic in all
            doc.evaluated = getattr(doc, "evaluated", 0) + j - start
            if doc.evaluated > MAX_EVALUATED_CHARS:
                raise _error(prop, f"$(…) expressions in this file add up to more than "
                             f"{MAX_EVALUATED_CHARS:,} characters (the limit)")
        out.append(format_number(evaluate(value[start + 2 : j], prop)))
        _bounded(prop, out)
        i = j + 1


def format_number(x):
    if isinstance(x, bool):
        return "1" if x else "0"
    return str(x) if isinstance(x, int) else repr(float(x))


_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS = {
    "int": int,
    "float": float,
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
    "pow": lambda *args: _pow(*args),
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "log2": math.log2,
    "log10": math.log10,
    "ceil": math.ceil,
    "floor": math.floor,
}
_NAMES = {"pi": math.pi, "e": math.e, "True": True, "False": False}


def evaluate(text, prop):
    """Evaluate an arithmetic expression; anything else is a user error."""
    shown = text if len(text) <= 60 else text[:57] + "..."
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _error(prop, f"cannot evaluate $({shown}): longer than {MAX_EXPRESSION_CHARS:,} "
                     "characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        reason = str(getattr(exc, "msg", exc))  # an integer literal over Python's 4,300 digits
        reason = reason.split(";")[0] if "limit" in reason else "not an arithmetic expression"
        raise _error(prop, f"cannot evaluate $({shown}): {reason}") from None
    except (RecursionError, MemoryError):
        raise _error(prop, f"cannot evaluate $({shown}): nested too deeply") from None
    try:
        _check_depth(tree.body)
        return _checked(_eval(tree.body))
    except N2D2PyError as exc:
        raise _error(prop, f"cannot evaluate $({shown}): {exc.message}") from None
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise _error(prop, f"cannot evaluate $({shown}): {exc}") from None


def _check_depth(root):
    """Refuse an expression nested deeper than MAX_EXPRESSION_DEPTH (walked without recursion,
    so that a 100,000-term sum is one line, not a RecursionError)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise N2D2PyError(f"nested more than {MAX_EXPRESSION_DEPTH} operations deep")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _checked(value):
    """``value``, refused if it is an integer over MAX_INT_BITS bits."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise N2D2PyError(f"an integer over {MAX_INT_BITS} bits (the limit)")
    if not isinstance(value, (int, float)):
        raise N2D2PyError(f"the result {value} is not a real number")
    return value


def _check_size(op, left, right):
    """Refuse, before computing it, an integer ``**``/``pow``/``*`` result over MAX_INT_BITS."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if op is operator.pow and right > 0 and abs(left) > 1:
        if right * (abs(left).bit_length() - 1) > MAX_INT_BITS:
            raise N2D2PyError(f"{left} ** {right} is over {MAX_INT_BITS} bits (the limit)")
    elif op is operator.mul and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise N2D2PyError(f"a product over {MAX_INT_BITS} bits (the limit)")


def _pow(base, exponent, modulus=None):
    if modulus is None:
        _check_size(operator.pow, base, exponent)
    elif any(isinstance(v, int) and v.bit_length() > 256 for v in (base, exponent, modulus)):
        raise N2D2PyError("pow(a, b, m) with numbers over 256 bits (the limit)")
    return pow(base, exponent, modulus)


def _eval(node):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        return _checked(node.value)
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        op = _BINARY[type(node.op)]
        _check_size(op, left, right)
        return _checked(op(left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _eval(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_eval(v) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.IfExp):
        return _eval(node.body) if _eval(node.test) else _eval(node.orelse)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _checked(_FUNCTIONS[node.func.id](*[_eval(a) for a in node.args]))
    raise N2D2PyError(f"'{ast.unparse(node)}' is not allowed (numbers and arithmetic only)")


def expand_environment(value, doc):
    """Expand ``${VAR}``/``$VAR`` from the environment, as N2D2 does for path-valued keys.

    Unset variables expand to "" as in N2D2, except ``N2D2_MODELS``, which defaults to the
    directory of the top-level INI file so that shipped models find their templates.
    """

    def lookup(match):
        name = match.group(1) or match.group(2)
        if name in os.environ:
            return os.environ[name]
        return doc.dir if name == "N2D2_MODELS" else ""

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, value)
