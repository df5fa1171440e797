"""DIR_Database: a folder tree of image files, one sub-folder per class (spec §4.1).

Walk (as N2D2's ``DIR_Database::loadDir``): the files of a folder, sorted by path, get the
folder's label; sub-folders are visited in sorted order while ``Depth`` allows (``Depth=0``:
``DataPath`` only; ``< 0``: all levels). A stimulus label is ``LabelName`` followed by
``/<sub-folder>`` for each of the first ``LabelDepth`` levels, so with the defaults the
images of ``DataPath/cat/`` are labelled ``/cat``; ``LabelDepth=0`` gives every stimulus
``LabelName``; ``LabelDepth=-1`` none (label -1). Label ids follow first appearance.

Files whose lower-cased extension is not in ``ValidExtensions`` (when given) are skipped,
and so are paths matching an ``IgnoreMasks`` glob (``*/_background_noise_``). Images are
decoded with OpenCV as stored (gray stays one channel, colour is BGR); ``.npy`` files hold
arrays (H, W) or (H, W, C). Decoding happens when a stimulus is first read; with
``LoadInMemory=1`` every decoded stimulus is also kept.
"""

import fnmatch
import os
from pathlib import Path

import cv2
import numpy as np

from n2d2py.data.databases import Database, _data_path, root_note
from n2d2py.data.partition import load_sections
from n2d2py.errors import N2D2PyError
from n2d2py.registry import DATABASES

IMAGE_EXTENSIONS = frozenset(
    "bmp dib jpeg jpg jpe jp2 png pbm pgm ppm pxm pnm sr ras tiff tif webp exr hdr pic".split()
)
READABLE = IMAGE_EXTENSIONS | {"npy"}
# Keys of N2D2's DIR_Database that n2d2py does not implement: refused when set.
UNSUPPORTED = {
    "ROIFile": "regions of interest (ROIFile)",
    "ROIDir": "regions of interest (ROIDir)",
    "MultiChannelMatch": "multi-file channels (MultiChannelMatch)",
    "TargetDataPath": "target data (TargetDataPath)",
}


def decode(path):
    """The stimulus stored in file ``path`` (uint8/uint16/float array), or an error."""
    path = str(path)
    if path.lower().endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise N2D2PyError(f"cannot read stimulus: {exc}", path) from None
    data = np.fromfile(path, np.uint8)  # imread cannot report why; read bytes ourselves
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise N2D2PyError("cannot decode image (damaged, or not an image)", path)
    return img


# Leading bytes of the image formats whose signature is fixed (other formats are not checked).
SIGNATURES = {
    "jpg": (b"\xff\xd8\xff",), "jpeg": (b"\xff\xd8\xff",), "jpe": (b"\xff\xd8\xff",),
    "png": (b"\x89PNG",), "bmp": (b"BM",), "dib": (b"BM",),
    "pbm": (b"P1", b"P4"), "pgm": (b"P2", b"P5"), "ppm": (b"P3", b"P6"),
    "tif": (b"II*\x00", b"MM\x00*"), "tiff": (b"II*\x00", b"MM\x00*"),
    "npy": (b"\x93NUMPY",),
}


