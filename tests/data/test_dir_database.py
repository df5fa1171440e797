"""DIR_Database on generated folders of PNG files, one sub-folder per class."""

import cv2
import numpy as np
import pytest

from n2d2py import backend
from n2d2py.data.provider import StimuliProvider
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES

COUNTS = {"cat": 10, "dog": 6, "emu": 8}


def make_tree(root, counts=COUNTS, size=(12, 10)):
    """root/<class>/<class>_<k>.png: a BGR image whose blue value is k, green the class index."""
    for c, (name, n) in enumerate(sorted(counts.items())):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            img = np.zeros(size + (3,), np.uint8)
            img[..., 0], img[..., 1], img[..., 2] = k, c, 77
            cv2.imwrite(str(folder / f"{name}_{k:02d}.png"), img)
    return root


def database(body, name="d.ini"):
    doc = parse_text(f"[database]\nType=DIR_Database\n{body}\n", name)
    return DATABASES.get("DIR_Database").from_section(Section(doc, ["database"]))


def sizes(db):
    return tuple(db.size(s) for s in ("Learn", "Validation", "Test"))


def per_label(db, set_name):
    labels = db.labels(set_name)
    return [int((labels == i).sum()) for i in range(len(db.label_names))]


def test_labels_files_and_equi_partition(tmp_path):
    make_tree(tmp_path)
    db = database(f"DataPath={tmp_path}\nLearn=0.5\nValidation=0.25").load(
        np.random.default_rng(0))
    assert db.label_names == ["/cat", "/dog", "/emu"]  # LabelName + "/" + folder, as N2D2
    # equi-partition on the smallest class (6): 3 learn + 2 validation (1.5 rounds half-up)
    assert per_label(db, "Learn") == [3, 3, 3] and per_label(db, "Validation") == [2, 2, 2]
    assert per_label(db, "Test") == [5, 1, 3]  # everything else is tested
    imgs = db.images("Learn")
    assert imgs.shape == (9, 12, 10, 3) and imgs.dtype == np.uint8
    assert (imgs[..., 1] == db.labels("Learn")[:, None, None]).all()  # green = class
    assert (imgs[..., 2] == 77).all()  # decoded as BGR
    assert db.name("Test", 0).endswith(".png")


def test_per_label_without_equi_partition(tmp_path):
    make_tree(tmp_path)
    db = database(f"DataPath={tmp_path}\nLearn=0.5\nValidation=0.25\n"
                  "EquivLabelPartitioning=0").load(np.random.default_rng(1))
    assert per_label(db, "Learn") == [5, 3, 4] and per_label(db, "Validation") == [3, 2, 2]
    assert per_label(db, "Test") == [2, 1, 2]


def test_counts_without_per_label_partitioning(tmp_path):
    make_tree(tmp_path)
    db = database(f"DataPath={tmp_path}\nPerLabelPartitioning=0\nLearn=12\nValidation=4\n"
                  "RandomPartitioning=0").load(np.random.default_rng(0))
    assert sizes(db) == (12, 4, 8)
    assert db.ids("Learn").tolist() == list(range(12))  # in loading order
    with pytest.raises(N2D2PyError, match="number of stimuli") as info:
        database(f"DataPath={tmp_path}\nPerLabelPartitioning=0\nLearn=0.5").load(
            np.random.default_rng(0))
    assert info.value.key == "Learn"


def test_partition_is_seeded(tmp_path):
    make_tree(tmp_path)
    body = f"DataPath={tmp_path}\nLearn=0.5\nValidation=0.25"
    a, b, c = (database(body).load(np.random.default_rng(s)) for s in (5, 5, 6))
    assert np.array_equal(a.ids("Learn"), b.ids("Learn"))
    assert not np.array_equal(a.ids("Learn"), c.ids("Learn"))


def test_depth_label_depth_and_label_name(tmp_path):
    make_tree(tmp_path / "animals")
    cv2.imwrite(str(tmp_path / "top.png"), np.zeros((12, 10, 3), np.uint8))
    flat = database(f"DataPath={tmp_path}\nDepth=0\nLearn=1.0").load(np.random.default_rng(0))
    assert flat.label_names == [""] and sizes(flat) == (1, 0, 0)
    deep = database(f"DataPath={tmp_path}\nDepth=-1\nLabelDepth=2\nLabelName=zoo\nLearn=0.0"
                    ).load(np.random.default_rng(0))
    assert deep.label_names == ["zoo", "zoo/animals/cat", "zoo/animals/dog", "zoo/animals/emu"]
    one = database(f"DataPath={tmp_path}\nDepth=2\nLabelDepth=0\nLabelName=all\nLearn=1.0"
                   ).load(np.random.default_rng(0))
    assert one.label_names == ["all"] and sizes(one) == (25, 0, 0)
    none = database(f"DataPath={tmp_path}\nDepth=2\nLabelDepth=-1\nLearn=0.5"
                    ).load(np.random.default_rng(0))
    assert none.label_names == [] and sizes(none) == (0, 0, 25)  # unlabelled: all tested
    assert (none.labels("Test") == -1).all()


