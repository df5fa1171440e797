"""CIFAR-10 and CIFAR-100 in their binary batch format (spec §4.1).

A record is one label byte (two for CIFAR-100: coarse then fine) followed by 3072 bytes:
the red, green and blue 32×32 planes, row-major. Stimuli are kept as uint8 (N, 32, 32, 3)
in BGR order, as N2D2 (OpenCV) holds colour images.

As in N2D2, a label's id is its order of first appearance in the files (``data_batch_1.bin``
first), named from the label-name file (``batches.meta.txt``; ``fine_label_names.txt`` or
``coarse_label_names.txt``); so output 0 of a CIFAR-10 network is the first image's class
(frog for the original files), not "airplane".
"""

from pathlib import Path

import numpy as np

from n2d2py.data.databases import Database, root_note
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

SIDE = 32
PIXELS = 3 * SIDE * SIDE
CIFAR10_NAMES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def read_batch(path, label_bytes=1, label_index=0):
    """(images uint8 (N, 32, 32, 3) BGR, raw labels uint8 (N,)) of one binary batch file."""
    path = Path(path)
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise N2D2PyError(f"cannot read CIFAR batch file: {exc.strerror}", str(path)) from None
    record = label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise N2D2PyError(
            f"not a CIFAR binary batch: {raw.size:,} bytes is not a whole number of "
            f"{record:,}-byte records", str(path))
    rows = raw.reshape(-1, record)
    labels = rows[:, label_index].copy()
    rgb = rows[:, label_bytes:].reshape(-1, 3, SIDE, SIDE)
    return np.ascontiguousarray(rgb[:, ::-1].transpose(0, 2, 3, 1)), labels


def write_batch(path, images_bgr, labels, coarse=None):
    """Write uint8 BGR images (N, 32, 32, 3) as a CIFAR binary batch (tests, tools)."""
    images = np.asarray(images_bgr, np.uint8)
    planes = images[..., ::-1].transpose(0, 3, 1, 2).reshape(len(images), PIXELS)
    heads = [np.asarray(labels, np.uint8)[:, None]]
    if coarse is not None:
        heads.insert(0, np.asarray(coarse, np.uint8)[:, None])
    Path(path).write_bytes(np.concatenate(heads + [planes], axis=1).tobytes())
    return Path(path)


class CIFAR_Database(Database):
    """Shared loading: learn files, test files, label names, UseTestForValidation."""

    what = "CIFAR"
    learn_files = ()
    test_files = ()
    url = ""

    def __init__(self, data_path=None, validation=0.0, random_partitioning=True,
                 default_label="", use_test_for_validation=False):
        super().__init__(data_path, validation, random_partitioning, default_label)
        self.use_test_for_validation = use_test_for_validation
        self.label_names = []

    @classmethod
    def _read_keys(cls, sec):
        keys = super()._read_keys(sec)
        keys["use_test_for_validation"] = sec.get_bool("UseTestForValidation", False)
        return keys

    def _locate(self):
        directory = self.data_path
        names = list(self.learn_files) + list(self.test_files)
        missing = [n for n in names if not (directory / n).is_file()]
        if not missing:
            return
        where = (f"directory {directory} does not exist" if not directory.is_dir()
                 else f"missing in {directory}: {', '.join(missing)}")
        raise self.error(
            f"{self.what} files not found: {where} (DataPath, default "
            f"${{N2D2_DATA}}/{self.default_dir}; {root_note()}). Download the binary "
            f"version ({self.url}) and extract it in the data root, or set DataPath= in "
            "[database]")

    def _label_file_name(self):
        raise NotImplementedError

    def _names(self, count):
        """Names of the raw label values, from the label-name file when it exists."""
        path = self.data_path / self._label_file_name()
        if path.is_file():
            names = path.read_text(errors="replace").splitlines()
            names = [n.strip() for n in names if n.strip()]
            if len(names) >= count:
                return names
            raise N2D2PyError(f"{len(names)} label names for labels up to {count - 1}",
                              str(path))
        if self.section is not None:
            self.section.doc.warn(f"{path} not found: labels are named by number",
                                  section=self.section.name)
        return self._default_names(count)

    def _default_names(self, count):
        return [str(i) for i in range(count)]

    def _read_files(self, names):
        images, labels = [], []
        for name in names:
            x, y = read_batch(self.data_path / name, *self.record)
            images.append(x)
            labels.append(y)
        return np.concatenate(images), np.concatenate(labels)

    def _read(self):
        self._locate()
        learn_x, learn_y = self._read_files(self.learn_files)
        test_x, test_y = self._read_files(self.test_files)
        raw = np.concatenate([learn_y, test_y])
        names = self._names(int(raw.max()) + 1)
        # label ids in order of first appearance, as N2D2's labelID()
        order = list(dict.fromkeys(raw.tolist()))
        self.label_names = [names[v] for v in order]
        lut = np.zeros(256, np.int64)
        lut[order] = np.arange(len(order))
        n = len(learn_x)
        images = np.concatenate([learn_x, test_x])
        return images, lut[raw], np.arange(n), np.arange(n, len(images))

    def load(self, rng):
        if self.loaded:
            return self
        super().load(rng)
        if self.use_test_for_validation:  # the test batch is also validated on (N2D2)
            self.sets["Validation"] = np.concatenate([self.sets["Validation"],
                                                      self.sets["Test"]])
        return self


@DATABASES.register("CIFAR10_Database")
class CIFAR10_Database(CIFAR_Database):
    """CIFAR-10: data_batch_1..5.bin (50,000 Learn + Validation), test_batch.bin (10,000)."""

    what = "CIFAR-10"
    default_dir = "cifar-10-batches-bin"
    learn_files = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
    test_files = ("test_batch.bin",)
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    record = (1, 0)

    def _label_file_name(self):
        return "batches.meta.txt"

    def _default_names(self, count):
        return CIFAR10_NAMES[:count] if count <= 10 else super()._default_names(count)


@DATABASES.register("CIFAR100_Database")
class CIFAR100_Database(CIFAR_Database):
    """CIFAR-100: train.bin (50,000), test.bin (10,000); fine labels, or the 20 coarse
    ones with ``UseCoarse=1``."""

    what = "CIFAR-100"
    default_dir = "cifar-100-binary"
    learn_files = ("train.bin",)
    test_files = ("test.bin",)
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"

    def __init__(self, data_path=None, validation=0.0, random_partitioning=True,
                 default_label="", use_test_for_validation=False, use_coarse=False):
        super().__init__(data_path, validation, random_partitioning, default_label,
                         use_test_for_validation)
        self.use_coarse = use_coarse
        self.record = (2, 0 if use_coarse else 1)

    @classmethod
    def _read_keys(cls, sec):
        keys = super()._read_keys(sec)
        keys["use_coarse"] = sec.get_bool("UseCoarse", False)
        return keys

    def _label_file_name(self):
        return "coarse_label_names.txt" if self.use_coarse else "fine_label_names.txt"
