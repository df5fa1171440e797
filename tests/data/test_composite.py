"""CompositeStimuli=1: label maps and ROIs built by the database and carried through the
provider's pipeline (cache, on-the-fly steps, ApplyTo, channels), and the size check."""

import numpy as np
import pytest

from n2d2py import backend
from n2d2py.data.databases import Database
from n2d2py.data.dir_database import stack_or_list
from n2d2py.data.provider import StimuliProvider
from n2d2py.data.rois import ROI, LabelMaps
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text


class _Stimuli(list):
    """Stimuli of different sizes, read by id arrays as the databases read them."""

    def __getitem__(self, ids):
        return stack_or_list([list.__getitem__(self, int(i)) for i in np.atleast_1d(ids)])


class Frames(Database):
    """Hand-made frames: pixel (i, j) of frame k holds 10 i + j + 100 k (uint8), no label,
    one ROI each; the first two are Learn, the last one Test."""

    default_dir = ""

    def __init__(self, shapes, rois, labels=None):
        super().__init__(None)
        self.shapes, self.roi_lists = shapes, rois
        self.stimulus_labels = labels or [-1] * len(shapes)
        self.label_names = ["background", "face"]

    def _read(self):
        imgs = [(10 * np.arange(h)[:, None] + np.arange(w)[None, :] + 100 * k).astype(np.uint8)
                for k, (h, w) in enumerate(self.shapes)]
        self._rois = self.roi_lists
        n = len(imgs)
        return _Stimuli(imgs), self.stimulus_labels, [], list(range(n - 1, n))

    def load(self, rng):
        super().load(rng)
        self.sets["Learn"] = np.arange(len(self.shapes) - 1)
        return self


def same_size():
    return Frames([(4, 6)] * 3, [[ROI(1, 1, 1, 2, 2)], [ROI(1, 3, 0, 5, 3)], [ROI(1, 2, 1, 4, 2)]])


def provider(sp, db=None, database_keys="DefaultLabel=background"):
    doc = parse_text(f"[database]\n{database_keys}\n[sp]\n{sp}\n", "c.ini")
    db = db or Frames([(4, 6), (4, 6), (6, 8)], [[ROI(1, 1, 1, 2, 2)], [ROI(1, 3, 0, 5, 3)],
                                                [ROI(1, 2, 1, 4, 3)]])
    db.section = Section(doc, ["database"])
    db.read_roi_keys(db.section)
    device = backend.cpu(0)
    p = StimuliProvider.from_section(Section(doc, ["sp"]), db, device)
    return p.load(device.rng)


def test_label_maps_through_pad_crop_with_exact_values():
    p = provider("SizeX=10\nSizeY=6\nCompositeStimuli=1\n[sp.Transformation-1]\n"
                 "Type=PadCropTransformation\nWidth=10\nHeight=6")
    x, labels, ids = p.read("Test", [0], np.random.default_rng(0))
    assert isinstance(labels, LabelMaps) and len(labels) == 1 and ids.tolist() == [2]
    expect = np.zeros((6, 10), np.int32)
    expect[:, [0, 9]] = -1  # padding
    expect[1:4, 3:6] = 1  # ROI (2, 1)-(4, 3) moved right by one column
    np.testing.assert_array_equal(labels.maps[0], expect)
    assert labels.rois == [[ROI(1, 3, 1, 5, 3)]]
    assert x.shape == (1, 1, 6, 10)
    # uncached read: the same
    _, again, _ = p.read("Test", [0], np.random.default_rng(0), use_cache=False)
    np.testing.assert_array_equal(again.maps, labels.maps)


def test_random_flip_on_the_fly_moves_maps_and_rois_with_each_image():
    p = provider("SizeX=6\nSizeY=4\nBatchSize=2\nCompositeStimuli=1\n"
                 "[sp.OnTheFlyTransformation-1]\nType=FlipTransformation\n"
                 "RandomHorizontalFlip=1\nApplyTo=LearnOnly", same_size())
    flipped = set()
    rng = np.random.default_rng(2)
    for _ in range(10):
        for x, labels, ids in p.batches("Learn", rng, shuffle=True):
            for img, m, rois, k in zip(x, labels.maps, labels.rois, ids):
                pixels = np.rint(img[0] * 255).astype(int) - 100 * int(k)
                h_flip = pixels[0, 0] == 5
                flipped.add(bool(h_flip))
                box = p.database.roi_lists[k][0]
                expect = box.flipped(6, 4, h_flip, False)
                assert rois == [expect]
                mask = np.zeros((4, 6), bool)
                mask[expect.y0 : expect.y1 + 1, expect.x0 : expect.x1 + 1] = True
                np.testing.assert_array_equal(m == 1, mask)
    assert flipped == {True, False}


