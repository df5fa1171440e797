"""Hostile INI input ends in one line naming file:line and the limit, quickly: expression,
expansion and template bombs, special and huge files (resolve.py, template.py, parse.py)."""

import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import softmax_tail
from n2d2py import cli
from n2d2py.errors import N2D2PyError
from n2d2py.ini import parse_text, resolve as resolve_module
from n2d2py.ini.parse import Prop
from n2d2py.ini.resolve import evaluate

BODY = """[database]
Type=MNIST_IDX_Database
DataPath={data}
[sp]
SizeX=28
SizeY=28
BatchSize={batch}
""" + softmax_tail("sp")
DATA = Path(__file__).parents[2] / "n2d2py" / "datasets" / "mnist"


def doubling(first):
    return [f"$A0={first}"] + [f"$A{i}=${{A{i - 1}}}${{A{i - 1}}}" for i in range(1, 31)]


CASES = {  # name: (lines before the body, BatchSize value, files, expected message)
    "pow": ([], "$(pow(9, 9**9))", {}, r"9 \*\* 387420489 is over 4096 bits \(the limit\)"),
    "starstar": ([], "$(9**9**9)", {}, r"over 4096 bits"),
    "product": ([], "$(10**1000 * 10**1000 * 10**1000 * 10**1000 * 10**1000)", {}, "over 4096 bits"),
    "literal": ([], "$(" + "7" * 4400 + " + 1)", {}, "Exceeds the limit"),
    "digits": ([], "7" * 5000, {}, "an integer of at most 1000 digits"),
    "sum": ([], "$(" + "+".join(["1"] * 100_000) + ")", {}, "longer than 10,000 characters"),
    "deep_sum": ([], "$(" + "+".join(["1"] * 4000) + ")", {}, "nested"),
    "doubling": (doubling("x"), "${A30}", {}, "expand more than 100,000 times"),
    "doubling_empty": (doubling(""), "8${A30}", {}, "expand more than 100,000 times"),
    "references": ([], "[r]k30", {}, "expand more than 100,000 times"),
    "self_include": (["[t@self.ini.tpl]"], "8", {"self.ini.tpl": "x=1\n{% include self.ini.tpl %}\n"},
                     "includes nested more than 16 deep"),
    "self_template": (["[t@rec.ini.tpl]"], "8", {"rec.ini.tpl": "[{{SECTION_NAME}}x@rec.ini.tpl]\n"},
                      "templates render templates more than 16 deep"),
    "loop": (["[t@loop.ini.tpl]"], "8",
             {"loop.ini.tpl": "{% for i in range(0, 1000000000) %}x{% endfor %}\n"},
             "loops more than 100,000 times"),
    "nested_loops": (["[t@loop.ini.tpl]"], "8", {"loop.ini.tpl": "{% for i in range(0, 1000) %}"
                     "{% for j in range(0, 1000) %}{% endfor %}{% endfor %}\n"},
                     "loops more than 100,000 times"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bombs_end_in_one_line_within_seconds(name, tmp_path, capsys, monkeypatch):
    lines, batch, files, message = CASES[name]
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    body = BODY.format(data=DATA, batch=batch)
    if name == "references":
        body += "[r]\nk0=1\n" + "".join(f"k{i}=[r]k{i - 1} [r]k{i - 1}\n" for i in range(1, 31))
    ini = tmp_path / f"{name}.ini"
    ini.write_text("\n".join(lines + [body]))
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "--dry-run"])
    took = time.monotonic() - start
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert info.value.code == 2 and len(errors) == 1, err[-2000:]
    assert re.match(r"error: [^:]+\.ini(\.tpl)?:\d+: ", errors[0]), errors[0]  # file:line
    assert re.search(message, errors[0]), errors[0]
    assert took < 10, f"{name} took {took:.1f} s"


