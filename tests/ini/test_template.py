"""The .ini.tpl engine (spec §1.6)."""

import pytest

from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_file
from n2d2py.ini.template import render


def test_substitution_and_undefined():
    assert render("a={{X}} b={{ Y }}", {"X": "1", "Y": "2"}) == "a=1 b=2"
    with pytest.raises(N2D2PyError, match="undefined template variable: Z") as info:
        render("\n\n{{Z}}", {}, "t.tpl")
    assert info.value.line == 3


def test_block_iterates_with_index_and_members():
    params = {"L": "2", "L[0].n": "a", "L[1].n": "b"}
    assert render("{% block L %}{{#}}{{.n}};{% endblock %}", params) == "0a;1b;"


def test_for_range_with_and_without_start():
    assert render("{% for i in range(3) %}{{i}}{% endfor %}", {}) == "012"
    assert render("{% for i in range(1, N) %}{{i}}{% endfor %}", {"N": "3"}) == "12"


@pytest.mark.parametrize(
    "cond, expected",
    [("A exists", "y"), ("B exists", "n"), ("B not_exists", "y"), ("A == 1", "y"), ("A != 1", "n"), ("A == 2", "n")],
)
def test_if_else(cond, expected):
    assert render("{% if " + cond + " %}y{% else %}n{% endif %}", {"A": "1"}) == expected


def test_set_redirects_a_parameter():
    text = "{% set INPUT %}{{N}}_proj{% endset %}in={{INPUT}}"
    assert render(text, {"INPUT": "x", "N": "b"}) == "in=b_proj"


def test_include(tmp_path):
    (tmp_path / "inc.tpl").write_text("[{{N}}]\n")
    main = tmp_path / "main.tpl"
    assert render("{% include inc.tpl %}", {"N": "s"}, str(main)) == "[s]\n"


@pytest.mark.parametrize(
    "text, message",
    [("{% if A exists %}x", "without"), ("{% endif %}", "unexpected"), ("{% frob %}", "unknown template tag"), ("{% for i in 3 %}{% endfor %}", "expected")],
)
def test_malformed_templates(text, message):
    with pytest.raises(N2D2PyError, match=message):
        render(text, {"A": "1"})


def test_template_sections_in_an_ini(tmp_path, monkeypatch):
    monkeypatch.delenv("N2D2_MODELS", raising=False)
    (tmp_path / "blk.ini.tpl").write_text(
        "[{{SECTION_NAME}}_conv]\nInput={{INPUT}}\nNbOutputs={{NB}}\n"
        "{% if PROJ exists %}[{{SECTION_NAME}}_proj]\nInput={{INPUT}}\n"
        "{% set INPUT %}{{SECTION_NAME}}_proj{% endset %}{% endif %}"
        "[{{SECTION_NAME}}_sum]\nInput={{SECTION_NAME}}_conv,{{INPUT}}\n"
    )
    (tmp_path / "m.ini").write_text(
        "$W=2\n[sp]\nSizeX=8\n[b1@${N2D2_MODELS}/blk.ini.tpl]\nINPUT=sp\nNB=$(8*${W})\nPROJ=1\n"
        "[b2@blk.ini.tpl]\nINPUT=b1_sum\nNB=4\n[after]\nInput=${PREV_SECTION_NAME}\n"
    )
    doc = parse_file(tmp_path / "m.ini")
    names = doc.section_names()
    assert names == ["sp", "b1", "b1_conv", "b1_proj", "b1_sum", "b2", "b2_conv", "b2_sum", "after"]
    assert Section(doc, ["b1_conv"]).get_int("NbOutputs") == 16
    assert Section(doc, ["b1_sum"]).get_list("Input") == ["b1_conv", "b1_proj"]
    assert Section(doc, ["b2_sum"]).get_list("Input") == ["b2_conv", "b1_sum"]
    assert Section(doc, ["after"]).get_str("Input") == "b2_sum"
    assert doc.sections["b1_conv"].props["$PARENT_SECTION_NAME"].raw == "b1"


def test_missing_template_file(tmp_path):
    (tmp_path / "m.ini").write_text("[b@nope.ini.tpl]\nX=1\n")
    with pytest.raises(N2D2PyError, match="template file not found") as info:
        parse_file(tmp_path / "m.ini")
    assert info.value.line == 1