def test_apply_to_gives_each_set_its_own_pipeline():
    sp = ("SizeX=4\nSizeY=4\nCompositeStimuli=1\n"
          "[sp.Transformation-1]\nType=PadCropTransformation\nWidth=4\nHeight=4\n"
          "ApplyTo=LearnOnly\n"
          "[sp.Transformation-2]\nType=RescaleTransformation\nWidth=4\nHeight=4\n"
          "ApplyTo=NoLearn\n")
    p = provider(sp)
    _, learn, _ = p.read("Learn", [0], np.random.default_rng(0))
    _, test, _ = p.read("Test", [0], np.random.default_rng(0))
    # Learn: 4x6 cropped to 4x4 (columns 1-4); Test: 6x8 rescaled by (0.5, 2/3)
    expect = np.zeros((4, 4), np.int32)
    expect[1:3, 0:2] = 1
    np.testing.assert_array_equal(learn.maps[0], expect)
    assert learn.rois == [[ROI(1, 0, 1, 1, 2)]]
    assert test.rois == [[ROI(1, 1, 1, 2, 2)]]  # (2,1,4,3) x (0.5, 0.667) rounded
    assert test.maps.shape == (1, 4, 4) and (test.maps[0] == 1).sum() > 0


def test_channel_transformations_carry_the_labels():
    sp = ("SizeX=8\nSizeY=6\nNbChannels=2\nCompositeStimuli=1\n"
          "[sp.ChannelTransformation-1]\nType=PadCropTransformation\nWidth=8\nHeight=6\n"
          "[sp.ChannelTransformation-2]\nType=PadCropTransformation\nWidth=8\nHeight=6\n")
    x, labels, _ = provider(sp).read("Learn", [1], np.random.default_rng(0))
    assert x.shape == (1, 2, 6, 8)
    assert labels.rois == [[ROI(1, 4, 1, 6, 4)]]
    assert (labels.maps[0][:, 0] == -1).all() and labels.maps[0][1, 4] == 1


def test_size_check_names_the_stimulus():
    db = Frames([(4, 6), (4, 6), (6, 8)], [[], [], []])
    db.files = ["a.jpg", "b.jpg", "c.jpg"]
    with pytest.raises(N2D2PyError, match="declares"):  # the Test frame is 6x8: at load
        provider("SizeX=6\nSizeY=4\nCompositeStimuli=1", db)
    # maps of a stimulus that is not composite stay 1x1: named, with what to change
    db = Frames([(4, 6), (4, 6), (4, 6)], [[], [], []], labels=[1, 1, 1])
    db.files = ["a.jpg", "b.jpg", "c.jpg"]
    with pytest.raises(N2D2PyError) as info:
        provider("SizeX=6\nSizeY=4\nCompositeStimuli=1", db)
    message = str(info.value)
    assert "expected labels size is 6x4" in message and "is 1x1 for stimulus: " in message
    assert "CompositeLabel" in message and "[sp] CompositeStimuli" in message


def test_composite_label_modes_fill_the_map():
    db = Frames([(4, 6), (4, 6), (4, 6)], [[ROI(0, 0, 0, 0, 0)], [], []], labels=[1, 1, 1])
    p = provider("SizeX=6\nSizeY=4\nCompositeStimuli=1", db,
                 "DefaultLabel=background\nCompositeLabel=Combine")
    _, labels, _ = p.read("Learn", [0, 1], np.random.default_rng(0))
    assert labels.maps[0][0, 0] == 0 and (labels.maps[0] == 1).sum() == 23
    assert (labels.maps[1] == 1).all()
    db = Frames([(4, 6), (4, 6), (4, 6)], [[ROI(1, 0, 0, 0, 0)], [], []], labels=[1, 1, 1])
    p = provider("SizeX=6\nSizeY=4\nCompositeStimuli=1", db,
                 "DefaultLabel=background\nCompositeLabel=Disjoint\nROIsMargin=1")
    _, labels, _ = p.read("Learn", [0, 1], np.random.default_rng(0))
    assert labels.maps[0][0, 0] == 1 and labels.maps[0][0, 1] == -1  # margin band
    assert labels.maps[0][3, 5] == 0 and (labels.maps[1] == 1).all()


def test_empty_read_and_plain_provider_unchanged():
    p = provider("SizeX=6\nSizeY=4\nCompositeStimuli=1", same_size())
    _, labels, _ = p.read("Learn", [], np.random.default_rng(0))
    assert isinstance(labels, LabelMaps) and labels.maps.shape == (0, 4, 6)
    db = Frames([(4, 6), (4, 6), (4, 6)], [[], [], []], labels=[1, 0, 1])
    _, plain, _ = provider("SizeX=6\nSizeY=4", db).read("Learn", [0, 1],
                                                       np.random.default_rng(0))
    assert isinstance(plain, np.ndarray) and plain.tolist() == [1, 0]


def test_stimulus_names_from_files_or_ids(tmp_path):
    db = same_size()
    assert db.stimulus_name(2) == "#2"
    db.files = ["a.jpg", "b.jpg", "c.jpg"]
    assert db.stimulus_name(1) == "b.jpg" and db.stimulus_name(7) == "#7"
    db.files = {"train-images-idx3-ubyte": None}  # MNIST's table of its IDX files
    assert db.stimulus_name(0) == "#0"
