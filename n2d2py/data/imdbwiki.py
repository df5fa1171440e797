"""IMDBWIKI_Database: the IMDB-WIKI faces, one stimulus per face (spec addendum §3).

Layout (N2D2's ``IMDBWIKI_Database::load``): images under ``DataPath/wiki/`` and
``DataPath/imdb/`` (``*_crop/`` with ``CropFrame=1``), metadata ``LabelPath/wiki.csv`` and
``LabelPath/imdb.csv``; IMDb is loaded before Wikipedia. A metadata line is
``full_path;name;x0;y0;x1;y1;dob;photo_taken;gender`` (only ``;`` separates; more fields are
ignored; ``#`` lines are skipped with a notice; ``&amp;`` reads as ``&``).

Each face becomes a stimulus labelled ``<gender>-<age>`` (``M``/``F``/``?``, age =
photo_taken - dob, ``?`` outside [0, 99]) or, with ``UseNameAsLabel=1``, the name. In full
frames (``CropFrame=0``) the stimulus label is -1 and the face is one rectangular ROI with
that label, (x1, y1) exclusive: the stimuli are composite (pixel labels from the ROIs, the
``DefaultLabel`` elsewhere). A face at (1, 1) is a corrupted frame: skipped with a warning.
Label ids: ``DefaultLabel`` first, then labels in order of first appearance.
"""

import re
from pathlib import Path

import numpy as np

from n2d2py.data.databases import Database, _data_path, root_note
from n2d2py.data.dir_database import ImageFiles
from n2d2py.data.partition import Pool, Split, half_down, half_up
from n2d2py.data.rois import from_corners
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
FIELDS = ("x0", "y0", "x1", "y1", "dob", "photo_taken", "gender")
MAX_MESSAGES = 100  # N2D2 prints at most this many warnings/notices per part
UNSUPPORTED = {
    "TargetDataPath": "target data (TargetDataPath)",
    "MultiChannelMatch": "multi-file channels (MultiChannelMatch)",
}


def read_faces(path):
    """The faces of an IMDB-WIKI metadata file: list of (line number, full_path, name,
    x0, y0, x1, y1, dob, photo_taken, gender) and the notices for commented lines. An
    unreadable line is an error naming the file and line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except OSError as exc:
        raise N2D2PyError(f"could not open the IMDB-WIKI metadata: {exc.strerror}",
                          str(path)) from None
    faces, notices = [], []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            notices.append(f'Ignoring commented line: "{line}" in file: {path}')
            continue
        fields = line.replace("&amp;", "&").split(";")
        values = [v for v in fields[2:] if v != ""][: len(FIELDS)]
        if len(fields) < 3 or not fields[0] or len(values) < len(FIELDS) or not all(
                _NUMBER.fullmatch(v) for v in values):
            raise N2D2PyError(
                f'unreadable value in line "{line[:120]}" (expected full_path;name;x0;y0;x1;'
                "y1;dob;photo_taken;gender with numbers)", str(path), number)
        faces.append((number, fields[0], fields[1], *(float(v) for v in values)))
    return faces, notices


def label_text(name, dob, photo_taken, gender, use_name, notes, where):
    """N2D2's label of a face: the name, or ``<M|F|?>-<age|?>``; notices go to ``notes``."""
    if use_name:
        return name
    if gender in (0.0, 1.0):
        sex = "F" if gender == 0.0 else "M"
    else:
        notes.append(f"Gender type not defined for frame {where}")
        sex = "?"
    age = photo_taken - dob
    if age < 0.0 or age > 99.0:
        notes.append("Age out of bound (negative or greater than 100 years old) for frame "
                     f"{where}")
        return sex + "-?"
    return f"{sex}-{age:g}"


class _Throttle:
    """N2D2's message counter of one part: messages shown while fewer than 100, then
    "Already 100 messages..." once (checked after each face), then a count of the rest."""

    def __init__(self, warn):
        self.warn, self.count = warn, 0

    def __call__(self, text):
        self.count += 1
        if self.count < MAX_MESSAGES:
            self.warn(text)

    def face_done(self):
        if self.count == MAX_MESSAGES:
            self.warn(f"Already {MAX_MESSAGES} messages, ignoring further notices...")
            self.count += 1

    def close(self):
        if self.count > MAX_MESSAGES + 1:
            self.warn(f"{self.count - MAX_MESSAGES - 1} messages (warning and/or notices) "
                      "were silenced")


