"""StimuliProvider on tiny IDX files: shapes, normalisation, pipeline order, batching, prefetch."""

import re
import threading
import time

import numpy as np
import pytest

from harness import mnist_head, softmax_tail
from n2d2py import backend
from n2d2py.data.databases import write_idx
from n2d2py.data.provider import StimuliProvider, Step, prefetch
from n2d2py.data.transformations import Transformation
from n2d2py.errors import N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import DATABASES

H, W, N_TRAIN, N_TEST = 6, 5, 50, 20


@pytest.fixture
def data_dir(tmp_path):
    """Image i of the train set (id i) is filled with value i, test images with 100 + i."""
    for split, n, offset in (("train", N_TRAIN, 0), ("t10k", N_TEST, 100)):
        values = (np.arange(n) + offset).astype(np.uint8)
        images = np.zeros((n, H, W), np.uint8) + values[:, None, None]
        images[:, :, 0] = 255  # first column marks the left side
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return tmp_path


def make(data_dir, sp="SizeX=5\nSizeY=6\nBatchSize=8", more="", validation=0.2, seed=3, load=True):
    text = (
        f"[database]\nType=MNIST_IDX_Database\nValidation={validation}\nDataPath={data_dir}\n"
        f"[sp]\n{sp}\n{more}\n"
    )
    doc = parse_text(text, "p.ini")
    device = backend.cpu(seed)
    db = DATABASES.get("MNIST_IDX_Database").from_section(Section(doc, ["database"]))
    provider = StimuliProvider.from_section(Section(doc, ["sp"]), db, device)
    if load:
        provider.load(device.rng)
    return provider


def collect(iterator):
    return [(x, y, i) for x, y, i in iterator]


def test_shapes_sizes_and_normalisation(data_dir):
    p = make(data_dir)
    assert p.shape == (1, 6, 5) and p.batch_size == 8 and p.name == "sp"
    assert p.epoch_size == 40 and p.size("Validation") == 10 and p.size("Test") == 20
    assert p.label_names == [str(d) for d in range(10)]
    batches = collect(p.batches("Test"))
    assert [len(x) for x, _, _ in batches] == [8, 8, 4]
    x, labels, ids = batches[0]
    assert isinstance(x, np.ndarray) and x.shape == (8, 1, 6, 5) and x.dtype == np.float32
    assert labels.dtype == np.int64 and labels.tolist() == [i % 10 for i in range(8)]
    assert ids.tolist() == list(range(50, 58))
    assert np.allclose(x[:, 0, 1, 1], (100 + np.arange(8)) / 255) and (x[:, 0, :, 0] == 1).all()


def test_epoch_size_before_load(data_dir):
    p = make(data_dir, load=False)
    assert p.epoch_size == 0
    p.load(np.random.default_rng(0))
    assert p.epoch_size == 40


def test_size_alternatives_and_errors(data_dir):
    assert make(data_dir, "Size=5 6 1").shape == (1, 6, 5)
    with pytest.raises(N2D2PyError, match="required key is missing"):
        make(data_dir, "SizeX=5")
    with pytest.raises(N2D2PyError, match="width height"):
        make(data_dir, "Size=5")


def test_size_mismatch_names_sp_and_sizes(data_dir):
    with pytest.raises(N2D2PyError) as info:
        make(data_dir, "SizeX=7\nSizeY=6")
    text = str(info.value)
    assert "[sp]" in text and "1x6x5" in text and "1x6x7" in text
    assert info.value.file == "p.ini" and info.value.key == "SizeX"


def test_rescale_and_padcrop_pipeline(data_dir):
    more = (
        "[sp.Transformation_1]\nType=RescaleTransformation\nWidth=10\nHeight=12\n"
        "[sp.Transformation-pad]\nType=PadCropTransformation\nWidth=[sp]SizeX\nHeight=[sp]SizeY\n"
        "BorderType=ConstantBorder\n"
    )
    p = make(data_dir, "SizeX=14\nSizeY=12\nBatchSize=4", more)
    x, _, _ = next(iter(p.batches("Validation")))
    assert x.shape == (4, 1, 12, 14) and (x[:, :, :, :2] == 0).all()


def test_on_the_fly_runs_after_cacheable_whatever_the_file_order(data_dir):
    more = (
        "[sp.OnTheFlyTransformation]\nType=PadCropTransformation\nWidth=8\nHeight=8\n"
        "[sp.Transformation]\nType=RescaleTransformation\nWidth=4\nHeight=4\n"
    )
    p = make(data_dir, "SizeX=8\nSizeY=8\nBatchSize=8", more)
    assert [s.section for s in p.steps] == ["sp.Transformation", "sp.OnTheFlyTransformation"]
    x, _, _ = next(iter(p.batches("Test")))
    assert x.shape == (8, 1, 8, 8)
    assert p._cache["Test"].shape == (20, 4, 4) and p._cache["Test"].dtype == np.uint8