def test_special_and_huge_ini_files_are_refused(tmp_path, capsys):
    huge = tmp_path / "huge.ini"
    with open(huge, "wb") as f:
        f.truncate(17 << 20)  # sparse: 17 MiB of zeros
    for path, message in (("/dev/zero", "/dev/zero: INI file is not a regular file"),
                          (str(huge), f"{huge}: INI file is 17,825,792 bytes, over the limit")):
        with pytest.raises(SystemExit) as info:
            cli.main([path, "--dry-run"])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


def test_an_inheritance_bomb_is_refused(tmp_path):
    """Each section inherits all the previous ones: copies grow as n**3 without the limit."""
    lines = ["[s0]"] + [f"k{i}=1" for i in range(1000)]
    for i in range(1, 3000):
        lines += [f"[s{i}] " + " ".join(f"s{j}" for j in range(max(0, i - 200), i)), f"x{i}=1"]
    start = time.monotonic()
    with pytest.raises(N2D2PyError, match=r"inherit.ini:\d+: \[s\d+\] section inheritance copies "
                       r"more than 1,000,000 keys"):
        parse_text("\n".join(lines), "inherit.ini")
    assert time.monotonic() - start < 10


def test_a_long_value_is_refused_by_size(monkeypatch):
    monkeypatch.setattr(resolve_module, "MAX_VALUE_CHARS", 1000)
    doc = parse_text("$A=" + "y" * 600 + "\n[s]\nk=${A}${A}\n", "v.ini")
    with pytest.raises(N2D2PyError, match=r"v.ini:3: \[s\] k: the value expands to more than 1,000"):
        resolve_module.resolve(doc, "s", doc.prop("s", "k"))


# -- the evaluator, driven by generated expressions -----------------------------------------

PROP = Prop("s", "k", "", "gen.ini", 7)
ATOMS = st.one_of(st.integers(-10**6, 10**6).map(str), st.sampled_from(
    ["9", "2", "0", "1.5", "0.5", "(-8)", "1e308", "-1e308", "pi", "True", "99999999999999999999"]))
OPS = ["+", "-", "*", "/", "//", "%", "**", "<", "==", " and ", " or "]
FUNCS = ["pow", "abs", "int", "float", "round", "min", "max", "sqrt", "exp", "log", "ceil", "floor"]


def expressions():
    return st.recursive(
        ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(OPS), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
            st.tuples(st.sampled_from(FUNCS), st.lists(inner, min_size=1, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
            inner.map(lambda e: f"-{e}"),
        ),
        max_leaves=40,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions())
def test_generated_expressions_end_quickly_in_a_value_or_one_error(text):
    """Every expression evaluates to a bounded number or raises N2D2PyError naming the
    location, and none takes more than a second (pow towers, huge products included)."""
    start = time.monotonic()
    try:
        value = evaluate(text, PROP)
    except N2D2PyError as exc:
        assert str(exc).startswith("gen.ini:7: [s] k: cannot evaluate $("), str(exc)
    else:
        assert isinstance(value, (int, float, bool))
        if isinstance(value, int):
            assert value.bit_length() <= resolve_module.MAX_INT_BITS
        resolve_module.format_number(value)  # printable (no 4,300-digit error)
    assert time.monotonic() - start < 1.0, text


def test_a_document_evaluates_a_bounded_amount_of_arithmetic(monkeypatch):
    monkeypatch.setattr(resolve_module, "MAX_EVALUATED_CHARS", 30)
    doc = parse_text("[s]\n" + "".join(f"k{i}=$(1 + {i} * 3)\n" for i in range(5)), "a.ini")
    values = []
    with pytest.raises(N2D2PyError, match=r"a.ini:4: \[s\] k2: \$\(…\) expressions in this file "
                       r"add up to more than 30 characters"):
        for i in range(5):
            values.append(resolve_module.resolve(doc, "s", doc.prop("s", f"k{i}")))
    assert values == ["1", "4"]


def test_modular_pow_is_bounded_too():
    with pytest.raises(N2D2PyError, match="over 256 bits"):
        evaluate(f"pow(3, {2**4000}, {2**4000 + 1})", PROP)
    assert evaluate("pow(3, 5, 7)", PROP) == 5
