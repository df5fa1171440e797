"""ILSVRC2012_Database: ImageNet laid out as N2D2 reads it (spec §1.1–1.6).

    <DataPath>/train/<synset>/*   one folder of images per synset (sub-folders not visited)
    <DataPath>/val/<file>         the validation images, flat
    <DataPath>/val.txt            "<file> <class index>" per line, 0-based in synset order
    <LabelPath>                   the synset folder names, whitespace separated, in label order

``DataPath`` defaults to ``$N2D2_DATA/ILSVRC2012`` and ``LabelPath`` to
``$N2D2_DATA/ILSVRC2012/synsets.txt`` (or, when that file does not exist, ``synsets.txt``
in ``DataPath``). Label *i* is the *i*-th synset (``BackgroundClass=1``
first adds a label ``background`` with id 0 and shifts the others by one), so a ``val.txt``
index k names label k (+1). The train images are split into Learn (the first, or with
``RandomPartitioning=1`` randomly drawn, half-up ``Learn``·N) and Test (the rest); the
``val.txt`` images form Validation and, with ``UseValidationForTest=1`` (default), are also
the Test set, as in N2D2. N2D2's model files all set ``Learn=1.0``.

Differences from N2D2, on purpose: an empty synset folder keeps its label (N2D2 creates no
label for it, which shifts every later synset while ``val.txt`` indices stay put) and is
reported; image files that cannot be read are left out with one warning at load instead
of failing mid-epoch. ``models/ilsvrc2012_labels.dat`` (the 1,000 human-readable class
names, one per line, in synset order) is what ``display_names`` returns when it is given.
"""

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from n2d2py.data.databases import _data_path, data_root, root_note
from n2d2py.data.dir_database import UNSUPPORTED, DIR_Database, ImageFiles, unreadable
from n2d2py.data.partition import half_up
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

DEFAULT_DIR = "ILSVRC2012"
NOT_KEYS = ("Validation", "Test", "Depth", "LabelName", "LabelDepth", "ValidExtensions",
            "IgnoreMasks", "PerLabelPartitioning", "EquivLabelPartitioning", "LoadMore")


def read_synsets(path):
    """[(synset, line number)] of a synsets file: whitespace-separated folder names."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise N2D2PyError(f"cannot open the synset list (LabelPath): {exc.strerror}",
                          str(path)) from None
    found = [(token, number) for number, line in enumerate(text.splitlines(), 1)
             for token in line.split()]
    seen = {}
    for synset, number in found:
        if synset in seen:
            raise N2D2PyError(f"synset {synset} is listed twice (first on line "
                              f"{seen[synset]})", str(path), number)
        seen[synset] = number
    if not found:
        raise N2D2PyError("the synset list is empty", str(path))
    return found


def read_val_list(path):
    """[(file name, class index, line number)] of ``val.txt``."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise N2D2PyError(f"cannot open the validation labels file: {exc.strerror}",
                          str(path)) from None
    pairs = []
    for number, line in enumerate(lines, 1):
        items = line.split()
        if not items:
            continue
        if len(items) != 2 or not items[1].isdigit():
            raise N2D2PyError(f'expected "<file name> <class index>", got "{line.strip()}"',
                              str(path), number)
        pairs.append((items[0], int(items[1]), number))
    return pairs


