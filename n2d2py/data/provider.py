"""The stimuli provider (``[sp]`` / ``[env]``): database → transformations → batches.

Pipeline for one set (spec §4.2–4.3), each transformation kept only if its ``ApplyTo``
selects the set:

1. ``<sp>.Transformation*`` — cacheable, on the raw stimulus;
2. ``<sp>.OnTheFlyTransformation*`` — re-run at every read;
3. ``<sp>.Channel[OnTheFly]Transformation*`` — each builds or alters one input channel
   (``Channel=<i>``; without it, each section starts a new channel); the channels are stacked;
4. ``<sp>.Channels[OnTheFly]Transformation*`` — on all channels.

The result of stage 1 is computed once per set and kept in memory in its own type (uint8
for images: MNIST at 32×32 takes 72 MB); when no on-the-fly transformation applies to a set,
the whole pipeline is cached. Integer data left at the end are mapped to [0, 1] (or [-1, 1]
with ``DataSignedMapping=1``); data made real by a transformation (RangeAffine, Normalize)
are used as they are. ``CachePath`` (N2D2's disk cache) is read and ignored: the cache is in
memory.

With ``CompositeStimuli=1`` every stimulus also carries its pixel label map and ROIs
(``composite.py``), moved by each transformation as the image is, cached with it; the batch
labels are then a ``rois.LabelMaps`` instead of the 1-D label array.

Batches are prepared by a background thread, two ahead of the consumer.
"""

import math
import queue
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from n2d2py import frozen_heap
from n2d2py.data import composite
from n2d2py.data.databases import SETS
from n2d2py.data.dir_database import stack_or_list
from n2d2py.data.pipeline import _concat, run_labelled, run_steps
from n2d2py.data.stimuli_data import StimuliData
from n2d2py.data.transformations import Transformation
from n2d2py.errors import N2D2PyError
from n2d2py.ini.section import Section
from n2d2py.registry import TRANSFORMATIONS

# "<sp>.<prefix>..." section name prefix -> (stage, on the fly); longest prefixes first.
CATEGORIES = {
    "ChannelsOnTheFlyTransformation": ("channels", True),
    "ChannelOnTheFlyTransformation": ("channel", True),
    "ChannelsTransformation": ("channels", False),
    "ChannelTransformation": ("channel", False),
    "OnTheFlyTransformation": ("image", True),
    "Transformation": ("image", False),
}
STATS = "StimuliData"  # [<sp>.StimuliData*] blocks (stimuli_data.py)
PREFETCH_DEPTH = 2
CACHE_CHUNK = 4096  # stimuli transformed at a time while filling the cache
COMPOSITE_CHUNK = 256  # the same for composite stimuli (full-size int32 label maps)


@dataclass
class Step:
    """One transformation of the pipeline and where it runs."""

    section: str
    transform: Transformation
    stage: str  # "image", "channel" or "channels"
    on_the_fly: bool
    channel: int = 0  # for stage "channel"
    order: int = 0  # position of the section in the file

    @property
    def rank(self):
        """Stage order: cacheable, on the fly, channel (cacheable first), channels."""
        return {"image": 0, "channel": 2, "channels": 4}[self.stage] + self.on_the_fly

    def run(self, imgs, rng):
        try:
            if isinstance(imgs, list):  # stimuli of different sizes: one at a time
                return stack_or_list([self.transform.apply(img, rng) for img in imgs])
            return self.transform.apply_batch(imgs, rng)
        except (ValueError, cv2.error) as exc:
            raise self.error(f"{self.transform.type_name} failed: {exc}") from None

    def run_labelled(self, imgs, maps, rois, rng):
        """(images, label maps, ROI lists) through the transformation (composite stimuli)."""
        if not self.transform.geometric:
            return self.run(imgs, rng), maps, rois
        try:
            outs = [self.transform.apply_labelled(img, labels, r, rng)
                    for img, labels, r in zip(imgs, maps, rois)]
        except (ValueError, cv2.error) as exc:
            raise self.error(f"{self.transform.type_name} failed: {exc}") from None
        return (stack_or_list([o[0] for o in outs]), stack_or_list([o[1] for o in outs]),
                [o[2] for o in outs])

    def error(self, message):
        sec = self.transform.section
        return sec.error("Type", message) if sec is not None else N2D2PyError(message)


