"""Value resolution (spec §1.3): references, variables, expressions, environment."""

import pytest

from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.ini.resolve import evaluate, expand_environment


def get(text, section, key):
    return Section(parse_text(text), [section]).get_str(key)


def test_section_reference_recursive():
    text = "[sp]\nSizeX=32\n[a]\nW=[sp]SizeX\n[b]\nW=[a]W\n"
    assert get(text, "b", "W") == "32"


def test_reference_key_extends_to_whitespace():
    with pytest.raises(N2D2PyError, match=r"property SizeX/2 not found in section \[sp\]"):
        get("[sp]\nSizeX=32\n[a]\nW=[sp]SizeX/2\n", "a", "W")


def test_brackets_that_are_not_sections_are_kept():
    assert get("[a]\nV=x[0] [y]z\n", "a", "V") == "x[0] [y]z"


def test_reference_to_missing_key_suggests():
    with pytest.raises(N2D2PyError, match=r"did you mean \[sp\]SizeX\?") as info:
        get("[sp]\nSizeX=32\n[a]\nW=[sp]SizeY\n", "a", "W")
    assert info.value.line == 4 and info.value.key == "W"


def test_generated_keys_resolve_once_known():
    doc = parse_text("[sp]\nSizeX=1\n[c]\nStep=[sp]_EpochSize\n")
    with pytest.raises(N2D2PyError, match="_EpochSize not found"):
        Section(doc, ["c"]).get_int("Step")
    doc.set_generated("sp", "_EpochSize", 48000)
    assert Section(doc, ["c"]).get_int("Step") == 48000


def test_reference_cycle_is_an_error():
    with pytest.raises(N2D2PyError, match="cycle"):
        get("[a]\nX=[b]Y\n[b]\nY=[a]X\n", "a", "X")


def test_variables_section_then_global_and_specials():
    text = "$V=g\n[prev]\n[a]\n$V=local\nX=${V}\nY=${SECTION_NAME}\nZ=${PREV_SECTION_NAME}\n[b]\nX=${V}\n"
    assert get(text, "a", "X") == "local"
    assert get(text, "b", "X") == "g"
    assert get(text, "a", "Y") == "a"
    assert get(text, "a", "Z") == "prev"


def test_undefined_variable_is_an_error_outside_paths():
    with pytest.raises(N2D2PyError, match=r"undefined variable \$\{NOPE\}") as info:
        get("[a]\nX=${NOPE}\n", "a", "X")
    assert info.value.line == 2


def test_environment_expansion_only_for_paths(monkeypatch):
    monkeypatch.setenv("MYDATA", "/data")
    monkeypatch.delenv("N2D2_MODELS", raising=False)
    doc = parse_text("[a]\nP=${MYDATA}/mnist\nQ=$MYDATA/x\nR=${N2D2_MODELS}/t.tpl\n", "/m/model.ini")
    sec = Section(doc, ["a"])
    assert sec.get_path("P") == "/data/mnist"
    assert sec.get_path("Q") == "/data/x"
    assert sec.get_path("R") == "/m/t.tpl"  # N2D2_MODELS defaults to the INI's folder
    assert expand_environment("${UNSET_VAR_XYZ}/a", doc) == "/a"


def test_expressions_in_process():
    text = "$E=90\n[sp]\n_EpochSize=48000\nB=256\n[a]\nX=$([sp]_EpochSize * ${E} / [sp]B )\nY=$(int(64 * 0.5))\nZ=$(0.0 if ${E} > 0 else 1.0)\nW=$(2**(-1.0/2))\n"
    sec = Section(parse_text(text), ["a"])
    assert sec.get_int("X") == 16875  # an integral float is read as an integer
    assert sec.get_int("Y") == 32
    assert sec.get_float("Z") == 0.0
    assert sec.get_float("W") == pytest.approx(2**-0.5)


def test_expressions_nest_and_embed():
    assert get("[a]\nX=k$((1+2)*(3+4))k\n", "a", "X") == "k21k"


@pytest.mark.parametrize(
    "expr",
    ["__import__('os').system('true')", "open('/etc/passwd')", "(1).__class__", "[x for x in ()]", "'a'*3", "9**9**9", "lambda: 1"],
)
def test_unsafe_expressions_are_refused(expr):
    with pytest.raises(N2D2PyError, match="cannot evaluate"):
        evaluate(expr, parse_text("[a]\nK=1\n").sections["a"].props["K"])


def test_expression_errors_carry_location():
    with pytest.raises(N2D2PyError, match="cannot evaluate") as info:
        get("[a]\nX=$(1/0)\n", "a", "X")
    assert info.value.line == 2
    with pytest.raises(N2D2PyError, match="unbalanced"):
        get("[a]\nX=$(1+(2)\n", "a", "X")
