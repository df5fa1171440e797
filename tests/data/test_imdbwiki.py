"""IMDBWIKI_Database: the metadata reader, labels, ROIs, partition, and the CLI on a set
written by tools/make_imdbwiki.py."""

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from n2d2py import backend, cli
from n2d2py.data.databases import PACKAGE_DATA
from n2d2py.data.imdbwiki import IMDBWIKI_Database, label_text, read_faces
from n2d2py.data.provider import StimuliProvider
from n2d2py.data.rois import ROI, LabelMaps
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text

TOOL = Path(__file__).parents[2] / "tools" / "make_imdbwiki.py"
MNIST = PACKAGE_DATA / "mnist"  # the MNIST shipped inside n2d2py


def make_tool():
    spec = importlib.util.spec_from_file_location("make_imdbwiki", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "IMDB-WIKI"
    make_tool().generate(out, frames=24, width=64, height=48, seed=3, crop=True,
                         mnist_dir=MNIST, progress=False, max_faces=3)
    return out


# -- metadata -------------------------------------------------------------------------------

def test_read_faces_fields_comments_entities_and_extra_columns(tmp_path):
    csv = tmp_path / "wiki.csv"
    csv.write_text("# full_path;name;...\n\n"
                   "  17/a.jpg;Tom &amp; Jerry Smith;10;20;30.5;44;1950;1984;1;0.9;nan  \n"
                   "18/b.jpg;;1;1;5;5;1970;1960;0.5\n")
    faces, notices = read_faces(csv)
    assert len(faces) == 2 and len(notices) == 1 and "Ignoring commented line" in notices[0]
    assert faces[0] == (3, "17/a.jpg", "Tom & Jerry Smith", 10.0, 20.0, 30.5, 44.0, 1950.0,
                        1984.0, 1.0)
    assert faces[1][1:3] == ("18/b.jpg", "")  # an empty name is allowed


@pytest.mark.parametrize("line", [
    "17/a.jpg;name;10;20;30;40;1950;1984",  # a field missing
    "17/a.jpg;name;10;20;x;40;1950;1984;1",  # not a number
    "17/a.jpg;name;10;20;30;40;1950;1984;NaN",  # N2D2's stream cannot read NaN either
    "17/a.jpg",
])
def test_an_unreadable_line_is_one_error_with_file_and_line(tmp_path, line):
    csv = tmp_path / "wiki.csv"
    csv.write_text("17/ok.jpg;n;1;2;3;4;1950;1980;0\n" + line + "\n")
    with pytest.raises(N2D2PyError) as info:
        read_faces(csv)
    assert str(info.value).startswith(f"{csv}:2: unreadable value in line")


def test_label_text_as_n2d2_writes_it():
    notes = []
    assert label_text("x", 1950, 1984, 1.0, False, notes, "f") == "M-34"
    assert label_text("x", 1950, 1984.5, 0.0, False, notes, "f") == "F-34.5"
    assert label_text("x", 1990, 1984, 0.0, False, notes, "f") == "F-?"
    assert label_text("x", 1800, 1984, 0.0, False, notes, "f") == "F-?"  # 184 > 99
    assert label_text("x", 1950, 1977, 0.5, False, notes, "f") == "?-27"
    assert len(notes) == 3 and "Gender type not defined for frame f" in notes
    assert label_text("Jane Doe", 0, 0, 9, True, [], "f") == "Jane Doe"


# -- the database ---------------------------------------------------------------------------

def write_set(root, lines, part="wiki"):
    (root / "imdb_metadata").mkdir(parents=True, exist_ok=True)
    (root / "imdb_metadata" / f"{part}.csv").write_text("\n".join(lines) + "\n")


def database(text, root):
    doc = parse_text(f"[database]\nType=IMDBWIKI_Database\nDataPath={root}\n"
                     f"LabelPath={root}/imdb_metadata\n{text}\n", "db.ini")
    return IMDBWIKI_Database.from_section(Section(doc, ["database"]))


def test_full_frames_one_roi_per_face_labels_in_order_and_corrupted_frames(tmp_path, capsys):
    write_set(tmp_path, ["a.jpg;A;10;20;30;44;1950;1984;1",
                         "a.jpg;B;1;1;50;50;1950;1984;1",  # corrupted: skipped
                         "b.jpg;C;5.9;6;8;9;1960;1990;0",
                         "c.jpg;D;0;0;10;10;1950;1984;1"])
    write_set(tmp_path, ["i.jpg;E;2;3;4;5;1950;1960;0"], part="imdb")
    db = database("DefaultLabel=background\nIMDBSet=1\nLearn=1.0", tmp_path)
    db.load(np.random.default_rng(0))
    assert db.label_names == ["background", "F-10", "M-34", "F-30"]  # IMDb loads first
    assert db.files == [str(tmp_path / p) for p in ("imdb/i.jpg", "wiki/a.jpg", "wiki/b.jpg",
                                                    "wiki/c.jpg")]
    assert db._labels.tolist() == [-1, -1, -1, -1]
    assert [db.stimulus_rois(i) for i in range(4)] == [
        [ROI(1, 2, 3, 3, 4)], [ROI(2, 10, 20, 29, 43)], [ROI(3, 5, 6, 6, 8)],
        [ROI(2, 0, 0, 9, 9)]]
    assert db.size("Learn") == 4 and db.nb_corrupted == 1
    err = capsys.readouterr().err
    assert "Wrong label location for frame" in err and "(corrupted frame(s): 1)" in err
    # a composite map: DefaultLabel outside the face
    labels = db.label_data(1, 50, 40)
    assert labels.shape == (50, 40) and labels[0, 0] == 0 and labels[20, 10] == 2


def test_crop_frames_are_labelled_stimuli_and_must_exist(tmp_path):
    write_set(tmp_path, ["a.jpg;A;10;20;30;44;1950;1984;1", "b.jpg;B;1;2;3;4;1950;1960;0"])
    (tmp_path / "wiki_crop").mkdir()
    (tmp_path / "wiki_crop" / "a.jpg").write_bytes(b"")
    db = database("CropFrame=1", tmp_path)
    with pytest.raises(N2D2PyError, match="File does not exist: .*wiki_crop/b.jpg"):
        db.load(np.random.default_rng(0))
    (tmp_path / "wiki_crop" / "b.jpg").write_bytes(b"")
    db = database("CropFrame=1\nUseNameAsLabel=1\nLearn=0.5", tmp_path)
    db.load(np.random.default_rng(0))
    assert db.label_names == ["A", "B"] and db._labels.tolist() == [0, 1]
    assert db.stimulus_rois(0) == [] and db.size("Learn") == 2  # one per label (half-up)


def test_names_as_labels_on_full_frames_partition_nothing(tmp_path, capsys):
    write_set(tmp_path, ["a.jpg;Ann;10;20;30;44;1950;1984;1", "b.jpg;Bob;1;2;3;4;1950;1960;0"])
    db = database("UseNameAsLabel=1", tmp_path).load(np.random.default_rng(0))
    assert db.label_names == ["Ann", "Bob"] and db.stimulus_rois(1) == [ROI(1, 1, 2, 2, 3)]
    assert [db.size(s) for s in ("Learn", "Validation", "Test")] == [0, 0, 0]
    assert "no stimulus were partitioned" in capsys.readouterr().err


def test_global_partition_fractions(tmp_path):
    write_set(tmp_path, [f"{i}.jpg;n;1;2;5;6;1950;1980;1" for i in range(20)])
    db = database("Learn=0.9\nValidation=0.05", tmp_path).load(np.random.default_rng(1))
    assert [db.size(s) for s in ("Learn", "Validation", "Test")] == [18, 1, 1]
    ids = np.concatenate([db.sets[s] for s in ("Learn", "Validation", "Test")])
    assert sorted(ids.tolist()) == list(range(20))


def test_keys_checked_and_unsupported_ones_refused(tmp_path):
    write_set(tmp_path, ["a.jpg;A;10;20;30;44;1950;1984;1"])
    with pytest.raises(N2D2PyError, match=r"\[database\] Validation: Learn \+ Validation"):
        database("Learn=0.9\nValidation=0.2", tmp_path)
    with pytest.raises(N2D2PyError, match="TargetDataPath: target data"):
        database("TargetDataPath=/x", tmp_path)
    with pytest.raises(N2D2PyError, match="LabelPath: IMDB-WIKI metadata .*imdb.csv not found"):
        database("IMDBSet=1", tmp_path).load(np.random.default_rng(0))
    with pytest.raises(N2D2PyError, match="no face loaded"):
        database("WikiSet=0", tmp_path).load(np.random.default_rng(0))


def test_message_throttling_as_n2d2(tmp_path, capsys):
    write_set(tmp_path, [f"{i}.jpg;n;1;1;5;6;1950;1980;1" for i in range(150)])
    with pytest.raises(N2D2PyError, match="no face loaded"):
        database("", tmp_path).load(np.random.default_rng(0))
    err = capsys.readouterr().err
    assert err.count("Wrong label location") == 99
    assert "Already 100 messages, ignoring further notices..." in err
    assert "50 messages (warning and/or notices) were silenced" in err


# -- the generator and the CLI --------------------------------------------------------------

def test_generator_layout_determinism_and_rois(generated, tmp_path):
    csv = generated / "imdb_metadata" / "wiki.csv"
    faces, _ = read_faces(csv)
    assert faces and all((generated / "wiki" / f[1]).is_file() for f in faces)
    assert (generated / "wiki_crop").is_dir()
    import cv2

    for _, path, name, x0, y0, x1, y1, dob, taken, gender in faces:
        if (x0, y0) == (1, 1):
            continue
        digit = int(name.split()[1])
        assert gender == (1.0 if digit % 2 == 0 else 0.0) and taken - dob == 20 + 5 * digit
        gray = cv2.imread(str(generated / "wiki" / path), cv2.IMREAD_GRAYSCALE).astype(float)
        box = gray[int(y0) : int(y1), int(x0) : int(x1)]
        ring = gray[max(int(y0) - 3, 0) : int(y1) + 3, max(int(x0) - 3, 0) : int(x1) + 3]
        assert box.std() > 15 and box.size < ring.size  # ink inside the box
    again = tmp_path / "again"
    make_tool().generate(again, frames=24, width=64, height=48, seed=3, crop=True,
                         mnist_dir=MNIST, progress=False, max_faces=3)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest()
              for root in (generated, again) for p in sorted(root.rglob("*.*"))]
    assert digest[: len(digest) // 2] == digest[len(digest) // 2 :]


def test_generator_command_line_refuses_an_existing_folder(generated, capsys):
    assert make_tool().main([str(generated), "--frames", "2"]) == 2
    assert "exists (use --force" in capsys.readouterr().err


MODEL = """DefaultModel=Frame
[database]
Type=IMDBWIKI_Database
DataPath={root}
LabelPath={root}/imdb_metadata
Learn=0.6
Validation=0.2
DefaultLabel=background
[sp]
SizeX=32
SizeY=24
BatchSize=4
CompositeStimuli=1
[sp.Transformation-1]
Type=ChannelExtractionTransformation
CSChannel=Gray
[sp.Transformation-2]
Type=RescaleTransformation
Width=[sp]SizeX
Height=[sp]SizeY
KeepAspectRatio=1
[sp.Transformation-3]
Type=PadCropTransformation
Width=[sp]SizeX
Height=[sp]SizeY
[sp.OnTheFlyTransformation-1]
Type=FlipTransformation
RandomHorizontalFlip=1
ApplyTo=LearnOnly
[conv1]
Input=sp
Type=Conv
KernelWidth=3
KernelHeight=3
NbOutputs=2
Padding=1
ActivationFunction=Rectifier
[conv1.Target]
"""


def test_cli_dry_run_and_a_batch_of_label_maps(generated, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "faces.ini"
    ini.write_text(MODEL.format(root=generated))
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "--dry-run"])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    assert "IMDBWIKI_DATABASE: Found:" in out and "1x24x32" in out
    doc = parse_text(ini.read_text(), str(ini))
    db = IMDBWIKI_Database.from_section(Section(doc, ["database"]))
    device = backend.cpu(0)
    sp = StimuliProvider.from_section(Section(doc, ["sp"]), db, device).load(device.rng)
    x, labels, ids = next(sp.batches("Learn", device.rng, shuffle=True))
    assert x.shape == (4, 1, 24, 32) and isinstance(labels, LabelMaps)
    assert labels.maps.shape == (4, 24, 32)
    for m, rois in zip(labels.maps, labels.rois):
        assert len(rois) == 1 and set(np.unique(m)) <= {0, rois[0].label}
        # the map is resampled nearest, the ROI corners rounded: they agree within a pixel
        r = rois[0].clipped(32, 24)
        face = m == r.label
        box = np.zeros_like(face)
        box[r.y0 : r.y1 + 1, r.x0 : r.x1 + 1] = True
        assert face.any() and not (face & ~box).any()
        assert face[r.y0 + 1 : r.y1, r.x0 + 1 : r.x1].all()


def test_cli_composite_size_check_is_one_line(generated, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "bad.ini"  # CompositeLabel=None: each stimulus keeps a single label
    ini.write_text(MODEL.format(root=generated).replace("DefaultLabel=background",
                                                        "CompositeLabel=None"))
    with pytest.raises(SystemExit) as info:  # --dry-run only warns about the data
        cli.main([str(ini), "-test"])
    _, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert info.value.code == 2 and len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"error: {ini}:") and "[sp] CompositeStimuli:" in errors[0]
    assert "expected labels size is 32x24" in errors[0] and "for stimulus: " in errors[0]
    assert str(generated / "wiki") in errors[0]


def test_full_frames_need_composite_stimuli(generated, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ini = tmp_path / "plain.ini"
    ini.write_text(MODEL.format(root=generated).replace("CompositeStimuli=1",
                                                        "CompositeStimuli=0"))
    with pytest.raises(SystemExit) as info:
        cli.main([str(ini), "-test"])
    _, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert info.value.code == 2 and len(errors) == 1, err
    assert "is labelled pixel by pixel" in errors[0] and "set CompositeStimuli=1" in errors[0]
