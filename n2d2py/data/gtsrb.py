"""GTSRB_DIR_Database: the German Traffic Sign Recognition Benchmark as distributed (spec §2).

    <DataPath>/Final_Training/Images/<00000..00042>/*.ppm   + GT-<class>.csv in each folder
    <DataPath>/Final_Test/Images/*.ppm
    <DataPath>/GT-final_test.csv

Each CSV line is ``name;width;height;x1;y1;x2;y2;class`` (separators ``,``, ``;``, space or
tab; a first line that does not parse, the header, is skipped), ``name`` relative to the
CSV's folder. A stimulus takes the class of its line; labels are named by the class number
as written and get ids in reading order (training CSVs first, folders in sorted order), so
label "7" has id 7 for the real data. An image without a line gets label −1 (left out of
the scores). As N2D2 does, an image is **cropped to its box** when read, with ``x2``, ``y2``
taken as exclusive. The training images are split per label into Learn (1 − ``Validation``)
and Validation; the test images are the Test set. Only ``.ppm`` files are read.
``ExtractROIs=1`` (one stimulus per box) gives the same stimuli, GTSRB having one box per
image.
"""

import os
import re
from pathlib import Path

import numpy as np

from n2d2py.data.databases import _data_path, root_note
from n2d2py.data.dir_database import UNSUPPORTED, DIR_Database, ImageFiles
from n2d2py.data.partition import Pool, Split
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

_FIELDS = re.compile(r"[,;\s]+")


def read_boxes(path):
    """{file name: (x1, y1, x2, y2, class name)} of a GTSRB ground-truth CSV."""
    boxes = {}
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise N2D2PyError(f"cannot read the ground-truth file: {exc.strerror}",
                          str(path)) from None
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        items = _FIELDS.split(line)
        if len(items) != 8:
            raise N2D2PyError(f"expected 8 fields (name;width;height;x1;y1;x2;y2;class), got "
                              f"{len(items)}", str(path), number)
        try:
            x1, y1, x2, y2 = (int(v) for v in items[3:7])
            int(items[1]), int(items[2])
        except ValueError:
            if number == 1:  # the header line
                continue
            raise N2D2PyError(f"unreadable box on line: {line[:80]}", str(path),
                              number) from None
        if x2 <= x1 or y2 <= y1:
            raise N2D2PyError(f"empty box {x1},{y1} - {x2},{y2}", str(path), number)
        boxes[items[0]] = (x1, y1, x2, y2, items[7])
    return boxes


class CroppedFiles(ImageFiles):
    """Image files, each read cropped to its box (or whole where it has none)."""

    def __init__(self, paths, boxes, keep=False):
        super().__init__(paths, keep)
        self.boxes = boxes  # stimulus id -> (x1, y1, x2, y2)

    def read(self, i):
        img = super().read(i)
        box = self.boxes.get(int(i))
        if box is None:
            return img
        x1, y1, x2, y2 = box
        if x2 > img.shape[1] or y2 > img.shape[0]:
            raise N2D2PyError(f"box {x1},{y1} - {x2},{y2} lies outside the "
                              f"{img.shape[1]}x{img.shape[0]} image", self.paths[int(i)])
        return img[y1:y2, x1:x2]


@DATABASES.register("GTSRB_DIR_Database")
class GTSRB_DIR_Database(DIR_Database):
    """GTSRB's training folders and test folder, labelled and cropped by their CSV files."""

    default_dir = "GTSRB"

    def __init__(self, data_path=None, validation=0.0, random_partitioning=True,
                 load_in_memory=False):
        super().__init__(data_path, load_in_memory, random_partitioning,
                         learn=1.0 - validation, validation=validation)
        self.boxes = {}

    @classmethod
    def from_section(cls, sec):
        validation = sec.get_float("Validation", 0.0)
        if not 0.0 <= validation <= 1.0:
            raise sec.error("Validation", f"must be between 0 and 1, got {validation}")
        for key, what in UNSUPPORTED.items():
            if sec.get_str(key, ""):
                raise sec.error(key, f"{what} is not supported by n2d2py yet")
        if sec.get_str("DefaultLabel", ""):
            raise sec.error("DefaultLabel", "is not supported by GTSRB_DIR_Database yet")
        sec.get_bool("ExtractROIs", False)  # one box per image: the same stimuli either way
        for key in ("ROIsMargin", "DataFileLabel", "CompositeLabel"):
            sec.get_str(key, "")
        db = cls(_data_path(sec, cls.default_dir), validation,
                 sec.get_bool("RandomPartitioning", True), sec.get_bool("LoadInMemory", False))
        db.section = sec
        return db

    def load(self, rng):
        if self.loaded:
            return self
        self.files, labels, self.label_names, self._label_ids = [], [], [], {}
        train = self._folder("Final_Training/Images")
        keys = {"ignore_masks": [], "valid_extensions": ["ppm"]}
        self._walk(str(train), keys, 1, "", -1, labels)
        csvs = sorted(train.glob("*.csv")) + sorted(train.glob("*/*.csv"))
        self._apply_boxes(0, csvs, labels)
        n_train = len(self.files)
        pool = Pool(rng, self.random_partitioning)
        pool.add(range(n_train))
        pool.split(Split(1.0 - self.validation, self.validation, 0.0, True, False), labels)
        test = self._folder("Final_Test/Images")
        self._walk(str(test), keys, 0, "", -1, labels)
        gt = self.data_path / "GT-final_test.csv"
        if not gt.is_file():
            raise self.error(f"test ground truth not found: {gt} ({root_note()})")
        self._apply_boxes(n_train, [gt], labels, folder=test)
        pool.add(range(n_train, len(self.files)))
        pool.split(Split(0.0, 0.0, None, per_label=False), labels)  # the rest: Test
        self.sets = pool.result()
        self._labels = np.asarray(labels, np.int64)
        self._images = CroppedFiles(self.files, self.boxes, self.load_in_memory)
        self.warn_dropped()
        return self

    def _folder(self, relative):
        folder = self.data_path / relative
        if not folder.is_dir():
            raise self.error(f"folder not found: {folder} ({root_note()}); GTSRB_DIR_Database "
                             "reads <DataPath>/Final_Training/Images/<class>/*.ppm with their "
                             "GT-<class>.csv, <DataPath>/Final_Test/Images/*.ppm and "
                             "<DataPath>/GT-final_test.csv")
        return folder

    def _apply_boxes(self, start, csvs, labels, folder=None):
        """Label and box the stimuli ``start``… from the CSV files (names relative to the
        CSV's folder, or to ``folder``)."""
        index = {os.path.normpath(p): i for i, p in enumerate(self.files) if i >= start}
        for csv in csvs:
            base = folder if folder is not None else csv.parent
            for name, (x1, y1, x2, y2, label) in read_boxes(csv).items():
                i = index.get(os.path.normpath(str(base / name)))
                if i is None:
                    continue  # N2D2 ignores boxes of files it did not load
                labels[i] = self._label_id(label)
                self.boxes[i] = (x1, y1, x2, y2)