def test_extensions_ignore_masks_and_unreadable_files(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    cv2.imwrite(str(tmp_path / "dog" / "extra.jpg"), np.zeros((12, 10, 3), np.uint8))
    (tmp_path / "_noise").mkdir()
    cv2.imwrite(str(tmp_path / "_noise" / "n.png"), np.zeros((12, 10, 3), np.uint8))
    db = database(f"DataPath={tmp_path}\nLearn=1.0\nEquivLabelPartitioning=0")
    db.load(np.random.default_rng(0))
    assert db.size("Learn") == 26 and "/_noise" in db.label_names
    assert "1 file(s) skipped" in "".join(db.section.doc.diagnostics.messages)
    png = database(f"DataPath={tmp_path}\nLearn=1.0\nEquivLabelPartitioning=0\n"
                   "ValidExtensions=PNG\nIgnoreMasks=*/_noise").load(np.random.default_rng(0))
    assert png.size("Learn") == 24 and png.label_names == ["/cat", "/dog", "/emu"]


def test_load_more_and_load_in_memory(tmp_path):
    make_tree(tmp_path / "train")
    make_tree(tmp_path / "val", {"cat": 2, "emu": 3})
    db = database(f"DataPath={tmp_path}/train\nLearn=1.0\nEquivLabelPartitioning=0\n"
                  "LoadInMemory=1\nLoadMore=database.val\n"
                  f"[database.val]\nDataPath={tmp_path}/val\nLearn=0.0\nValidation=1.0")
    db.load(np.random.default_rng(0))
    assert sizes(db) == (24, 4, 1)  # equi-partition of val/: 2 per class, the rest tested
    assert per_label(db, "Validation") == [2, 0, 2]  # same names, same label ids
    first = db.images("Validation", [0])
    assert db.images("Validation", [0]) is not first and db._images._kept


def test_errors_name_the_key_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    with pytest.raises(N2D2PyError) as info:
        database("DataPath=${N2D2_DATA}/nowhere\nLearn=1.0").load(np.random.default_rng(0))
    assert info.value.key == "DataPath" and str(tmp_path / "nowhere") in str(info.value)
    assert f"N2D2_DATA={tmp_path}" in str(info.value)
    with pytest.raises(N2D2PyError, match="required key is missing") as info:
        database("Learn=1.0")
    with pytest.raises(N2D2PyError, match="not supported") as info:
        database(f"DataPath={tmp_path}\nLearn=1.0\nROIFile=rois.txt")
    assert info.value.key == "ROIFile"
    with pytest.raises(N2D2PyError, match="exceed 1"):
        make_tree(tmp_path / "t")
        database(f"DataPath={tmp_path}/t\nLearn=0.8\nValidation=0.3").load(
            np.random.default_rng(0))
    (tmp_path / "t" / "cat" / "notapng.png").write_bytes(b"not a png")
    db = database(f"DataPath={tmp_path}/t\nLearn=1.0").load(np.random.default_rng(0))
    assert db.dropped == [(str(tmp_path / "t" / "cat" / "notapng.png"),
                           "not a .png file (its first bytes are b'not ')")]
    assert not any(f.endswith("notapng.png") for f in db.files)  # left out at load
    # a file that starts like a PNG but is damaged further on fails when decoded, by name
    (tmp_path / "t" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    db = database(f"DataPath={tmp_path}/t\nLearn=1.0").load(np.random.default_rng(0))
    with pytest.raises(N2D2PyError, match="cannot decode") as info:
        for set_name in ("Learn", "Validation", "Test"):
            db.images(set_name)
    assert info.value.file.endswith("broken.png")


def test_provider_resizes_images_of_different_sizes(tmp_path):
    make_tree(tmp_path, {"a": 3})
    make_tree(tmp_path, {"b": 3}, size=(20, 16))
    gray = tmp_path / "b" / "gray.png"
    cv2.imwrite(str(gray), np.full((9, 7), 50, np.uint8))  # gray: one channel on disk
    text = (f"[database]\nType=DIR_Database\nDataPath={tmp_path}\nLearn=1.0\n"
            "EquivLabelPartitioning=0\n[sp]\nSizeX=8\nSizeY=8\nNbChannels=3\nBatchSize=4\n"
            "[sp.Transformation-1]\nType=ColorSpaceTransformation\nColorSpace=BGR\n"
            "[sp.Transformation-2]\nType=RescaleTransformation\nWidth=8\nHeight=8\n")
    doc = parse_text(text, "p.ini")
    device = backend.cpu(0)
    db = DATABASES.get("DIR_Database").from_section(Section(doc, ["database"]))
    provider = StimuliProvider.from_section(Section(doc, ["sp"]), db, device)
    provider.load(device.rng)
    x = np.concatenate([b for b, _, _ in provider.batches("Learn")])
    assert x.shape == (7, 3, 8, 8)
    assert np.isclose(x[:, 2].max(), 77 / 255)