@DATABASES.register("IMDBWIKI_Database")
class IMDBWIKI_Database(Database):
    """IMDB-WIKI faces: full frames with one face ROI each, or the cropped faces."""

    default_dir = "IMDB-WIKI"

    def __init__(self, data_path=None, label_path=None, wiki=True, imdb=False, crop=False,
                 use_name=False, learn=1.0, validation=0.0, random_partitioning=True,
                 default_label=""):
        super().__init__(data_path, validation, random_partitioning, default_label)
        self.label_path = label_path
        self.wiki, self.imdb, self.crop, self.use_name = wiki, imdb, crop, use_name
        self.learn = float(learn)
        self.label_names, self.files = [], []
        self.nb_corrupted = 0

    @classmethod
    def _read_keys(cls, sec):
        for key, what in UNSUPPORTED.items():
            if sec.get_str(key, ""):
                raise sec.error(key, f"{what} is not supported by n2d2py yet")
        learn, validation = sec.get_float("Learn", 1.0), sec.get_float("Validation", 0.0)
        for key, value in (("Learn", learn), ("Validation", validation)):
            if not 0.0 <= value <= 1.0:
                raise sec.error(key, f"must be between 0 and 1, got {value}")
        if learn + validation > 1.0:
            raise sec.error("Validation", "Learn + Validation fractions exceed 1")
        sec.get_bool("DataFileLabel", True)  # no image reader provides pixel labels
        return {
            "data_path": _data_path(sec, cls.default_dir),
            "label_path": _data_path(sec, cls.default_dir + "/imdb_metadata", "LabelPath"),
            "wiki": sec.get_bool("WikiSet", True),
            "imdb": sec.get_bool("IMDBSet", False),
            "crop": sec.get_bool("CropFrame", False),
            "use_name": sec.get_bool("UseNameAsLabel", False),
            "learn": learn,
            "validation": validation,
            "random_partitioning": sec.get_bool("RandomPartitioning", True),
        }

    # -- loading ------------------------------------------------------------------------------
    def load(self, rng):
        if self.loaded:
            return self
        if self.label_path is None:
            self.label_path = self.data_path / "imdb_metadata"
        self.label_names, self.files, self._rois, self._labels_list = [], [], [], []
        self._ids = {}
        parts = [name for name, on in (("imdb", self.imdb), ("wiki", self.wiki)) if on]
        for part in parts:
            self._load_part(part)
        if not self.files:
            raise self.error(f"no face loaded from {', '.join(parts) or 'no part'} "
                             "(WikiSet=0 and IMDBSet=0 load nothing)", "WikiSet")
        self._labels = np.asarray(self._labels_list, np.int64)
        self.sets = self._partition_faces(rng)
        self._images = ImageFiles(self.files)
        return self

    def _label_id(self, name):
        if name not in self._ids:
            self._ids[name] = len(self.label_names)
            self.label_names.append(name)
        return self._ids[name]

    def _load_part(self, part):
        folder = self.data_path / (part + "_crop" if self.crop else part)
        csv = self.label_path / f"{part}.csv"
        if not csv.is_file():
            raise self.error(f"IMDB-WIKI metadata {csv} not found ({root_note()}); set "
                             "LabelPath= to the folder that holds wiki.csv / imdb.csv (as in "
                             "N2D2 it does not follow DataPath: its default is "
                             "$N2D2_DATA/IMDB-WIKI/imdb_metadata)", "LabelPath")
        faces, notices = read_faces(csv)
        for text in notices:
            self.warn(text, "LabelPath")
        print(f"IMDBWIKI_DATABASE: Found: {len(faces)} data labelled.")
        if self.default_label:
            self._label_id(self.default_label)
        say = _Throttle(self.warn)
        for _, path, name, x0, y0, x1, y1, dob, taken, gender in faces:
            where = folder / path
            if (x0 == 1 and y0 == 1) or (x1 == 1 and y1 == 1):
                self.nb_corrupted += 1
                say(f"Wrong label location for frame {where} (corrupted frame(s): "
                    f"{self.nb_corrupted})")
            else:
                notes = []
                label = self._label_id(label_text(name, dob, taken, gender, self.use_name,
                                                  notes, where))
                for text in notes:
                    say(text)
                self._add(str(where), label, x0, y0, x1, y1)
            say.face_done()
        say.close()

    def _add(self, path, label, x0, y0, x1, y1):
        """One face: a cropped image with its label, or a full frame with one ROI."""
        if self.crop and not Path(path).is_file():
            raise self.error(f"File does not exist: {path}")
        self.files.append(path)
        self._labels_list.append(label if self.crop else -1)
        roi = None if self.crop else from_corners(label, x0, y0, x1, y1)
        self._rois.append([roi] if roi is not None else [])

    def _partition_faces(self, rng):
        """N2D2: per label with UseNameAsLabel=1, else global fractions; the rest stays
        unpartitioned (in no set)."""
        pool = Pool(rng, self.random_partitioning)
        pool.add(range(len(self.files)))
        test = max(0.0, 1.0 - self.learn - self.validation)
        if self.use_name:
            pool._per_label(Split(self.learn, self.validation, test, True, False), self._labels)
            if not any(pool.sets.values()):
                self.warn("no stimulus were partitioned (UseNameAsLabel=1 on full frames: "
                          "their stimulus label is -1)", "UseNameAsLabel")
            return pool.result()
        n = len(pool.unpartitioned)
        n_learn, n_vt = half_up(n * self.learn), half_down(n * (self.validation + test))
        frac = self.validation / (self.validation + test) if self.validation > 0 else 0.0
        counts = (n_learn, half_up(n_vt * frac), half_down(n_vt * (1.0 - frac)))
        for name, count in zip(("Learn", "Validation", "Test"), counts):
            picked = pool._take(pool.unpartitioned, count)
            pool.sets[name].extend(picked)
            taken = set(picked)
            pool.unpartitioned = [i for i in pool.unpartitioned if i not in taken]
        return pool.result()

    def __repr__(self):
        return super().__repr__() + f" {len(self.label_names)} labels"
