"""CIFAR10_Database / CIFAR100_Database on small binary batches written per test."""

import numpy as np
import pytest

from n2d2py.data.cifar import CIFAR10_NAMES, read_batch, write_batch
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES


def images_for(labels, offset=0):
    """Image k: blue plane = k + offset, green = label, red = 200 (BGR order)."""
    n = len(labels)
    imgs = np.zeros((n, 32, 32, 3), np.uint8)
    imgs[..., 0] = (np.arange(n) + offset)[:, None, None]
    imgs[..., 1] = np.asarray(labels)[:, None, None]
    imgs[..., 2] = 200
    return imgs


def make_cifar10(root, per_file=4, n_test=6, names=True):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        labels = [(3 * i + k) % 10 for k in range(per_file)]  # first label seen: 3
        write_batch(root / f"data_batch_{i}.bin", images_for(labels, 10 * i), labels)
    test_labels = [k % 10 for k in range(n_test)]
    write_batch(root / "test_batch.bin", images_for(test_labels, 100), test_labels)
    if names:
        (root / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    return root


def database(body, type_name="CIFAR10_Database"):
    doc = parse_text(f"[database]\nType={type_name}\n{body}\n", "c.ini")
    sec = Section(doc, ["database"])
    return DATABASES.get(type_name).from_section(sec)


def test_batch_round_trip_and_byte_layout(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    path = write_batch(tmp_path / "b.bin", imgs, [7, 1, 2])
    raw = path.read_bytes()
    assert len(raw) == 3 * 3073 and raw[0] == 7
    assert raw[1] == imgs[0, 0, 0, 2] and raw[1 + 1024] == imgs[0, 0, 0, 1]  # R plane, G plane
    back, labels = read_batch(path)
    assert np.array_equal(back, imgs) and labels.tolist() == [7, 1, 2]


def test_cifar10_sets_labels_and_bgr(tmp_path):
    make_cifar10(tmp_path)
    db = database(f"DataPath={tmp_path}\nValidation=0.2").load(np.random.default_rng(0))
    assert (db.size("Learn"), db.size("Validation"), db.size("Test")) == (16, 4, 6)
    # label ids follow first appearance (N2D2's labelID): 3 (cat) first
    assert db.label_names[:4] == ["cat", "deer", "dog", "frog"]
    assert len(db.label_names) == 10
    test = db.images("Test")
    assert test.shape == (6, 32, 32, 3) and test.dtype == np.uint8
    assert test[:, 0, 0, 2].tolist() == [200] * 6  # red is channel 2 (BGR)
    names = [db.label_names[i] for i in db.labels("Test")]
    assert names == [CIFAR10_NAMES[k] for k in test[:, 0, 0, 1]]
    assert np.array_equal(db.ids("Test"), np.arange(20, 26))


def test_use_test_for_validation_adds_the_test_batch(tmp_path):
    make_cifar10(tmp_path)
    db = database(f"DataPath={tmp_path}\nUseTestForValidation=1").load(np.random.default_rng(0))
    assert db.size("Learn") == 20 and db.size("Validation") == 6 and db.size("Test") == 6
    assert np.array_equal(db.ids("Validation"), db.ids("Test"))


def test_missing_label_names_fall_back_with_a_warning(tmp_path):
    make_cifar10(tmp_path, names=False)
    db = database(f"DataPath={tmp_path}").load(np.random.default_rng(0))
    assert db.label_names[0] == "cat"
    assert "batches.meta.txt not found" in str(db.section.doc.diagnostics.messages)


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    with pytest.raises(N2D2PyError) as info:
        database("").load(np.random.default_rng(0))
    text = str(info.value)
    assert str(tmp_path / "cifar-10-batches-bin") in text and "does not exist" in text
    assert f"N2D2_DATA={tmp_path}" in text and "cifar-10-binary.tar.gz" in text
    assert "DataPath" in text and info.value.section == "database"
    make_cifar10(tmp_path / "cifar-10-batches-bin")
    (tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(N2D2PyError, match="missing in .*: data_batch_4.bin"):
        database("").load(np.random.default_rng(0))


def test_truncated_batch_is_named(tmp_path):
    make_cifar10(tmp_path)
    path = tmp_path / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(N2D2PyError, match="whole number of 3,073-byte records") as info:
        database(f"DataPath={tmp_path}").load(np.random.default_rng(0))
    assert info.value.file == str(path)


@pytest.mark.parametrize("coarse", [0, 1])
def test_cifar100_fine_or_coarse(tmp_path, coarse):
    fine, coarse_labels = [5, 7, 5, 9], [1, 0, 1, 2]
    write_batch(tmp_path / "train.bin", images_for(fine), fine, coarse=coarse_labels)
    write_batch(tmp_path / "test.bin", images_for(fine[:2]), fine[:2], coarse=coarse_labels[:2])
    (tmp_path / "fine_label_names.txt").write_text("\n".join(f"f{i}" for i in range(100)))
    (tmp_path / "coarse_label_names.txt").write_text("\n".join(f"c{i}" for i in range(20)))
    db = database(f"DataPath={tmp_path}\nUseCoarse={coarse}", "CIFAR100_Database")
    db.load(np.random.default_rng(0))
    expected = ["c1", "c0", "c2"] if coarse else ["f5", "f7", "f9"]
    assert db.label_names == expected
    got = [db.label_names[i] for i in db.labels("Learn")]
    assert got == [expected[0], expected[1], expected[0], expected[2]]
    assert db.size("Test") == 2