def test_range_affine_disables_implicit_normalisation(data_dir):
    more = (
        "[sp.Transformation]\nType=RangeAffineTransformation\n"
        "FirstOperator=Minus\nFirstValue=100\n"
    )
    p = make(data_dir, more=more)
    x, _, _ = next(iter(p.batches("Test")))
    assert x[:, 0, 1, 1].tolist() == list(range(8)) and p.normalizes is False
    assert make(data_dir).normalizes is True


def test_data_signed_mapping(data_dir):
    sp = "SizeX=5\nSizeY=6\nBatchSize=8\nConfigSection=sp.config"
    p = make(data_dir, sp, "[sp.config]\nDataSignedMapping=1\n")
    x, _, _ = next(iter(p.batches("Test")))
    assert np.allclose(x[:, 0, 1, 1], (100 + np.arange(8) - 128) / 128)
    assert p.config.names == ["sp.config"]


def test_config_section_errors(data_dir):
    with pytest.raises(N2D2PyError, match=r"config section \[nope\] does not exist"):
        make(data_dir, "SizeX=5\nSizeY=6\nConfigSection=nope")
    with pytest.raises(N2D2PyError, match="quantization is not supported"):
        make(data_dir, "SizeX=5\nSizeY=6\nConfigSection=c", "[c]\nQuantizationLevels=16\n")


def test_apply_to_selects_sets(data_dir):
    more = (
        "[sp.Transformation]\nType=RangeAffineTransformation\nFirstOperator=Plus\n"
        "FirstValue=1000\nApplyTo=LearnOnly\n"
    )
    p = make(data_dir, more=more)
    learn, _, ids = next(iter(p.batches("Learn")))
    test, _, _ = next(iter(p.batches("Test")))
    assert learn[:, 0, 1, 1].tolist() == (ids + 1000).tolist()  # float: not normalised
    assert np.allclose(test[:, 0, 1, 1], (100 + np.arange(8)) / 255)


def test_channel_transformations_stack_channels(data_dir):
    more = (
        "[sp.ChannelTransformation-a]\nType=FlipTransformation\n"
        "[sp.ChannelTransformation-b]\nType=FlipTransformation\nHorizontalFlip=1\n"
    )
    p = make(data_dir, "SizeX=5\nSizeY=6\nNbChannels=2\nBatchSize=8", more)
    x, _, _ = next(iter(p.batches("Test")))
    assert x.shape == (8, 2, 6, 5)
    assert np.array_equal(x[:, 1], x[:, 0, :, ::-1]) and (x[:, 0, :, 0] == 1).all()


NORMALIZE = (
    "[sp.StimuliData-norm]\nApplyTo=LearnOnly\n"
    "[sp.Transformation-norm]\nType=RangeAffineTransformation\nFirstOperator=Minus\n"
    "FirstValue=[sp.StimuliData-norm]_GlobalValue.mean\nSecondOperator=Divides\n"
    "SecondValue=[sp.StimuliData-norm]_GlobalValue.stdDev\n"
)


def test_stimuli_data_standardises_the_learn_set(data_dir):
    p = make(data_dir, more=NORMALIZE)
    raw = p.database.images("Learn").astype(np.float64)  # raw 0-255 values, as N2D2
    doc = p.section.doc
    got = {k: float(doc.prop("sp.StimuliData-norm", f"_GlobalValue.{k}").raw)
           for k in ("minVal", "maxVal", "mean", "stdDev")}
    assert got["minVal"] == raw.min() and got["maxVal"] == 255.0
    assert np.isclose(got["mean"], raw.mean()) and np.isclose(got["stdDev"], raw.std())
    x = np.concatenate([b for b, _, _ in p.batches("Learn")])
    assert abs(x.mean()) < 1e-5 and np.isclose(x.std(), 1.0, atol=1e-5)


def test_stimuli_data_placeholders_before_loading(data_dir):
    p = make(data_dir, more=NORMALIZE, load=False)
    affine = p.steps[0].transform
    assert affine.first_value == (0.0,) and affine.second_value == (1.0,)
    with pytest.raises(N2D2PyError, match="not supported yet") as info:
        make(data_dir, more="[sp.StimuliData-x]\nMeanData=1\n")
    assert info.value.key == "MeanData"


