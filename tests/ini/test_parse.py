"""The lexer rules of spec §1.2, one test each."""

import pytest

from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_file, parse_text


def raw(doc, section, key):
    return doc.sections[section].props[key].raw


def test_continuation_joins_lines_without_separator():
    doc = parse_text("[a]\nM=1 0 \\\n0 1 \\\n1 1\n")
    assert raw(doc, "a", "M") == "1 0 0 1 1 1"
    assert doc.sections["a"].props["M"].line == 2


def test_continuation_before_comment_stripping():
    doc = parse_text("[a]\nK=1 ; comment \\\nstill comment\nL=2\n")
    assert raw(doc, "a", "K") == "1"
    assert raw(doc, "a", "L") == "2"


def test_crlf_lines_are_accepted():
    doc = parse_text("[a]\r\nM=1 \\\r\n2\r\n")
    assert raw(doc, "a", "M") == "1 2"


def test_comments_anywhere_outside_quotes():
    doc = parse_text('[a] ; header comment\nK=v # hash\nQ="x; 20%"\n# whole line\n; other\n')
    assert raw(doc, "a", "K") == "v"
    assert raw(doc, "a", "Q") == "x; 20%"


def test_unterminated_quote_is_an_error():
    with pytest.raises(N2D2PyError, match="unterminated double quote") as info:
        parse_text('[a]\nK="oops\n', "m.ini")
    assert (info.value.file, info.value.line) == ("m.ini", 2)


def test_quotes_removed_only_when_both_ends():
    doc = parse_text('[a]\nA="v"\nB="v" w\n')
    assert raw(doc, "a", "A") == "v"
    assert raw(doc, "a", "B") == '"v" w'


def test_bom_and_whitespace_trimmed():
    doc = parse_text("\ufeff  [a]  \n   K  =   v  \n\n")
    assert raw(doc, "a", "K") == "v"


def test_global_keys_before_first_section():
    doc = parse_text("DefaultModel=Frame\n$LR=0.1\n[a]\nK=1\n")
    assert raw(doc, "", "DefaultModel") == "Frame"
    assert ("", "$LR") in doc.read  # variables never count as unused


def test_inheritance_copies_and_child_overrides_with_warning():
    diag = Diagnostics(stream=open("/dev/null", "w"))
    doc = parse_text("[base]\nA=1\nB=2\n[other]\nA=9\nC=3\n[c] base other\nB=5\n", diagnostics=diag)
    props = {k: p.raw for k, p in doc.sections["c"].props.items()}
    assert props == {"A": "1", "B": "5", "C": "3"}  # first parent wins
    assert any("overriding property B" in m for m in diag.messages)


def test_unknown_parent_is_an_error():
    with pytest.raises(N2D2PyError, match=r"inherited section \[nope\] does not exist"):
        parse_text("[c] nope\n")


def test_duplicate_section_is_an_error_with_first_location():
    with pytest.raises(N2D2PyError, match=r"already exists \(first defined at m.ini:1\)") as info:
        parse_text("[a]\nK=1\n[a]\n", "m.ini")
    assert info.value.line == 3


def test_redefined_key_warns_and_last_wins():
    diag = Diagnostics(stream=open("/dev/null", "w"))
    doc = parse_text("[a]\nK=1\nK=2\n", diagnostics=diag)
    assert raw(doc, "a", "K") == "2"
    assert any('previous value was "1"' in m for m in diag.messages)


def test_missing_equals_is_an_error():
    with pytest.raises(N2D2PyError, match="missing '='") as info:
        parse_text("[a]\nKernelDims 5 5\n", "m.ini")
    assert str(info.value).startswith("m.ini:2: [a] ")


def test_keys_are_case_sensitive():
    doc = parse_text("[a]\nk=1\nK=2\n")
    assert raw(doc, "a", "k") == "1" and raw(doc, "a", "K") == "2"


def test_every_value_remembers_file_and_line(tmp_path):
    path = tmp_path / "m.ini"
    path.write_text("; c\n[a]\n\nK=1\n")
    prop = parse_file(path).sections["a"].props["K"]
    assert (prop.file, prop.line, prop.section) == (str(path), 4, "a")


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty"), (b"  \n; only\n\n", None), (b"\x00\x01\x02", "binary"), (b"\xff\xfe[a]", "UTF-8")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "m.ini"
    path.write_bytes(content)
    if message is None:  # comments only: parses, to an empty document
        assert parse_file(path).section_names() == []
        return
    with pytest.raises(N2D2PyError, match=message):
        parse_file(path)


def test_missing_file():
    with pytest.raises(N2D2PyError, match="INI file not found"):
        parse_file("/nonexistent/model.ini")


def test_section_names_keep_file_order():
    doc = parse_text("[b]\n[a]\n[c]\n")
    assert doc.section_names() == ["b", "a", "c"]
    assert Section(doc, ["a"]).get_str("K", "d") == "d"
