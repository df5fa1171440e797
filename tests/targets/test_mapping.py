"""LabelsMapping files (spec §5.2): `*`, `default`, wildcards `*` and `?`, −1, names with
spaces, N2D2's own IMDB-WIKI mapping files."""

import pytest

from n2d2py.errors import N2D2PyError
from n2d2py.targets import parse_labels_mapping

IMDB_LABELS = ["background", "M-34", "F-?", "M-?", "?-27", "F-5", "M-8"]
FACE = "# background\nbackground 0\n\n# padding\n* -1\n\n# not background = face\ndefault 1\n"
GENDER = "# background\ndefault -1\n\n# male gender\nM-* 0\n\n# female gender\nF-* 1\n"


def parse(tmp_path, text, labels, nb_targets=2, warn=None):
    path = tmp_path / "map.dat"
    path.write_text(text)
    return parse_labels_mapping(str(path), labels, nb_targets, warn)


def lookup(mapping, default, label):
    return mapping.get(label, default)


def test_face_mapping_of_n2d2(tmp_path):
    mapping, default = parse(tmp_path, FACE, IMDB_LABELS)
    assert default == 1 and mapping == {0: 0, -1: -1}
    got = [lookup(mapping, default, l) for l in range(-1, len(IMDB_LABELS))]
    assert got == [-1, 0, 1, 1, 1, 1, 1, 1]


def test_gender_mapping_of_n2d2_wildcards(tmp_path):
    mapping, default = parse(tmp_path, GENDER, IMDB_LABELS)
    got = [lookup(mapping, default, l) for l in range(-1, len(IMDB_LABELS))]
    # padding (-1), background, "?-27" → default −1; M-* → 0 (M-? included); F-* → 1
    assert got == [-1, -1, 0, 1, 0, -1, 1, 0]


def test_question_mark_is_one_character_and_plus_is_literal(tmp_path):
    labels = ["M-1", "M-12", "M+1"]
    mapping, _ = parse(tmp_path, "M-? 0\nM+? 1\n", labels)
    assert mapping == {0: 0, 2: 1}


def test_literal_label_with_a_wildcard_character_beats_the_wildcard(tmp_path):
    # the tutorial's gender file lists "M-? 0" while the database has a label "M-?"
    mapping, default = parse(tmp_path, "default -1\nM-? 0\nM-* 1\n", IMDB_LABELS)
    assert mapping[3] == 0 and mapping[1] == 1 and mapping[6] == 1 and default == -1


def test_names_with_spaces_quoted_or_not(tmp_path):
    mapping, _ = parse(tmp_path, 'big cat 1\n"small dog" 0\n', ["big cat", "small dog"])
    assert mapping == {0: 1, 1: 0}


def test_unmatched_wildcard_and_name_warn(tmp_path):
    warnings = []
    parse(tmp_path, "X-* 0\nhorse 1\n", IMDB_LABELS, warn=warnings.append)
    assert "no label named 'horse'" in warnings[0] and "no label matches 'X-*'" in warnings[1]


@pytest.mark.parametrize("text, labels, message, line", [
    ("M-* 0\nF-* 1\nM-3? 1\n", IMDB_LABELS, "already exists", 3),
    ("* 0\n", ["*", "a"], "ambiguous '\\*'", 1),
    ("* -1\n* 0\n", IMDB_LABELS, "already exists", 2),
    ("M-* 2\n", IMDB_LABELS, "out of range", 1),
    ("M-* -2\n", IMDB_LABELS, "expected", 1),
    ("M-1 0\nM-* x\n", ["M-1"], "expected", 2),
])
def test_errors_name_the_line(tmp_path, text, labels, message, line):
    with pytest.raises(N2D2PyError, match=message) as info:
        parse(tmp_path, text, labels)
    assert info.value.line == line
