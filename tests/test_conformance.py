"""Every registered entry of every kind, through the public path it serves (the CLI).

The tables below hold one minimal INI case per registered name. The first test of each kind
asserts that every name in the registry has a case here: an entry added without one fails
with the line to add. Data: a tiny IDX set (8×8 images, 10 classes) and, for the databases
that read other formats, tiny CIFAR, CSV and image-folder fixtures.
"""

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import n2d2py.network  # noqa: F401  (fills the registries)
import n2d2py.solvers
import n2d2py.spike  # noqa: F401  (fills STIMULI and TRANSCODERS)
from n2d2py import cli, registry, runner, weights
from n2d2py.data.cifar import write_batch
from n2d2py.data.databases import write_idx

SIZE = 8  # the tiny IDX images are SIZE×SIZE


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """The figures do not depend on the entry under test (tests/test_plots.py and the runner's
    tests draw them); drawing them here would take most of this file's time."""
    from n2d2py import plots

    for name in dir(plots):
        if name.startswith("plot_"):
            monkeypatch.setattr(plots, name, lambda *args, **kwargs: None)


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), f"n2d2py {' '.join(map(str, args))}\n{err}"
    return out, err


def assert_cases(kind, cases, what):
    missing = [name for name in getattr(registry, kind).names() if name not in cases]
    assert not missing, (
        f"registry.{kind} has no conformance case for {', '.join(missing)}: add "
        f"{what} to tests/test_conformance.py")


KINDS = ("CELLS", "ACTIVATIONS", "FILLERS", "SOLVERS", "LR_POLICIES", "DATABASES",
         "TRANSFORMATIONS", "TARGETS", "STIMULI", "TRANSCODERS")


def test_every_entry_follows_the_contract_of_its_kind():
    problems = [p for kind in KINDS for p in getattr(registry, kind).violations]
    assert not problems, "\n".join(problems)


def test_a_broken_entry_is_reported():
    reg = registry.Registry("solver", "n2d2py.solvers:Solver", ("from_section", "step"))

    class NoStep(n2d2py.solvers.Solver):
        @classmethod
        def from_section(cls, view):
            return cls()

    class NotASolver:
        pass

    reg.register("NoStep")(NoStep)
    reg.register("NotASolver")(NotASolver)
    assert reg.violations == [
        "solver 'NoStep' (test_a_broken_entry_is_reported.<locals>.NoStep) does not define step "
        "(contract: n2d2py.solvers:Solver)",
        "solver 'NotASolver' (test_a_broken_entry_is_reported.<locals>.NotASolver) must subclass "
        "Solver (contract: n2d2py.solvers:Solver)"]
    policies = registry.Registry("policy", "n2d2py.lr_policies:LRPolicy",
                                 ("__call__", "step_based"))
    policies.register("bare")(lambda base, n, spu, p: base)
    assert "does not define step_based" in policies.violations[0]


# -- data fixtures -------------------------------------------------------------------------------