@DATABASES.register("ILSVRC2012_Database")
class ILSVRC2012_Database(DIR_Database):
    """ImageNet's train/ folders, val/ and val.txt, labelled by a synset list."""

    default_dir = DEFAULT_DIR

    def __init__(self, data_path=None, label_path=None, learn=1.0,
                 use_validation_for_test=True, background_class=False,
                 random_partitioning=True, load_in_memory=False):
        data_path = Path(data_path) if data_path is not None else data_root() / DEFAULT_DIR
        super().__init__(data_path, load_in_memory, random_partitioning, learn=learn)
        self.label_path = (Path(label_path) if label_path is not None
                           else data_root() / DEFAULT_DIR / "synsets.txt")
        self.use_validation_for_test = bool(use_validation_for_test)
        self.background_class = bool(background_class)
        self.empty_synsets = []
        self.extra_folders = []

    @classmethod
    def from_section(cls, sec):
        learn = sec.get_float("Learn")  # required, as in N2D2
        if not 0.0 <= learn <= 1.0:
            raise sec.error("Learn", f"must be between 0 and 1, got {learn}")
        for key, what in UNSUPPORTED.items():
            if sec.get_str(key, ""):
                raise sec.error(key, f"{what} is not supported by n2d2py yet")
        for key in NOT_KEYS:  # DIR_Database keys: N2D2 stops at them here ("Unknown parameter")
            if sec.has(key):
                raise sec.error(key, f"is not a key of ILSVRC2012_Database (N2D2 rejects it "
                                "too): Learn splits train/, val/ gives Validation and Test")
        if sec.get_str("DefaultLabel", ""):
            raise sec.error("DefaultLabel", "ILSVRC2012_Database labels every image by its "
                            "synset; a DefaultLabel would shift the labels that val.txt names")
        for key in ("ROIsMargin", "DataFileLabel", "CompositeLabel"):
            sec.get_str(key, "")  # base Database keys about ROIs: no ROIs here
        data_path = _data_path(sec, DEFAULT_DIR)
        label_path = _data_path(sec, f"{DEFAULT_DIR}/synsets.txt", key="LabelPath")
        if not sec.has("LabelPath") and not label_path.is_file():
            label_path = data_path / "synsets.txt"  # beside the data when N2D2's default is absent
        db = cls(data_path, label_path,
                 learn, sec.get_bool("UseValidationForTest", True),
                 sec.get_bool("BackgroundClass", False),
                 sec.get_bool("RandomPartitioning", True),
                 sec.get_bool("LoadInMemory", False))
        db.section = sec
        return db

    # -- loading ------------------------------------------------------------------------------
    def load(self, rng):
        if self.loaded:
            return self
        self.files, labels, self.label_names, self._label_ids = [], [], [], {}
        if self.background_class:
            self._label_id("background")
        self._load_train(labels)
        n_train = len(self.files)
        n_learn = half_up(n_train * self.learn)
        order = rng.permutation(n_train) if self.random_partitioning else np.arange(n_train)
        learn, test = order[:n_learn], order[n_learn:]
        val = self._load_val(labels)
        test = np.concatenate([test, self._load_val(labels)]) if (
            self.use_validation_for_test) else test
        self.sets = {"Learn": np.sort(learn), "Validation": np.sort(val),
                     "Test": np.sort(test).astype(np.int64)}
        self._labels = np.asarray(labels, np.int64)
        self._images = ImageFiles(self.files, self.load_in_memory)
        self._report()
        return self

    def _load_train(self, labels):
        synsets = read_synsets(self.label_path) if self._exists(self.label_path, "LabelPath",
                                                                "synset list") else []
        train = self.data_path / "train"
        self._exists(train, "DataPath", "train/ folder", folder=True)
        keys = {"ignore_masks": [], "valid_extensions": []}
        bar = tqdm(synsets, unit="synset", desc="Loading ILSVRC2012", leave=False,
                   dynamic_ncols=True, mininterval=0.5, disable=len(synsets) < 50)
        for synset, number in bar:
            folder = train / synset
            if not folder.is_dir():
                raise self.error(f"synset {synset} (line {number} of {self.label_path}) has "
                                 f"no folder {folder}", "LabelPath")
            start = len(self.files)
            self._label_id(synset)  # kept even when the folder is empty (see above)
            self._walk(str(folder), keys, 0, synset, 0, labels)
            if len(self.files) == start:
                self.empty_synsets.append(synset)
        listed = {s for s, _ in synsets}
        self.extra_folders = sorted(e.name for e in os.scandir(train)
                                    if e.is_dir() and e.name not in listed)

    def _load_val(self, labels):
        """Append the val.txt stimuli (once per call); their ids."""
        val_txt, val_dir = self.data_path / "val.txt", self.data_path / "val"
        self._exists(val_txt, "DataPath", "validation labels file val.txt")
        start, offset = len(self.files), int(self.background_class)
        for name, index, number in read_val_list(val_txt):
            label = index + offset
            if label >= len(self.label_names):
                raise N2D2PyError(f"class index {index} out of range: the synset list "
                                  f"{self.label_path} has {len(self.label_names) - offset} "
                                  "synsets", str(val_txt), number)
            path = str(val_dir / name)
            why = unreadable(path)
            if why is not None:
                if not os.path.exists(path):
                    raise N2D2PyError(f"validation image {path} does not exist",
                                      str(val_txt), number)
                if path not in {p for p, _ in self.dropped}:  # val.txt is read twice
                    self.dropped.append((path, why))
                continue
            self.files.append(path)
            labels.append(label)
        return np.arange(start, len(self.files), dtype=np.int64)

    def _exists(self, path, key, what, folder=False):
        ok = path.is_dir() if folder else path.is_file()
        if not ok:
            raise self.error(f"{what} not found: {path} ({root_note()}); ILSVRC2012_Database "
                             "reads <DataPath>/train/<synset>/, <DataPath>/val/ and "
                             "<DataPath>/val.txt, with the synsets listed in LabelPath", key)
        return True

    def _report(self):
        doc = self.section.doc if self.section is not None else None
        notes = []
        if self.empty_synsets:
            notes.append(f"synset folder(s) without images: {', '.join(self.empty_synsets[:5])}"
                         + (" ..." if len(self.empty_synsets) > 5 else "")
                         + " (their labels are kept; they have no Learn stimuli)")
        if self.extra_folders:
            notes.append(f"folder(s) under {self.data_path / 'train'} not in the synset list "
                         f"{self.label_path}, not loaded: {', '.join(self.extra_folders[:5])}"
                         + (" ..." if len(self.extra_folders) > 5 else ""))
        for note in notes:
            if doc is not None:
                doc.warn(note, section=self.section.name)
        self.warn_dropped()

    def display_names(self, path):
        """Human-readable class names from a file of one name per line in label order
        (``models/ilsvrc2012_labels.dat``), the background label first when there is one."""
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
        expected = len(self.label_names) - int(self.background_class)
        if len(names) != expected:
            raise N2D2PyError(f"{len(names)} names for {expected} synsets", str(path))
        return (["background"] if self.background_class else []) + names