def test_unknown_transformation_type(data_dir):
    with pytest.raises(N2D2PyError, match="did you mean 'FlipTransformation'") as info:
        make(data_dir, more="[sp.Transformation]\nType=FlipTransform\n")
    assert info.value.key == "Type"


def test_learn_shuffling_is_seeded_and_covers_the_set(data_dir):
    p = make(data_dir, seed=3)
    runs = [
        np.concatenate(
            [i for _, _, i in p.batches("Learn", np.random.default_rng(s), shuffle=True)]
        )
        for s in (1, 1, 2)
    ]
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])
    assert sorted(runs[0].tolist()) == p.database.ids("Learn").tolist()
    ordered = np.concatenate([i for _, _, i in p.batches("Learn")])
    assert ordered.tolist() == p.database.ids("Learn").tolist()
    # the same seed gives the same partition
    again = make(data_dir, seed=3).database
    assert np.array_equal(again.ids("Validation"), p.database.ids("Validation"))


def test_limit(data_dir):
    batches = collect(make(data_dir).batches("Test", limit=10))
    assert [len(x) for x, _, _ in batches] == [8, 2]
    assert collect(make(data_dir, validation=0).batches("Validation")) == []


def test_random_batches_draw_with_replacement(data_dir):
    p = make(data_dir)
    a = collect(p.random_batches(20, np.random.default_rng(4)))
    b = collect(p.random_batches(20, np.random.default_rng(4)))
    assert [len(x) for x, _, _ in a] == [8, 8, 4] and p.nb_batches(20) == 3
    ids = np.concatenate([i for _, _, i in a])
    assert np.array_equal(ids, np.concatenate([i for _, _, i in b]))
    assert set(ids.tolist()) <= set(p.database.ids("Learn").tolist())


def test_on_the_fly_random_flip_is_reproducible(data_dir):
    more = "[sp.OnTheFlyTransformation]\nType=FlipTransformation\nRandomHorizontalFlip=1\n"
    p = make(data_dir, "SizeX=5\nSizeY=6\nBatchSize=20", more)
    first = [x[:, 0, 0, 0].copy() for x, _, _ in p.batches("Test", np.random.default_rng(9))]
    again = [x[:, 0, 0, 0].copy() for x, _, _ in p.batches("Test", np.random.default_rng(9))]
    assert np.array_equal(first[0], again[0])
    assert 0 < (first[0] == 1).sum() < 20  # some flipped, some not


# -- prefetch thread ------------------------------------------------------------------------


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "n2d2py-prefetch"]


def test_prefetch_propagates_exceptions():
    def produce():
        yield 1
        yield 2
        raise KeyError("boom in the worker")

    got = []
    with pytest.raises(KeyError, match="boom in the worker"):
        for item in prefetch(produce):
            got.append(item)
    assert got == [1, 2]
    assert not prefetch_threads()


class _Exploding(Transformation):
    """Fails on its second batch."""

    type_name = "Exploding"
    calls = 0

    def apply_batch(self, imgs, rng):
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("transformation failed in the thread")
        return imgs


def test_provider_thread_error_reaches_the_caller(data_dir):
    p = make(data_dir)
    p.steps = [Step("sp.OnTheFlyTransformation", _Exploding(), "image", True)]
    with pytest.raises(RuntimeError, match="failed in the thread"):
        collect(p.batches("Test"))
    assert not prefetch_threads()


def test_closing_early_stops_the_thread():
    produced = []

    def produce():
        for i in range(1000):
            produced.append(i)
            yield i

    it = prefetch(produce, depth=2)
    assert next(it) == 0
    it.close()
    assert not prefetch_threads()
    assert len(produced) <= 5  # it stopped instead of running to the end


def test_prefetch_overlaps_with_the_consumer():
    def produce():
        for i in range(4):
            time.sleep(0.05)
            yield i

    start = time.perf_counter()
    for _ in prefetch(produce):
        time.sleep(0.05)  # "compute"
    assert time.perf_counter() - start < 0.35  # serial would be 0.40 s


# -- the prefetch thread in the CLI's loops -------------------------------------------------

PIPELINE_INI = (
    mnist_head("DataPath={data}\nValidation=0.2\n", "SizeX=5\nSizeY=6\nBatchSize=8\n")
    + """[sp.OnTheFlyTransformation-flip]
Type=FlipTransformation
ApplyTo=LearnOnly
RandomHorizontalFlip=1
RandomVerticalFlip=1
[sp.OnTheFlyTransformation-distort]
Type=DistortionTransformation
ApplyTo=LearnOnly
ElasticGaussianSize=3
ElasticSigma=1.0
ElasticScaling=2.0
Scaling=10
Rotation=10
[conv1]
Input=sp
Type=Conv
KernelDims=3 3
Padding=1
NbOutputs=4
ActivationFunction=Rectifier
ConfigSection=common.config
[drop1]
Input=conv1
Type=Dropout
NbOutputs=4
"""
    + softmax_tail("drop1", config="WeightsSolver.LearningRate=0.05\nSolvers.Momentum=0.9")
)