def unreadable(path):
    """Why the stimulus file ``path`` cannot be read (missing, empty, not the format its
    extension says), or None. Reads a few bytes only: a damaged body is found when decoded."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        return exc.strerror or "cannot be opened"
    if not head:
        return "empty file"
    ext = os.path.splitext(str(path))[1].lower().lstrip(".")
    if ext in SIGNATURES and not head.startswith(SIGNATURES[ext]):
        return f"not a .{ext} file (its first bytes are {head[:4]!r})"
    return None


_CHECKER = []


def _checker():
    """The thread pool that checks file headers (created on first use, then kept)."""
    if not _CHECKER:
        import concurrent.futures

        _CHECKER.append(concurrent.futures.ThreadPoolExecutor(
            min(32, 4 * (os.cpu_count() or 1)), thread_name_prefix="n2d2py-check"))
    return _CHECKER[0]


def stack_or_list(arrays):
    """One array (n, ...) when every stimulus has the same shape and type, else a list."""
    if arrays and all(a.shape == arrays[0].shape and a.dtype == arrays[0].dtype
                      for a in arrays):
        return np.stack(arrays)
    return list(arrays)


class ImageFiles:
    """Stimuli stored one per file, decoded on access (and kept with ``keep``)."""

    def __init__(self, paths, keep=False):
        self.paths = list(paths)
        self.keep = keep
        self._kept = {}

    def __len__(self):
        return len(self.paths)

    def read(self, i):
        i = int(i)
        if i in self._kept:
            return self._kept[i]
        img = decode(self.paths[i])
        if self.keep:
            self._kept[i] = img
        return img

    def __getitem__(self, ids):
        return stack_or_list([self.read(i) for i in np.atleast_1d(ids)])


@DATABASES.register("DIR_Database")
class DIR_Database(Database):
    """Image folders → stimuli; labels from folder names; N2D2's partitioning keys."""

    default_dir = ""

    def __init__(self, data_path=None, load_in_memory=False, random_partitioning=True,
                 learn=1.0, validation=0.0, test=None, depth=1, label_name="",
                 label_depth=1, valid_extensions=(), ignore_masks=()):
        super().__init__(data_path, validation, random_partitioning)
        self.load_in_memory = load_in_memory
        self.learn, self.test = learn, test
        self.depth, self.label_name, self.label_depth = depth, label_name, label_depth
        self.valid_extensions = [e.lower().lstrip(".") for e in valid_extensions]
        self.ignore_masks = list(ignore_masks)
        self.label_names = []
        self.files = []
        self.skipped = []
        self.dropped = []  # (path, why): files found unreadable at load, left out

    @classmethod
    def from_section(cls, sec):
        if not sec.has("DataPath"):
            raise sec.error("DataPath", "required key is missing: the folder that holds one "
                            "sub-folder of images per class")
        db = cls(**cls._read_walk_keys(sec), load_in_memory=sec.get_bool("LoadInMemory", False),
                 random_partitioning=sec.get_bool("RandomPartitioning", True))
        for key in ("DefaultLabel", "ROIsMargin", "DataFileLabel", "CompositeLabel"):
            sec.get_str(key, "")  # ROI/pixel-label keys: meaningless without ROIs
        db.section = sec
        return db

    @classmethod
    def _read_walk_keys(cls, sec):
        """The keys of one section (``[database]`` or a ``LoadMore`` one) for the walk."""
        for key, what in UNSUPPORTED.items():
            if sec.get_str(key, ""):
                raise sec.error(key, f"{what} is not supported by n2d2py yet")
        return {
            "data_path": _data_path(sec, ""),
            "depth": sec.get_int("Depth", 1),
            "label_name": sec.get_str("LabelName", ""),
            "label_depth": sec.get_int("LabelDepth", 1),
            "valid_extensions": sec.get_str("ValidExtensions", "").split(),
            "ignore_masks": sec.get_str("IgnoreMasks", "").split(),
        }

    def __repr__(self):
        return super().__repr__() + f" {len(self.label_names)} labels"

    # -- loading ------------------------------------------------------------------------------
    def load(self, rng):
        if self.loaded:
            return self
        self.files, labels, self.label_names, self._label_ids = [], [], [], {}

        def load_one(sec):
            keys = self._read_walk_keys(sec) if sec is not self.section else vars(self)
            start = len(self.files)
            self._walk_root(sec, keys, labels)
            return range(start, len(self.files)), labels

        if self.section is not None:
            self.sets = load_sections(self.section, load_one, rng, self.random_partitioning)
        else:
            self._walk_root(None, vars(self), labels)
            self.sets = self._partition_plain(rng, labels)
        if not self.files:
            raise self.error(f"no stimulus found under {self.data_path}"
                             + self._skipped_note())
        if self.skipped and self.section is not None:
            self.section.doc.warn(f"{len(self.skipped)} file(s) skipped" + self._skipped_note(),
                                  self.section.prop("DataPath"))
        self.warn_dropped()
        self._labels = np.asarray(labels, np.int64)
        self._images = ImageFiles(self.files, self.load_in_memory)
        return self

    def warn_dropped(self):
        """One warning for the image files left out at load because they cannot be read."""
        if not self.dropped:
            return
        path, why = self.dropped[0]
        more = f" (and {len(self.dropped) - 1} more)" if len(self.dropped) > 1 else ""
        message = f"unreadable image {path}: {why}; stimulus dropped{more}"
        if self.section is not None:
            self.section.doc.warn(message, section=self.section.name)
        else:
            import warnings

            warnings.warn(message, stacklevel=2)

    def _partition_plain(self, rng, labels):
        """Partitioning without an INI section (direct construction in Python)."""
        from n2d2py.data.partition import Pool, Split

        pool = Pool(rng, self.random_partitioning)
        pool.add(range(len(self.files)))
        pool.split(Split(self.learn, self.validation, self.test), labels)
        return pool.result()

    def _skipped_note(self):
        if not self.skipped:
            return ""
        exts = sorted({Path(p).suffix or "(none)" for p in self.skipped})
        return (f" ({len(self.skipped)} file(s) with extensions {' '.join(exts)} are not "
                f"images n2d2py reads, e.g. {self.skipped[0]})")

    def _walk_root(self, sec, keys, labels):
        root = Path(keys["data_path"])
        if not root.is_dir():
            where = (f"DataPath {root} does not exist" if not root.exists()
                     else f"DataPath {root} is not a folder")
            message = (f"{where} ({root_note()}); DIR_Database needs a folder with one "
                       "sub-folder of images per class")
            raise sec.error("DataPath", message) if sec is not None else N2D2PyError(message)
        self._walk(root, keys, keys["depth"], keys["label_name"], keys["label_depth"], labels)

    def _walk(self, folder, keys, depth, label_name, label_depth, labels):
        files, subdirs = [], []
        with os.scandir(folder) as entries:
            for entry in entries:
                path = os.path.join(folder, entry.name)
                if any(fnmatch.fnmatch(path, m) for m in keys["ignore_masks"]):
                    continue
                if entry.is_dir():
                    subdirs.append(path)
                    continue
                ext = os.path.splitext(entry.name)[1].lower().lstrip(".")
                valid = keys["valid_extensions"]
                if valid and ext not in valid:
                    continue
                (files if ext in READABLE else self.skipped).append(path)
        files = self._readable(files)
        if files:
            label = self._label_id(label_name) if label_depth >= 0 else -1
            for path in sorted(files):
                self.files.append(path)
                labels.append(label)
        if depth == 0:
            return
        for sub in sorted(subdirs):
            if label_depth > 0:
                name = label_name + "/" + os.path.basename(sub)
                self._walk(sub, keys, depth - 1, name, label_depth - 1, labels)
            else:
                self._walk(sub, keys, depth - 1, label_name, label_depth, labels)

    def _readable(self, paths):
        """``paths`` less those whose first bytes show they cannot be read (recorded in
        ``dropped``); checked by threads, the work being file opens."""
        if len(paths) < 64:
            whys = [unreadable(p) for p in paths]
        else:
            whys = list(_checker().map(unreadable, paths, chunksize=64))
        self.dropped += [(p, why) for p, why in zip(paths, whys) if why is not None]
        return [p for p, why in zip(paths, whys) if why is None]

    def _label_id(self, name):
        if name not in self._label_ids:
            self._label_ids[name] = len(self.label_names)
            self.label_names.append(name)
        return self._label_ids[name]

    def name(self, set_name, idx):
        """File path of position ``idx`` of a set."""
        return self.files[int(self.ids(set_name, [idx])[0])]
