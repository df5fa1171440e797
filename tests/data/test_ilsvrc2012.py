"""ILSVRC2012_Database on a generated folder in ImageNet's layout (train/<synset>, val/,
val.txt, synsets.txt): labels, sets, keys, and the errors a broken layout gives."""

import numpy as np
import pytest

from n2d2py.data.layouts import write_ilsvrc2012
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES


def database(body, monkeypatch=None, root=None):
    if root is not None:
        monkeypatch.setenv("N2D2_DATA", str(root))
    doc = parse_text(f"[database]\nType=ILSVRC2012_Database\n{body}\n", "d.ini")
    return DATABASES.get("ILSVRC2012_Database").from_section(Section(doc, ["database"]))


def sizes(db):
    return tuple(db.size(s) for s in ("Learn", "Validation", "Test"))


def test_model_keys_learn_all_of_train_validate_and_test_on_val(tmp_path, monkeypatch):
    synsets = write_ilsvrc2012(tmp_path / "ILSVRC2012", n_synsets=3, per_class=4,
                               val_per_class=2)
    db = database("RandomPartitioning=0\nLearn=1.0", monkeypatch, tmp_path)  # N2D2's models
    db.load(np.random.default_rng(0))
    assert db.label_names == synsets  # label i = line i of synsets.txt
    assert sizes(db) == (12, 6, 6)  # UseValidationForTest=1: val.txt twice
    assert db.labels("Learn").tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert db.labels("Validation").tolist() == db.labels("Test").tolist() == [0, 0, 1, 1, 2, 2]
    assert db.name("Validation", 0).endswith("val/ILSVRC2012_val_00000001.JPEG")
    assert db.name("Test", 0) == db.name("Validation", 0)  # same file, another stimulus id
    assert db.ids("Test")[0] != db.ids("Validation")[0]
    img = db.images("Learn", [0])
    assert img.shape == (1, 20, 24, 3) and img.dtype == np.uint8


def test_learn_fraction_background_and_no_val_for_test(tmp_path):
    root = tmp_path / "in"
    write_ilsvrc2012(root, n_synsets=2, per_class=5, val_per_class=1)
    db = database(f"DataPath={root}\nLearn=0.7\nUseValidationForTest=0\nBackgroundClass=1\n"
                  "RandomPartitioning=0").load(np.random.default_rng(0))
    assert db.label_names == ["background", "n00000000", "n00000001"]
    assert sizes(db) == (7, 2, 3)  # half-up(0.7·10) = 7 learn, the last 3 of train tested
    assert db.labels("Test").tolist() == [2, 2, 2]  # in order: the last synset's files
    assert db.labels("Validation").tolist() == [1, 2]  # val.txt index + 1 (background)
    rnd = database(f"DataPath={root}\nLearn=0.7\nUseValidationForTest=0").load(
        np.random.default_rng(3))
    assert sizes(rnd) == (7, 2, 3) and set(rnd.labels("Test")) <= {0, 1}


def test_human_readable_names_ship_with_the_models():
    from pathlib import Path

    names = (Path(__file__).parents[2] / "models" / "ilsvrc2012_labels.dat").read_text()
    lines = names.splitlines()
    assert len(lines) == 1000 and lines[0].startswith("tench") and lines[-1].startswith(
        "toilet tissue")


def test_errors_name_the_synset_file_and_line(tmp_path):
    root = tmp_path / "in"
    write_ilsvrc2012(root)
    base = f"DataPath={root}\nLearn=1.0\n"
    with pytest.raises(N2D2PyError, match="Learn: required key is missing"):
        database(f"DataPath={root}")
    (root / "synsets.txt").write_text("n00000000\nn00000009\nn00000001\n")
    with pytest.raises(N2D2PyError, match=r"synset n00000009 \(line 2 of .*synsets.txt\) has no "
                       "folder") as info:
        database(base).load(np.random.default_rng(0))
    assert info.value.key == "LabelPath"
    (root / "synsets.txt").write_text("n00000000\nn00000001\n")  # n00000002 not listed
    (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 0\n")
    db = database(base).load(np.random.default_rng(0))
    assert db.label_names == ["n00000000", "n00000001"]  # unlisted folders are not loaded
    assert db.extra_folders == ["n00000002"]
    (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 0\nmissing.JPEG 1\n")
    with pytest.raises(N2D2PyError, match="missing.JPEG does not exist") as info:
        database(base).load(np.random.default_rng(0))
    assert info.value.file.endswith("val.txt") and info.value.line == 2
    (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 7\n")
    with pytest.raises(N2D2PyError, match="class index 7 out of range") as info:
        database(base).load(np.random.default_rng(0))
    with pytest.raises(N2D2PyError, match="val.txt not found"):
        (root / "val.txt").unlink()
        database(base).load(np.random.default_rng(0))
    with pytest.raises(N2D2PyError, match="synset list"):
        database(f"DataPath={root}\nLearn=1.0\nLabelPath={root}/none.txt").load(
            np.random.default_rng(0))
    with pytest.raises(N2D2PyError, match="DefaultLabel"):
        database(base + "DefaultLabel=bg")
    with pytest.raises(N2D2PyError, match="Validation: is not a key of ILSVRC2012_Database"):
        database(base + "Validation=0.1")


def test_unreadable_images_are_dropped_with_one_warning_and_empty_synsets_kept(tmp_path):
    root = tmp_path / "in"
    write_ilsvrc2012(root, n_synsets=3)
    bad = root / "train" / "n00000001" / "bad.JPEG"
    bad.write_bytes(b"GIF89a not a jpeg")
    (root / "train" / "n00000001" / "empty.JPEG").write_bytes(b"")
    for f in (root / "train" / "n00000002").iterdir():
        f.unlink()
    (root / "val" / "broken.JPEG").write_bytes(b"\x00\x01")
    with open(root / "val.txt", "a") as f:
        f.write("broken.JPEG 1\n")
    db = database(f"DataPath={root}\nLearn=1.0").load(np.random.default_rng(0))
    assert db.label_names[2] == "n00000002" and db.empty_synsets == ["n00000002"]
    dropped = [p for p, _ in db.dropped]
    assert str(bad) in dropped and str(root / "val" / "broken.JPEG") in dropped
    assert len(dropped) == 3  # the val file once, though val.txt is read twice
    assert not any(str(p) in db.files for p in dropped)
    db.images("Learn"), db.images("Test")  # everything left decodes