def cli_run(capsys, *args):
    from n2d2py import cli

    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (info.value.code or 0), out, err


def weight_files(folder):
    """The weight files of a saved folder (not its manifest, which holds a generation number)."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.syntxt"))}


def test_prefetched_learning_is_bit_identical_to_sequential(data_dir, tmp_path, capsys,
                                                            monkeypatch):
    """Batches prepared two ahead in the thread (random flips, elastic distortions, dropout
    drawing meanwhile) give the very weights of batches prepared when asked for."""
    from n2d2py.data import provider

    ini = tmp_path / "p.ini"
    ini.write_text(PIPELINE_INI.format(data=data_dir))
    saved, outputs = {}, {}
    for depth in (2, 0):
        monkeypatch.setattr(provider, "PREFETCH_DEPTH", depth)
        out_dir = tmp_path / f"depth{depth}"
        code, outputs[depth], err = cli_run(capsys, ini, "-learn", 96, "-seed", 1, "-o", out_dir)
        assert code == 0, err
        saved[depth] = weight_files(out_dir / "weights")
    assert set(saved[0]) == {"conv1_weights.syntxt", "conv1_biases.syntxt",
                             "fc1_weights.syntxt", "fc1_biases.syntxt"}
    assert saved[2] == saved[0]  # byte for byte, every cell's file
    rates = [re.findall(r"Final recognition rate: .*", outputs[d]) for d in (2, 0)]
    assert rates[0] == rates[1] and rates[0]
    assert not prefetch_threads()


def test_a_batch_that_fails_in_the_thread_is_one_line(data_dir, tmp_path, capsys, monkeypatch):
    """A transformation failing on the 3rd learning batch, while the thread prepares it:
    exit 2 with the one-line error naming the INI section, no traceback, no thread left."""
    from n2d2py.data import transformations

    calls = []
    flip = transformations.Flip.apply_batch

    def failing(self, imgs, rng):
        calls.append(len(imgs))
        if len(calls) == 3:
            raise ValueError("corrupt stimulus in the batch")
        return flip(self, imgs, rng)

    monkeypatch.setattr(transformations.Flip, "apply_batch", failing)
    ini = tmp_path / "p.ini"
    ini.write_text(PIPELINE_INI.format(data=data_dir))
    code, out, err = cli_run(capsys, ini, "-learn", 96, "-seed", 1, "-o", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out + err, err
    assert re.match(r"error: .*p\.ini:\d+: \[sp\.OnTheFlyTransformation-flip\].*"
                    r"FlipTransformation failed: corrupt stimulus in the batch", lines[0]), lines
    assert not prefetch_threads()


def test_stimuli_of_two_sizes_fail_in_one_line_from_the_thread(tmp_path, capsys, monkeypatch):
    """A folder of images of two sizes without a Rescale: the load probe (one stimulus per
    set) passes, a learning batch fails in the thread, and the user reads one line."""
    import cv2

    failed_in = []
    finish = StimuliProvider._finish

    def recording(self, imgs):
        try:
            return finish(self, imgs)
        except N2D2PyError:
            failed_in.append(threading.current_thread().name)
            raise

    monkeypatch.setattr(StimuliProvider, "_finish", recording)

    for c, name in enumerate(("a", "b")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for k in range(12):
            size = (7, 5) if k == 11 else (6, 5)  # the load probe reads another one
            cv2.imwrite(str(tmp_path / "data" / name / f"{k:02d}.png"),
                        np.full(size, 40 * c + k, np.uint8))
    text = PIPELINE_INI.replace("Type=MNIST_IDX_Database\nDataPath={data}",
                                f"Type=DIR_Database\nDataPath={tmp_path / 'data'}\nLearn=0.6")
    ini = tmp_path / "d.ini"
    ini.write_text(text.replace("NbOutputs=10", "NbOutputs=2"))
    code, out, err = cli_run(capsys, ini, "-learn", 64, "-seed", 1, "-o", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out + err, err
    assert re.match(r"error: .*d\.ini:\d+: \[sp\] SizeX: the stimuli (have different sizes|"
                    r"are 1x7x5)", lines[0]), lines
    assert failed_in == ["n2d2py-prefetch"]
    assert not prefetch_threads()