class StimuliProvider:
    """Input node of the network: shape (C, H, W), batches of (x, labels, ids)."""

    def __init__(self, name, size_x, size_y, nb_channels=1, batch_size=1, database=None,
                 device=None, steps=(), signed=False, section=None, composite=False):
        self.name = name
        self.shape = (int(nb_channels), int(size_y), int(size_x))
        self.batch_size = int(batch_size)
        self.database = database
        self.device = device
        self.steps = list(steps)
        self.stats = []  # StimuliData blocks, in file order
        self.signed = signed  # DataSignedMapping: integer data to [-1, 1]
        self.section = section
        self.composite = bool(composite)  # CompositeStimuli: labels are maps (LabelMaps)
        self.config = None  # Section over the ConfigSection (spike coding keys for [env])
        self.normalizes = None  # after load: whether integer data get the implicit [0, 1] mapping
        self._cache = {}
        self._cache_seed = 0
        self._lock = threading.Lock()

    def __repr__(self):
        c, h, w = self.shape
        return f"StimuliProvider({self.name}, {c}x{h}x{w}, batch {self.batch_size})"

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_section(cls, sec, database, device):
        size_x, size_y, nb_channels = _sizes(sec)
        batch_size = sec.get_uint("BatchSize", 1)
        if batch_size < 1:
            raise sec.error("BatchSize", "must be at least 1")
        from n2d2py import limits  # a batch must fit in memory (checked before any data is read)

        limits.check_stimuli(sec, size_x * size_y * nb_channels, batch_size)
        sec.get_path("CachePath", "")  # N2D2's disk cache; n2d2py caches in memory
        config = _config_section(sec)
        signed = config.get_bool("DataSignedMapping", False)
        if config.get_uint("QuantizationLevels", 0) != 0:
            raise config.error("QuantizationLevels", "input quantization is not supported yet")
        stats = find_stimuli_data(sec)  # first: later sections may read their _GlobalValue.*
        provider = cls(sec.name, size_x, size_y, nb_channels, batch_size, database, device,
                       find_steps(sec), signed, sec, sec.get_bool("CompositeStimuli", False))
        provider.stats = stats
        provider.config = config
        return provider

    # -- sizes --------------------------------------------------------------------------------
    @property
    def label_names(self):
        return list(self.database.label_names) if self.database is not None else []

    @property
    def epoch_size(self):
        """Number of stimuli in the Learn set (0 before ``load`` or without a database)."""
        db = self.database
        return db.size("Learn") if db is not None and db.loaded else 0

    def size(self, set_name):
        db = self.database
        return db.size(set_name) if db is not None and db.loaded else 0

    # -- loading ------------------------------------------------------------------------------
    def load(self, rng):
        """Load and partition the database with ``rng``; check the output size. Idempotent."""
        db = self.database
        if db is None or db.loaded:
            return self
        db.load(rng)
        self._cache_seed = int(rng.integers(2**63))
        for block in self.stats:
            block.compute(db, [s for s in self.steps if s.order < block.order],
                          self._unit, run_steps)
            self.steps = [_rebuilt(s) if s.order > block.order else s for s in self.steps]
        for set_name in SETS:  # probe one stimulus of each set through its whole pipeline
            if db.size(set_name):
                self.read(set_name, np.arange(1), np.random.default_rng(0), use_cache=False)
                self._check_composite(int(db.ids(set_name, [0])[0]))
        return self

    # -- reading ------------------------------------------------------------------------------
    def steps_for(self, set_name):
        return [s for s in self.steps if s.transform.applies_to(set_name)]

    def read(self, set_name, positions, rng, use_cache=True):
        """Host batch for ``positions`` of a set: (x float32 (n, C, H, W), labels, ids)."""
        positions = np.asarray(positions, np.int64)
        if len(positions) == 0:
            empty = np.zeros((0,), np.int64)
            labels = composite.empty(self.shape) if self.composite else empty
            return np.zeros((0,) + self.shape, np.float32), labels, empty
        steps = self.steps_for(set_name)
        if self.composite:
            return self._read_labelled(set_name, positions, steps, rng, use_cache)
        if use_cache:
            cached, done = self._cached(set_name, steps)
            imgs = (stack_or_list([cached[i] for i in positions]) if isinstance(cached, list)
                    else cached[positions])
        else:
            imgs, done = self.database.images(set_name, positions), 0
        imgs = run_steps(imgs, steps[done:], rng)
        x = self._finish(imgs)
        return x, self.database.labels(set_name, positions), self.database.ids(set_name, positions)

    def _read_labelled(self, set_name, positions, steps, rng, use_cache):
        """``read`` for composite stimuli: labels are a LabelMaps of the batch."""
        db = self.database
        if use_cache:
            (imgs, maps, rois), done = self._cached(set_name, steps)
            imgs, maps = (composite.take(a, positions) for a in (imgs, maps))
            rois = [rois[i] for i in positions]
        else:
            imgs = db.images(set_name, positions)
            (maps, rois), done = composite.initial(db, set_name, positions, imgs), 0
        imgs, maps, rois = run_labelled(imgs, maps, rois, steps[done:], rng)
        ids = db.ids(set_name, positions)
        x = self._finish(imgs)  # the image size first: its message names the transformations
        return x, composite.finish(maps, rois, self.shape, ids, db, self._size_error), ids

    def _check_composite(self, stimulus_id):
        """A stimulus labelled pixel by pixel needs CompositeStimuli=1 (N2D2: a size error)."""
        db = self.database
        if not self.composite and db.has_rois and db.is_composite(stimulus_id):
            raise self._size_error(
                f"stimulus {db.stimulus_name(stimulus_id)} is labelled pixel by pixel (its "
                "label is -1 and it has ROIs, or CompositeLabel is set in [database]): set "
                f"CompositeStimuli=1 in [{self.name}]")

    def _size_error(self, message):
        return self.section.error("CompositeStimuli", message) if self.section else \
            N2D2PyError(message)

    def _fill(self, set_name, steps, rng):
        """A set after its cacheable ``steps`` (chunk by chunk), for the cache."""
        n, db = self.database.size(set_name), self.database
        chunks, step = [], COMPOSITE_CHUNK if self.composite else CACHE_CHUNK
        for i in range(0, n, step):
            positions = np.arange(i, min(i + step, n))
            imgs = db.images(set_name, positions)
            if not self.composite:
                chunks.append(run_steps(imgs, steps, rng))
                continue
            maps, rois = composite.initial(db, set_name, positions, imgs)
            imgs, maps, rois = run_labelled(imgs, maps, rois, steps, rng)
            chunks.append((imgs, composite.compact(maps), rois))
        if not self.composite:
            return _concat(chunks)
        return (_concat([c[0] for c in chunks]), _concat([c[1] for c in chunks]),
                [r for c in chunks for r in c[2]])

    def _cached(self, set_name, steps):
        """(set after its cacheable steps, number of steps done) — built on first use."""
        if any(s.on_the_fly for s in steps):
            done = next(i for i, s in enumerate(steps) if s.stage != "image" or s.on_the_fly)
        else:
            done = len(steps)
        with self._lock:
            if set_name not in self._cache:
                rng = np.random.default_rng([self._cache_seed, SETS.index(set_name)])
                self._cache[set_name] = self._fill(set_name, steps[:done], rng)
        return self._cache[set_name], done

    def _finish(self, imgs):
        """(n, H, W[, C]) after the pipeline → (n, C, H, W) float32, normalised, size-checked."""
        if isinstance(imgs, list):
            message = (f"the stimuli have different sizes ({imgs[0].shape[:2]}, ...) after the "
                       "transformations: add a RescaleTransformation and/or "
                       f"PadCropTransformation to [{self.name}.Transformation*]")
            raise self.section.error("SizeX", message) if self.section else N2D2PyError(message)
        x = imgs[..., None] if imgs.ndim == 3 else imgs
        got = (x.shape[3], x.shape[1], x.shape[2]) if x.ndim == 4 else x.shape[1:]
        if got != self.shape:
            c, h, w = self.shape
            message = (
                f"the stimuli are {'x'.join(map(str, got))} (channels x height x width) after "
                "the transformations, "
                f"but [{self.name}] declares NbChannels x SizeY x SizeX = {c}x{h}x{w}"
            )
            raise self.section.error("SizeX", message) if self.section else N2D2PyError(message)
        self.normalizes = bool(np.issubdtype(x.dtype, np.integer))
        return self._unit(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).astype(
            np.float32, copy=False)

    def _unit(self, x):
        """Integer data mapped to [0, 1] (or [-1, 1] signed) as float32; real data as is."""
        if isinstance(x, list):
            return [self._unit(a) for a in x]
        if not np.issubdtype(x.dtype, np.integer):
            return x
        out = x.astype(np.float32)
        info = np.iinfo(x.dtype)
        if self.signed and info.min == 0:
            half = (info.max + 1) / 2.0
            out -= half
            out /= half
        else:
            out /= info.max
        return out

    # -- batches ------------------------------------------------------------------------------
    def batches(self, set_name, rng=None, shuffle=False, limit=None):
        """Iterator of (x on the device (N, C, H, W) float32, labels int64, ids) over a set.

        In order unless ``shuffle`` (then permuted with ``rng``); ``limit`` keeps the first
        stimuli of that order. The last batch may be smaller. Without ``rng`` (a scoring pass)
        the on-the-fly steps draw from a generator of this run and set alone, the same at every
        pass: validating never shifts the draws learning makes (dropout, shuffles).
        """
        if rng is None:
            if shuffle:
                raise ValueError("a shuffled pass needs its rng")
            rng = np.random.default_rng([self._cache_seed, SETS.index(set_name), 1])
        n = self.size(set_name)
        order = rng.permutation(n) if shuffle else np.arange(n)
        if limit is not None and limit >= 0:
            order = order[:limit]
        return self._iterate(set_name, order, _child(rng), learning=shuffle)

    def random_batches(self, nb_stimuli, rng):
        """ceil(N / BatchSize) batches of Learn stimuli drawn uniformly with replacement."""
        n = self.size("Learn")
        if n == 0 and nb_stimuli > 0:
            raise N2D2PyError("the Learn set is empty: nothing to learn from")
        return self._iterate("Learn", rng.integers(0, n, size=nb_stimuli), _child(rng), learning=True)

    def nb_batches(self, nb_stimuli):
        return math.ceil(nb_stimuli / self.batch_size)

    def draws_at_read(self, set_name):
        """Whether reading a batch of ``set_name`` runs steps after the cache (which may draw
        random numbers from the reading generator)."""
        steps = self.steps_for(set_name)
        return len(steps) > self._cached(set_name, steps)[1]

    def _iterate(self, set_name, order, worker_rng, learning=False):
        """Batches of ``order``; ``worker_rng`` (the thread's own) drives on-the-fly steps.

        Under mpiexec (``device.group``, see ``parallel.group``) a learning pass yields x of
        this rank's slice of each batch with the whole batch's labels and ids, and a scoring
        pass yields this rank's range of the set."""
        if len(order):
            self._cached(set_name, self.steps_for(set_name))  # errors surface here, not in a thread
        bs = self.batch_size
        chunks = [order[i : i + bs] for i in range(0, len(order), bs)]

        def produce():
            for positions in chunks:
                yield self.read(set_name, positions, worker_rng)

        group = getattr(self.device, "group", None)
        if group is not None:
            produce = group.reader(self, set_name, chunks, worker_rng, learning)

        asarray = self.device.asarray if self.device is not None else np.asarray
        for index, (x, labels, ids) in enumerate(prefetch(produce, PREFETCH_DEPTH)):
            if index == 1:  # the first batch was computed: its kernels are loaded
                frozen_heap.settle()
            yield asarray(x), labels, ids


