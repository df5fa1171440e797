"""Typed reads (spec §1.4) and the config chain (spec §1.9)."""

import pytest

from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text


def sec(body, name="a"):
    return Section(parse_text(f"[{name}]\n{body}\n", "m.ini", Diagnostics(stream=open("/dev/null", "w"))), [name])


def test_thousands_separators():
    s = sec("P=100,000,000,000\nQ=1000000\nR=1,000.5")
    assert s.get_int("P") == 100_000_000_000
    assert s.get_uint("Q") == 1_000_000
    assert s.get_float("R") == 1000.5


@pytest.mark.parametrize("bad", ["1,00", "12x", "1_000", "", "0x10"])
def test_bad_integers(bad):
    with pytest.raises(N2D2PyError, match="expected an integer"):
        sec(f"K={bad}").get_int("K")


def test_unsigned_rejects_negative():
    with pytest.raises(N2D2PyError, match="non-negative") as info:
        sec("NbOutputs=-3").get_uint("NbOutputs")
    assert str(info.value) == 'm.ini:2: [a] NbOutputs: expected a non-negative integer, got "-3"'


def test_booleans_are_0_or_1():
    s = sec("A=1\nB=0\nC=yes\nD=true")
    assert s.get_bool("A") is True and s.get_bool("B") is False
    with pytest.raises(N2D2PyError, match="expected 0 or 1"):
        s.get_bool("C")
    assert s.get_bool("D") is True  # accepted with a warning
    assert any("0/1 only" in m for m in s.doc.diagnostics.messages)


def test_enums_are_case_sensitive_with_suggestion():
    s = sec("Pooling=max")
    with pytest.raises(N2D2PyError, match="did you mean 'Max'"):
        s.get_enum("Pooling", ("Max", "Average"))


def test_vectors_and_counts():
    s = sec("V=103.94 116.78 123.68\nK=5 x")
    assert s.get_floats("V", count=3) == [103.94, 116.78, 123.68]
    with pytest.raises(N2D2PyError, match='expected an integer, got "x"'):
        s.get_ints("K")


def test_spread_values():
    s = sec('A=0.5\nB="0.67; 20%"\nC="1; 0.1"\nD="1; 2; 3; 4"')
    assert s.get_spread("A") == (0.5, None, None)
    assert s.get_spread("B") == (0.67, 0.2, None)
    assert s.get_spread("C") == (1.0, None, 0.1)
    with pytest.raises(N2D2PyError):
        s.get_spread("D")


def test_lists_split_without_trimming():
    s = sec("Input=a,b\nC=x, y\nE=a,,b")
    assert s.get_list("Input") == ["a", "b"]
    assert s.get_list("C") == ["x", " y"]  # as N2D2: the space is part of the name
    with pytest.raises(N2D2PyError, match="empty item"):
        s.get_list("E")


@pytest.mark.parametrize(
    "body, family, default, expected",
    [
        ("KernelDims=5 3", "Kernel", None, (3, 5)),
        ("KernelWidth=5\nKernelHeight=3", "Kernel", None, (3, 5)),
        ("KernelSize=4", "Kernel", None, (4, 4)),
        ("Stride=2", "Stride", 1, (2, 2)),
        ("StrideX=2", "Stride", 1, (1, 2)),
        ("", "Padding", 0, (0, 0)),
        ("PoolWidth=2\nPoolHeight=2", "Pool", None, (2, 2)),
    ],
)
def test_dims_families(body, family, default, expected):
    s = sec(body or "Z=0")
    got = s.dims(family) if default is None else s.dims(family, default)
    assert got == expected


def test_dims_missing_is_clear():
    with pytest.raises(N2D2PyError, match="missing KernelDims"):
        sec("KernelWidth=5").dims("Kernel")


def test_required_key_missing_points_at_section():
    with pytest.raises(N2D2PyError, match="required key is missing") as info:
        sec("A=1").get_uint("NbOutputs")
    assert (info.value.line, info.value.section, info.value.key) == (1, "a", "NbOutputs")


def test_config_chain_later_wins_and_prefix_precedence():
    doc = parse_text(
        "[common]\nSolvers.LearningRate=0.1\nWeightsSolver.LearningRate=0.05\nSolvers.Momentum=0.9\n"
        "[fc]\nSolvers.Momentum=0.5\n"
    )
    chain = Section(doc, ["common", "fc"])
    weights = chain.prefixed("WeightsSolver.", "Solvers.")
    bias = chain.prefixed("BiasSolver.", "Solvers.")
    assert weights.get_float("LearningRate") == 0.05
    assert bias.get_float("LearningRate") == 0.1
    assert weights.get_float("Momentum") == 0.5  # the later section wins


def test_sub_objects_share_one_mechanism():
    s = sec("WeightsFiller=XavierFiller\nWeightsFiller.Scaling=2.0")
    name, view = s.sub("WeightsFiller")
    assert name == "XavierFiller" and view.get_float("Scaling") == 2.0
    assert view.get_str("Distribution", "Uniform") == "Uniform"
    assert s.sub("BiasFiller", None)[0] is None


def test_inherited_values_resolve_in_the_reading_section():
    doc = parse_text("[base]\nName=${SECTION_NAME}\n[child] base\n")
    assert Section(doc, ["child"]).get_str("Name") == "child"
