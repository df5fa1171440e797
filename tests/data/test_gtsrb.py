"""GTSRB_DIR_Database on generated data in GTSRB's distribution layout: labels from the
ground-truth CSV files, crops to the sign box, sets, errors."""

import numpy as np
import pytest

from n2d2py.data.gtsrb import read_boxes
from n2d2py.data.layouts import write_gtsrb
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES


def database(root, body=""):
    doc = parse_text(f"[database]\nType=GTSRB_DIR_Database\nDataPath={root}\n{body}\n", "g.ini")
    return DATABASES.get("GTSRB_DIR_Database").from_section(Section(doc, ["database"]))


def test_labels_crops_and_sets(tmp_path):
    write_gtsrb(tmp_path, n_classes=3, per_class=5, n_test=6, size=(30, 32), margin=3)
    db = database(tmp_path, "Validation=0.2").load(np.random.default_rng(0))
    assert db.label_names == ["0", "1", "2"]  # the class numbers, in reading order
    assert tuple(db.size(s) for s in ("Learn", "Validation", "Test")) == (12, 3, 6)
    for set_name in ("Learn", "Validation"):  # per label: 4 learn + 1 validation
        counts = np.bincount(db.labels(set_name), minlength=3)
        assert counts.tolist() == ([4, 4, 4] if set_name == "Learn" else [1, 1, 1])
    assert db.labels("Test").tolist() == [0, 1, 2, 0, 1, 2]
    imgs = db.images("Learn")  # cropped to the box: x 3..29, y 3..27 (x2, y2 exclusive)
    assert imgs.shape == (12, 24, 26, 3)
    assert imgs.reshape(12, -1, 3).max(axis=1).min() > 0  # no black frame left
    assert db.images("Test").shape == (6, 24, 26, 3)


def test_images_without_a_box_are_unlabelled_and_the_header_is_skipped(tmp_path):
    write_gtsrb(tmp_path, n_classes=2, per_class=2, n_test=2)
    csv = tmp_path / "Final_Training" / "Images" / "00001" / "GT-00001.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-1]) + "\n")  # the last image of class 1 loses its box
    db = database(tmp_path).load(np.random.default_rng(0))
    assert db.size("Learn") == 3 and db.labels("Test").tolist() == [-1, 0, 1]  # by id
    boxes = read_boxes(csv)
    assert list(boxes) == ["00000_00000.ppm"] and boxes["00000_00000.ppm"][4] == "1"


def test_errors(tmp_path):
    with pytest.raises(N2D2PyError, match="Final_Training/Images"):
        database(tmp_path).load(np.random.default_rng(0))
    write_gtsrb(tmp_path, n_classes=1, per_class=1, n_test=1)
    (tmp_path / "GT-final_test.csv").unlink()
    with pytest.raises(N2D2PyError, match="GT-final_test.csv"):
        database(tmp_path).load(np.random.default_rng(0))
    bad = tmp_path / "bad.csv"
    bad.write_text("a.ppm;30;32;3;3;29\n")
    with pytest.raises(N2D2PyError, match="expected 8 fields") as info:
        read_boxes(bad)
    assert info.value.line == 1
    with pytest.raises(N2D2PyError, match="Validation: must be between 0 and 1"):
        database(tmp_path, "Validation=1.5")