def _images(labels, rng, size=SIZE):
    """Class k lights row k mod size (and column k // size): learnable, 8×8 uint8."""
    imgs = rng.integers(0, 40, (len(labels), size, size)).astype(np.uint8)
    for i, k in enumerate(labels):
        imgs[i, k % size, :] = 220
        imgs[i, :, k // size] = 220
    return imgs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Folders of tiny data sets: idx (MNIST layout), cifar10, cifar100, csv, dir."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    idx = root / "idx"
    idx.mkdir()
    for split, n in (("train", 64), ("t10k", 16)):
        labels = np.arange(n) % 10
        write_idx(idx / f"{split}-images-idx3-ubyte", _images(labels, rng))
        write_idx(idx / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))
    for kind, nb in (("cifar10", 10), ("cifar100", 100)):
        folder = root / kind
        folder.mkdir()
        labels = np.arange(20) % 10
        imgs = np.repeat(_images(labels, rng, 32)[..., None], 3, axis=3)
        files = ([f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"] if nb == 10
                 else ["train.bin", "test.bin"])
        for name in files:
            write_batch(folder / name, imgs, labels, coarse=labels if nb == 100 else None)
    rows = [",".join(map(str, np.r_[_images([k % 10], rng).reshape(-1)[:16], [k % 3]]))
            for k in range(30)]
    np.save(root / "mean.npy", np.full((SIZE, SIZE), 20, np.float32))
    (root / "d.csv").write_text("\n".join(rows) + "\n")
    faces = root / "IMDB-WIKI"  # IMDB-WIKI's cropped faces: 8x8 images, labels "<M|F>-<age>"
    (faces / "imdb_metadata").mkdir(parents=True)
    lines = []
    for k in range(40):
        path = faces / "wiki_crop" / f"{k % 4:02d}" / f"{k}_1950-01-01_1990.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), _images([k % 10], rng)[0])
        lines.append(f"{path.relative_to(faces / 'wiki_crop')};face {k};1;2;7;8;1950;"
                     f"{1970 + k % 10};{k % 2}")
    (faces / "imdb_metadata" / "wiki.csv").write_text("\n".join(lines) + "\n")
    for c in range(3):
        (root / "dir" / f"class{c}").mkdir(parents=True)
        for k in range(6):
            cv2.imwrite(str(root / "dir" / f"class{c}" / f"{k}.png"), _images([c], rng)[0])
    return root


# -- INI assembly ----------------------------------------------------------------------------------

HEAD = """DefaultModel={model}
[database]
{database}
[sp]
BatchSize=8
{sp}
"""
TAIL = """[fc]
Input={last}
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config
[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
{target}
[common.config]
WeightsSolver.LearningRate=0.05
{config}
"""
IDX = "Type=MNIST_IDX_Database\nDataPath={data}/idx\nValidation=0.25"
IDX_SP = f"SizeX={SIZE}\nSizeY={SIZE}"


def write_ini(folder, layers="", last="sp", database=IDX, sp=IDX_SP, target="", config="",
              model="Frame", data=None, tail=True):
    text = HEAD.format(model=model, database=database.format(data=data), sp=sp) + layers
    if tail:
        text += "\n" + TAIL.format(last=last, target=target, config=config)
    path = Path(folder) / "m.ini"
    path.write_text(text)
    return path


def syntxt(folder):
    return {p.name: p.read_text() for p in sorted(Path(folder).glob("*.syntxt"))}


# -- solvers × learning-rate policies: learn, checkpoint, resume ---------------------------------

POLICY_KEYS = {  # Solvers.* keys that make each policy move within a few batches
    "None": "",
    "StepDecay": "LearningRateStepSize=16\nLearningRateDecay=0.5",
    "ExponentialDecay": "LearningRateStepSize=16\nLearningRateDecay=0.5",
    "InvTDecay": "LearningRateStepSize=16\nLearningRateDecay=0.5",
    "PolyDecay": "MaxIterations=20\nPower=2",
    "InvDecay": "LearningRateDecay=0.1\nPower=0.75",
    "CosineDecay": "MaxIterations=20\nWarmUpDuration=2\nLearningRateStepSize=8",
}
SOLVER_KEYS = {  # the solver's own keys (its rate suits a few batches)
    "SGD": "LearningRate=0.05\nMomentum=0.9\nDecay=0.0005",
    "Adam": "LearningRate=0.01\nBeta1=0.8",
}
SOLVER_LAYERS = """[conv]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4
ActivationFunction=Rectifier
WeightsFiller=HeFiller
Solvers={solver}
ConfigSection=common.config
"""


def test_every_solver_and_policy_has_a_case():
    assert_cases("SOLVERS", SOLVER_KEYS, 'SOLVER_KEYS["<name>"] = "<its Solvers.* keys>"')
    assert_cases("LR_POLICIES", POLICY_KEYS, 'POLICY_KEYS["<name>"] = "<the keys it needs>"')


@pytest.mark.parametrize("policy", sorted(POLICY_KEYS))
@pytest.mark.parametrize("solver", sorted(SOLVER_KEYS))
def test_solver_learns_under_policy_and_resumes_exactly(solver, policy, data, tmp_path, capsys):
    keys = SOLVER_KEYS[solver] + "\nLearningRatePolicy=" + policy + "\n" + POLICY_KEYS[policy]
    config = "\n".join("Solvers." + k for k in keys.split("\n") if k)
    ini = write_ini(tmp_path, SOLVER_LAYERS.format(solver=solver), "conv", config=config, data=data)
    # 2 epochs of 48 stimuli straight; then 1 epoch, and a resumed run to 2 from its checkpoint
    full, cut = tmp_path / "full", tmp_path / "cut"
    run_cli(capsys, ini, "-learn-epoch", 2, "-seed", 3, "-o", full)
    run_cli(capsys, ini, "-learn-epoch", 1, "-seed", 3, "-o", cut)
    out, _ = run_cli(capsys, ini, "-learn-epoch", 2, "-l", cut / "net_state", "-o", cut)
    assert "Resuming from" in out and "48 stimuli already learned" in out
    learned, init = syntxt(full / "weights"), syntxt(full / "weights_init")
    assert learned.keys() == init.keys() == {"conv_weights.syntxt", "conv_biases.syntxt",
                                             "fc_weights.syntxt", "fc_biases.syntxt"}
    assert learned["conv_weights.syntxt"] != init["conv_weights.syntxt"], "nothing learned"
    assert syntxt(cut / "weights") == learned, "the resumed run differs from the straight one"
    schedule = (full / "schedule" / "conv_weights_schedule.log").read_text().split("\n")[1:-1]
    rates = [float(line.split()[1]) for line in schedule]
    assert len(rates) == 12 and all(np.isfinite(rates))
    if policy != "None":
        assert len(set(rates)) > 1, f"{policy} left the rate constant: {rates}"


# -- cells: build, learn, export, re-import -------------------------------------------------------

CONV = "Type=Conv\nKernelDims=3 3\nNbOutputs=3\nWeightsFiller=HeFiller\nConfigSection=common.config"
CELL_CASES = {  # sections up to [cell], the cell under test (its output feeds the Fc tail)
    "BatchNorm": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=BatchNorm\nNbOutputs=3\n"
                 "ActivationFunction=Rectifier\nConfigSection=common.config",
    "Conv": "[cell]\nInput=sp\nType=Conv\nKernelDims=3 3\nNbOutputs=4\nStride=1\nPadding=1\n"
            "ActivationFunction=Rectifier\nWeightsFiller=HeFiller\nConfigSection=common.config",
    "Deconv": "[cell]\nInput=sp\nType=Deconv\nKernelDims=3 3\nNbOutputs=2\nStride=2\n"
              "WeightsFiller=HeFiller\nConfigSection=common.config",
    "Dropout": "[cell]\nInput=sp\nType=Dropout\nNbOutputs=1\nConfigSection=common.config",
    "ElemWise": f"[pre]\nInput=sp\n{CONV}\n[pre2]\nInput=sp\n{CONV}\n"
                "[cell]\nInput=pre,pre2\nType=ElemWise\nOperation=Sum\nNbOutputs=3",
    "Fc": "[cell]\nInput=sp\nType=Fc\nNbOutputs=12\nActivationFunction=Rectifier\n"
          "WeightsFiller=HeFiller\nConfigSection=common.config",
    "LRN": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=LRN\nNbOutputs=3\nN=3",
    "Padding": "[cell]\nInput=sp\nType=Padding\nNbOutputs=1\nTopPadding=1\nBottomPadding=2\n"
               "LeftPadding=0\nRightPadding=1",
    "Pool": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Pool\nPoolDims=2 2\nStride=2\n"
            "NbOutputs=3\nPooling=Max\nMapping.Size=1",
    "Reshape": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Reshape\nNbOutputs=3\n"
               "Dims=9 4 3",
    "Resize": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Resize\nNbOutputs=3\n"
              "OutputWidth=4\nOutputHeight=4\nMode=Bilinear",
    "Softmax": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Softmax\nNbOutputs=3",
    "Transpose": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Transpose\nNbOutputs=6\n"
                 "Perm=0 2 1",
    "Threshold": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Threshold\nNbOutputs=3\n"
                 "Threshold=0.2",
    "Transformation": f"[pre]\nInput=sp\n{CONV}\n[cell]\nInput=pre\nType=Transformation\n"
                      "NbOutputs=3\nTransformation=ThresholdTransformation\nOperation=ToZero\n"
                      "Threshold=0.2",
    # not back-propagated: one pass of -edge-learn on its input, then -test (its own target)
    "EdgeFc": "[cell]\nInput=sp\nType=EdgeFc\nNbOutputs=10\nNumWeights=12\nNeuronsPerClass=2\n"
              "LearningCompetition=0.1\nInputThreshold=0.5\n[cell.Target]",
}


def test_every_cell_type_has_a_case():
    assert_cases("CELLS", CELL_CASES, 'CELL_CASES["<Type>"] = "<sections up to [cell]>"')


@pytest.mark.parametrize("cell_type", sorted(CELL_CASES))
def test_cell_builds_learns_exports_and_reimports(cell_type, data, tmp_path, capsys):
    edge = cell_type == "EdgeFc"
    ini = write_ini(tmp_path, CELL_CASES[cell_type] + "\n", "cell", data=data, tail=not edge)
    run = tmp_path / "run"
    if edge:
        out, _ = run_cli(capsys, ini, "-edge-learn", 48, "-test", "-seed", 1, "-o", run)
        assert "Edge learning [cell]: 48 stimuli" in out
        assert (run / "weights_validation" / "cell_edge.npz").is_file()
        out, _ = run_cli(capsys, ini, "-test", "-o", run)
        assert "Edge state loaded from" in out and "Final recognition rate" in out
        return
    out, _ = run_cli(capsys, ini, "-learn", 32, "-seed", 1, "-o", run)
    assert f"cell  {cell_type}" in re.sub(" +", "  ", out), out  # the layer table names it
    learned, init = syntxt(run / "weights"), syntxt(run / "weights_init")
    assert learned["fc_weights.syntxt"] != init["fc_weights.syntxt"], "nothing learned"
    own = [name for name in learned if name.startswith("cell_")]
    for name in own:
        if "mean" not in name and "variance" not in name:
            assert learned[name] != init[name], f"{name} did not learn"
    # re-import through -w, then export again: the same files
    net = runner.run(runner.Options(str(ini), test=True, weights=str(run / "weights"),
                                    nb_test=8, out=str(tmp_path / "again")))
    assert "Final recognition rate" in capsys.readouterr().out
    weights.save_weights(net.cells, str(tmp_path / "again" / "exported"))
    assert syntxt(tmp_path / "again" / "exported") == learned


# -- activations and fillers, each in a learning cell ---------------------------------------------

ACTIVATION_CASES = {  # where the activation sits: a hidden Conv, or the output layer
    "Linear": "hidden", "Logistic": "hidden", "Rectifier": "hidden", "Saturation": "hidden",
    "Softplus": "hidden", "Swish": "hidden", "Tanh": "hidden", "TanhLeCun": "hidden",
    "LogisticWithLoss": "output",  # the loss is folded into it: on the output, no Softmax
}
FILLER_KEYS = {
    "ConstantFiller": "WeightsFiller.Value=0.05",
    "NormalFiller": "WeightsFiller.Mean=0.01\nWeightsFiller.StdDev=0.1",
    "UniformFiller": "WeightsFiller.Min=-0.2\nWeightsFiller.Max=0.2",
    "HeFiller": "WeightsFiller.VarianceNorm=FanIn",
    "XavierFiller": "WeightsFiller.VarianceNorm=Average\nWeightsFiller.Distribution=Normal",
}
HIDDEN = """[cell]
Input=sp
Type=Conv
KernelDims=3 3
NbOutputs=4
ActivationFunction={activation}
WeightsFiller={filler}
{filler_keys}
ConfigSection=common.config
"""
OUTPUT = """[cell]
Input=sp
Type=Fc
NbOutputs=10
ActivationFunction={activation}
WeightsFiller={filler}
{filler_keys}
ConfigSection=common.config
[cell.Target]
[common.config]
WeightsSolver.LearningRate=0.05
"""


def test_every_activation_and_filler_has_a_case():
    assert_cases("ACTIVATIONS", ACTIVATION_CASES, 'ACTIVATION_CASES["<name>"] = "hidden"')
    assert_cases("FILLERS", FILLER_KEYS, 'FILLER_KEYS["<name>"] = "<its WeightsFiller.* keys>"')


def _learn_one_cell(tmp_path, capsys, data, activation, filler):
    case = ACTIVATION_CASES[activation]
    text = (HIDDEN if case == "hidden" else OUTPUT).format(
        activation=activation, filler=filler, filler_keys=FILLER_KEYS[filler])
    ini = write_ini(tmp_path, text, "cell", data=data, tail=case == "hidden")
    run = tmp_path / "run"
    out, err = run_cli(capsys, ini, "-learn", 32, "-seed", 2, "-o", run)
    assert "unused" not in err and "unknown" not in err, err
    learned, init = syntxt(run / "weights"), syntxt(run / "weights_init")
    assert learned["cell_weights.syntxt"] != init["cell_weights.syntxt"], "nothing learned"
    return np.array(init["cell_weights.syntxt"].split(), dtype=float)


@pytest.mark.parametrize("activation", sorted(ACTIVATION_CASES))
def test_activation_learns_in_a_cell(activation, data, tmp_path, capsys):
    _learn_one_cell(tmp_path, capsys, data, activation, "HeFiller")


@pytest.mark.parametrize("filler", sorted(FILLER_KEYS))
def test_filler_initialises_a_learning_cell(filler, data, tmp_path, capsys):
    values = _learn_one_cell(tmp_path, capsys, data, "Rectifier", filler)
    if filler == "ConstantFiller":
        np.testing.assert_allclose(values, 0.05, rtol=1e-6)
    else:
        assert values.std() > 0


# -- databases and transformations: a batch through the CLI -----------------------------------------

DATABASE_CASES = {  # [database] keys ({data}: the fixtures' folder), [sp] keys
    "MNIST_IDX_Database": (IDX, IDX_SP),
    "Fashion_MNIST_IDX_Database": (IDX.replace("MNIST", "Fashion_MNIST"), IDX_SP),
    "CIFAR10_Database": ("Type=CIFAR10_Database\nDataPath={data}/cifar10\nValidation=0.2",
                         "SizeX=32\nSizeY=32\nNbChannels=3"),
    "CIFAR100_Database": ("Type=CIFAR100_Database\nDataPath={data}/cifar100\nValidation=0.2",
                          "SizeX=32\nSizeY=32\nNbChannels=3"),
    "CSV_Database": ("Type=CSV_Database\nDataPath={data}/d.csv", "SizeX=16\nSizeY=1"),
    "DIR_Database": ("Type=DIR_Database\nDataPath={data}/dir\nLearn=0.6\nValidation=0.2",
                     IDX_SP + "\nNbChannels=1"),
    # the classification form (CropFrame=1); full frames (label maps) in tests/data/
    "IMDBWIKI_Database": ("Type=IMDBWIKI_Database\nDataPath={data}/IMDB-WIKI\n"
                          "LabelPath={data}/IMDB-WIKI/imdb_metadata\nCropFrame=1\nLearn=0.6\n"
                          "Validation=0.2", IDX_SP),
}
TRANSFORMATION_CASES = {  # [sp.Transformation_1] keys (on the IDX data unless "cifar:" leads)
    "AffineTransformation": "FirstOperator=Minus\nFirstValue={data}/mean.npy",
    "ChannelExtractionTransformation": "cifar:CSChannel=Blue",
    "ColorSpaceTransformation": "cifar:ColorSpace=HSV",
    "DistortionTransformation": "ElasticGaussianSize=5\nElasticSigma=2.0\nElasticScaling=5.0"
                                "\nScaling=5.0\nRotation=10.0",
    "FlipTransformation": "RandomHorizontalFlip=1\nRandomVerticalFlip=1",
    "NormalizeTransformation": "Norm=MinMax",
    "PadCropTransformation": "Width=10\nHeight=10",
    "RangeAffineTransformation": "FirstOperator=Minus\nFirstValue=0.1\nSecondOperator=Multiplies"
                                 "\nSecondValue=2.0",
    "RescaleTransformation": "Width=6\nHeight=6",
    "SliceExtractionTransformation": "Width=6\nHeight=6\nRandomOffsetX=1\nRandomOffsetY=1",
}


def test_every_database_and_transformation_has_a_case():
    assert_cases("DATABASES", DATABASE_CASES, 'DATABASE_CASES["<Type>"] = ("<[database] keys>", '
                 '"<[sp] keys>") and its data in the fixture')
    assert_cases("TRANSFORMATIONS", TRANSFORMATION_CASES,
                 'TRANSFORMATION_CASES["<Type>"] = "<its keys>"')


@pytest.mark.parametrize("db_type", sorted(DATABASE_CASES))
def test_database_feeds_learning_and_testing(db_type, data, tmp_path, capsys):
    database, sp = DATABASE_CASES[db_type]
    ini = write_ini(tmp_path, "", "sp", database=database, sp=sp, data=data)
    out, _ = run_cli(capsys, ini, "-learn", 16, "-test", "-seed", 1, "-o", tmp_path / "run")
    sizes = dict(re.findall(r"^(\w+) set size: (\d+) stimuli", out, re.M))
    assert int(sizes["Learn"]) > 0 and int(sizes["Test"]) > 0, out
    assert "Final recognition rate" in out


@pytest.mark.parametrize("transformation", sorted(TRANSFORMATION_CASES))
def test_transformation_feeds_a_batch(transformation, data, tmp_path, capsys):
    keys = TRANSFORMATION_CASES[transformation].format(data=data)
    database, sp = DATABASE_CASES["MNIST_IDX_Database"]
    if keys.startswith("cifar:"):
        keys = keys[len("cifar:"):]
        database, sp = DATABASE_CASES["CIFAR10_Database"]
    sp += f"\n[sp.Transformation_1]\nType={transformation}\n{keys}"
    if "Width=" in keys:  # the network input follows the transformation's output size
        width = re.search(r"Width=(\d+)", keys).group(1)
        sp = re.sub(r"SizeX=\d+\nSizeY=\d+", f"SizeX={width}\nSizeY={width}", sp)
    if "CSChannel" in keys:
        sp = sp.replace("NbChannels=3", "NbChannels=1")
    ini = write_ini(tmp_path, "", "sp", database=database, sp=sp, data=data)
    out, err = run_cli(capsys, ini, "-learn", 16, "-seed", 1, "-o", tmp_path / "run")
    assert "unused" not in err and "unknown" not in err, err
    assert (tmp_path / "run" / "weights" / "fc_weights.syntxt").is_file()


# -- targets ---------------------------------------------------------------------------------------

TARGET_KEYS = {"TargetScore": "TopN=2", "Target": "TargetValue=0.9\nDefaultValue=0.0",
               "TargetROIs": "MinSize=1"}


def test_every_target_has_a_case():
    assert_cases("TARGETS", TARGET_KEYS, 'TARGET_KEYS["<Type>"] = "<its keys>"')


@pytest.mark.parametrize("target", sorted(TARGET_KEYS))
def test_target_scores_learning_and_testing(target, data, tmp_path, capsys):
    ini = write_ini(tmp_path, "", "sp", target=f"Type={target}\n{TARGET_KEYS[target]}", data=data)
    run = tmp_path / "run"
    out, err = run_cli(capsys, ini, "-learn", 32, "-test", "-seed", 1, "-o", run)
    assert "unused" not in err, err
    names = ("Success_learning.dat", "ConfusionMatrix_test.dat")
    if target == "TargetROIs":  # boxes and their confusion, no recognition rate (§7.6)
        assert re.search(r"\d+ boxes on \d+ stimuli", out), out
        names = ("ConfusionMatrix_test.dat",)
    else:
        assert "Final recognition rate" in out
    for name in names:
        assert (run / "softmax.Target" / name).is_file(), name


# -- spike codings and transcoders: learn formally, then the spike test -----------------------------

STIMULUS_KEYS = {  # [env] config keys (times in femtoseconds)
    "SingleBurst": "",
    "Periodic": "",
    "JitteredPeriodic": "PeriodRelStdDev=0.1",
    "Poissonian": "",
    "Linear": "MaxFrequency=1e11",
}
TRANSCODER_CASES = {  # a spiking-ready layer of the type, between the input and the last Fc
    "Conv": "[cell]\nInput=env\nType=Conv\nKernelDims=3 3\nNbOutputs=4\n"
            "ActivationFunction=Rectifier\nWeightsFiller=HeFiller\nConfigSection=common.config",
    "Fc": "[cell]\nInput=env\nType=Fc\nNbOutputs=16\nActivationFunction=Rectifier\n"
          "WeightsFiller=HeFiller\nConfigSection=common.config",
    "Pool": "[cell]\nInput=env\nType=Pool\nPoolDims=2 2\nStride=2\nNbOutputs=1\nPooling=Max",
}
SPIKE = """DefaultModel=Transcode
WeightsNormalization=Percentile
[database]
Type=MNIST_IDX_Database
DataPath={data}/idx
Validation=0.25
[env]
SizeX=8
SizeY=8
BatchSize=8
ConfigSection=env.config
[env.config]
StimulusType={coding}
PeriodMin=1,000,000
PeriodMeanMin=10,000,000
PeriodMeanMax=100,000,000,000
{coding_keys}
{layer}
[out]
Input=cell
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config,out.config
[out.Target]
[common.config]
NoBias=1
WeightsSolver.LearningRate=0.05
Solvers.Clamping=-1.0:1.0
[out.config]
TerminateDelta=4
"""


def test_every_coding_and_transcoder_has_a_case():
    assert_cases("STIMULI", STIMULUS_KEYS, 'STIMULUS_KEYS["<StimulusType>"] = "<its keys>"')
    assert_cases("TRANSCODERS", TRANSCODER_CASES,
                 'TRANSCODER_CASES["<cell Type>"] = "<a [cell] section of that type>"')


def _spike_test(tmp_path, capsys, data, coding, layer):
    ini = tmp_path / "spike.ini"
    ini.write_text(SPIKE.format(data=data, coding=coding, coding_keys=STIMULUS_KEYS[coding],
                                layer=layer))
    out, err = run_cli(capsys, ini, "-learn", 32, "-test", "-nb-test", 4, "-seed", 1,
                       "-o", tmp_path / "run")
    assert "unused" not in err, err
    assert "Final spiking recognition rate" in out, out
    return out


@pytest.mark.parametrize("coding", sorted(STIMULUS_KEYS))
def test_coding_drives_the_spike_test(coding, data, tmp_path, capsys):
    _spike_test(tmp_path, capsys, data, coding, TRANSCODER_CASES["Conv"])


@pytest.mark.parametrize("cell_type", sorted(TRANSCODER_CASES))
def test_transcoder_runs_the_spike_test(cell_type, data, tmp_path, capsys):
    _spike_test(tmp_path, capsys, data, "JitteredPeriodic", TRANSCODER_CASES[cell_type])