def _child(rng):
    """An independent Generator drawn from ``rng`` (the prefetch thread must not share it)."""
    return np.random.default_rng(rng.integers(2**63))


# -- prefetch thread ----------------------------------------------------------------------------

_END = object()


class _Failed:
    def __init__(self, exc):
        self.exc = exc


def prefetch(produce, depth=PREFETCH_DEPTH):
    """Iterate over ``produce()`` run in a background thread, ``depth`` items ahead.

    An exception raised by the producer is raised here; closing this iterator early (or
    dropping it) stops the thread after at most the item it is preparing. ``depth`` 0: no
    thread, the items are produced in the caller's thread when asked for (the sequential
    path the tests compare the prefetched one with).
    """
    if depth == 0:
        yield from produce()
        return
    items = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in produce():
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_Failed(exc))

    thread = threading.Thread(target=work, name="n2d2py-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


# -- INI ----------------------------------------------------------------------------------------


def _sizes(sec):
    """(SizeX, SizeY, NbChannels) from SizeX/SizeY/NbChannels or ``Size=x y [c]``."""
    if sec.has("Size"):
        dims = sec.get_ints("Size")
        if len(dims) not in (2, 3) or min(dims) < 1:
            raise sec.error("Size", "expected 'width height' or 'width height channels'")
        channels = dims[2] if len(dims) == 3 else sec.get_uint("NbChannels", 1)
        return dims[0], dims[1], channels
    size_x, size_y = sec.get_uint("SizeX"), sec.get_uint("SizeY")
    if sec.get_uint("SizeD", 1) != 1:
        raise sec.error("SizeD", "3-D stimuli are not supported yet")
    channels = sec.get_uint("NbChannels", 1)
    for key, value in (("SizeX", size_x), ("SizeY", size_y), ("NbChannels", channels)):
        if value < 1:
            raise sec.error(key, "must be at least 1")
    return size_x, size_y, channels


def _config_section(sec):
    """View over the provider's single ``ConfigSection`` (empty view when there is none)."""
    name = sec.get_str("ConfigSection", "")
    if not name:
        return Section(sec.doc, [], label=sec.name)
    if "," in name:
        raise sec.error("ConfigSection", "the stimuli provider takes a single config section")
    if name not in sec.doc:
        raise sec.error("ConfigSection", f"config section [{name}] does not exist")
    return Section(sec.doc, [name])


def _sub_sections(sec):
    """(file position, name, rest of the name) of every ``[<sp>.*]`` section."""
    for order, name in enumerate(sec.doc.section_names()):
        if name.startswith(sec.name + "."):
            yield order, name, name[len(sec.name) + 1 :]


def find_stimuli_data(sec):
    """The StimuliData blocks of provider ``sec`` (their keys published as placeholders)."""
    return [StimuliData.from_section(Section(sec.doc, [name]), order)
            for order, name, rest in _sub_sections(sec) if rest.startswith(STATS)]


def _transform(doc, name):
    view = Section(doc, [name])
    return TRANSFORMATIONS.get(view.get_str("Type"), where=view.prop("Type")).from_section(view)


def _rebuilt(step):
    """``step`` with its transformation read again (after a StimuliData block ran)."""
    doc = step.transform.section.doc
    return Step(step.section, _transform(doc, step.section), step.stage, step.on_the_fly,
                step.channel, step.order)


def find_steps(sec):
    """The transformations of provider ``sec``, in file order."""
    steps, next_channel = [], 0
    for order, name, rest in _sub_sections(sec):
        category = next((c for c in CATEGORIES if rest.startswith(c)), None)
        if category is None:
            continue
        stage, on_the_fly = CATEGORIES[category]
        transform = _transform(sec.doc, name)
        channel = 0
        if stage == "channel":
            channel = Section(sec.doc, [name]).get_uint("Channel", next_channel)
            next_channel = max(next_channel, channel + 1)
        steps.append(Step(name, transform, stage, on_the_fly, channel, order))
    return sorted(steps, key=lambda step: step.rank)  # stable: file order within a stage
