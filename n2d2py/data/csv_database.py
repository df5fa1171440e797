"""CSV_Database: one stimulus per line of a CSV file, one column holding the label (§4.1).

Values are separated by any of ``,``, ``;``, space or tab; the label column is
``LabelColumn`` (negative: from the end, default -1, the last); labels may be quoted and get
ids in order of first appearance. ``NbHeaderLines`` lines are skipped, and so are empty
lines. A stimulus is the row of its n values as a float32 1×n image, so ``[sp]`` declares
``SizeX=n`` and ``SizeY=1`` (unsure: N2D2 may lay it out as n×1). Partitioning keys as
DIR_Database, with defaults ``Learn=0.6``, ``Validation=0.2``; ``LoadMore`` loads more
files.
"""

import re

import numpy as np

from n2d2py.data.databases import Database, _data_path, root_note
from n2d2py.data.partition import Pool, Split, load_sections
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

_SEPARATORS = re.compile(r'"[^"]*"|[^,;\s]+')


def read_csv(path, label_column=-1, header_lines=0):
    """(rows float32 (n, columns-1), label names (n,)) of a CSV file; errors name the line."""
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as exc:
        raise N2D2PyError(f"cannot read CSV file: {exc.strerror}", str(path)) from None
    rows, labels, width = [], [], None
    for number, line in enumerate(lines, 1):
        if number <= header_lines or not line.strip():
            continue
        items = _SEPARATORS.findall(line)
        col = label_column if label_column >= 0 else len(items) + label_column
        if not 0 <= col < len(items):
            raise N2D2PyError(f"no column {label_column} (line has {len(items)})", str(path),
                              number)
        try:
            values = [float(v) for i, v in enumerate(items) if i != col]
        except ValueError:
            raise N2D2PyError(f"unreadable value on line: {line[:80]}", str(path),
                              number) from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise N2D2PyError(f"{len(values)} values, the first data line has {width}",
                              str(path), number)
        rows.append(values)
        labels.append(items[col].strip('"'))
    return np.asarray(rows, np.float32).reshape(len(rows), width or 0), labels


@DATABASES.register("CSV_Database")
class CSV_Database(Database):
    """Rows of numbers with a label column."""

    default_dir = ""

    def __init__(self, data_path=None, random_partitioning=True, label_column=-1,
                 header_lines=0, learn=0.6, validation=0.2, test=None):
        super().__init__(data_path, validation, random_partitioning)
        self.label_column, self.header_lines = label_column, header_lines
        self.learn, self.test = learn, test
        self.label_names = []

    @classmethod
    def from_section(cls, sec):
        if not sec.has("DataPath"):
            raise sec.error("DataPath", "required key is missing: the CSV file")
        db = cls(_data_path(sec, ""), sec.get_bool("RandomPartitioning", True),
                 sec.get_int("LabelColumn", -1), sec.get_uint("NbHeaderLines", 0))
        db.section = sec
        return db

    def load(self, rng):
        if self.loaded:
            return self
        chunks, labels, self.label_names = [], [], []

        def load_one(sec):
            path, column, header = self.data_path, self.label_column, self.header_lines
            if sec is not self.section:
                path = _data_path(sec, "")
                column = sec.get_int("LabelColumn", -1)
                header = sec.get_uint("NbHeaderLines", 0)
            if not path.is_file():
                message = (f"CSV file {path} not found ({root_note()}); set DataPath= to "
                           "the file")
                raise sec.error("DataPath", message) if sec is not None else N2D2PyError(
                    message)
            rows, names = read_csv(path, column, header)
            if chunks and rows.shape[1] != chunks[0].shape[1]:
                raise sec.error("DataPath", f"{rows.shape[1]} values per line, the first file "
                                f"has {chunks[0].shape[1]}")
            start = sum(len(c) for c in chunks)
            chunks.append(rows)
            for name in names:
                if name not in self.label_names:
                    self.label_names.append(name)
                labels.append(self.label_names.index(name))
            return range(start, start + len(rows)), labels

        if self.section is not None:
            self.sets = load_sections(self.section, load_one, rng, self.random_partitioning,
                                      learn_default=0.6, validation_default=0.2)
        else:
            pool = Pool(rng, self.random_partitioning)
            pool.add(load_one(None)[0])
            pool.split(Split(self.learn, self.validation, self.test), labels)
            self.sets = pool.result()
        rows = np.concatenate(chunks)
        self._images = rows[:, None, :]  # (n, 1, n_values): one row per stimulus
        self._labels = np.asarray(labels, np.int64)
        return self
