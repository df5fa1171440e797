"""End to end on the shipped MNIST: learn, test, resume after an interruption, bad weights."""

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from n2d2py import learning, runner
from n2d2py.errors import N2D2PyError

SMALL = """DefaultModel=Frame
[database]
Type=MNIST_IDX_Database
Validation={validation}
[sp]
SizeX=28
SizeY=28
BatchSize=64
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=8
Stride=2
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1]
Input=conv1
Type=Fc
NbOutputs=32
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1.drop]
Input=fc1
Type=Dropout
NbOutputs=[fc1]NbOutputs
[fc2]
Input={fc2_input}
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config
[softmax]
Input=fc2
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
[common.config]
WeightsSolver.LearningRate={lr}
Solvers.Momentum=0.9
Solvers.LearningRatePolicy=StepDecay
Solvers.LearningRateStepSize=[sp]_EpochSize
Solvers.LearningRateDecay=0.9
"""


def model(tmp_path, validation=0.0, lr=0.05, dropout=True):
    path = tmp_path / "small.ini"
    path.write_text(SMALL.format(validation=validation, lr=lr, fc2_input="fc1.drop" if dropout else "fc1"))
    return str(path)


def weights_of(net):
    return {f"{c}/{p.name}": np.array(p.data) for c, cell in net.cells.items() for p in cell.params()}


def test_lenet_learns_mnist_quickly(tmp_path, capsys):
    """The shipped LeNet, 32,768 learning stimuli (about 20 s here): > 95 % on 2,000 tests."""
    out = tmp_path / "run"
    ini = str(Path(__file__).parents[1] / "models" / "LeNet.ini")
    opts = runner.Options(ini, learn=32768, log=32768, test=True, seed=1, out=str(out), nb_test=2000)
    runner.run(opts)
    text = capsys.readouterr().out
    line = next(l for l in text.splitlines() if l.startswith("Final recognition rate:"))
    rate = float(line.split()[3].rstrip("%"))
    assert rate > 95.0, line
    assert (out / "seed.dat").read_text().strip() == "1"
    assert json.loads((out / "run.json").read_text())["ini"] == ini
    for name in ("weights/conv1_weights.syntxt", "weights_validation/fc2_weights.syntxt", "weights_init/fc1_weights.syntxt",
                 "softmax.Target/Success_learning.dat", "softmax.Target/ConfusionMatrix_test.dat",
                 "softmax.Target/test/classif.log", "softmax.Target/Success_learning.png",
                 "softmax.Target/ConfusionMatrix_test.png", "softmax.Target/Success_validation.png",
                 "net_state/state.npz", "net_state_validation/state.json", "weights_histograms.png",
                 "schedule/conv1_weights_schedule.log", "schedule/learning_rate.png"):
        assert (out / name).is_file(), name
    # -test alone reads the seed back and scores the saved weights identically, and leaves
    # the learning run's files alone
    init = (out / "weights_init" / "conv1_weights.syntxt").read_bytes()
    again = runner.run(runner.Options(ini, test=True, out=str(out), nb_test=2000))
    assert (out / "weights_init" / "conv1_weights.syntxt").read_bytes() == init
    assert again.seed == 1
    line2 = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("Final recognition rate:"))
    assert line2 == line


def test_interrupt_and_resume_ends_with_the_same_weights(tmp_path, monkeypatch):
    ini = model(tmp_path, validation=0.8, lr=0.02)  # a Learn set of 12,000: short epochs
    common = dict(learn_epoch=1, log=6000, seed=7)
    full = runner.run(runner.Options(ini, out=str(tmp_path / "full"), **common))
    expected = weights_of(full)

    real_step, calls = learning._step, {"n": 0}

    def interrupting_step(*args):
        calls["n"] += 1
        if calls["n"] == 120:  # mid-epoch, after the first log step
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args)

    monkeypatch.setattr(learning, "_step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        runner.run(runner.Options(ini, out=str(tmp_path / "cut"), **common))
    monkeypatch.setattr(learning, "_step", real_step)
    state = tmp_path / "cut" / "net_state"
    assert (state / "state.json").is_file()
    resumed = runner.run(runner.Options(ini, out=str(tmp_path / "cut"), load_state=str(state), learn_epoch=1, log=6000))
    assert resumed.seed == 7  # taken from the checkpoint
    got = weights_of(resumed)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_validating_more_often_learns_the_same_weights(tmp_path):
    """A validation pass draws nothing from the RNG that dropout and shuffling use, so -log
    changes what is printed, not what is learned."""
    ini = model(tmp_path, validation=0.8, lr=0.02)
    runs = [runner.run(runner.Options(ini, learn=4096, log=log, seed=5, out=str(tmp_path / str(log))))
            for log in (1024, 4096)]
    often, once = (weights_of(net) for net in runs)
    for key, value in once.items():
        np.testing.assert_array_equal(often[key], value, err_msg=key)


def test_corrupt_weights_are_refused_and_nothing_is_overwritten(tmp_path):
    ini = model(tmp_path)
    out = tmp_path / "run"
    runner.run(runner.Options(ini, learn=640, log=640, seed=2, out=str(out)))
    target = out / "weights" / "fc1_weights.syntxt"
    lines = target.read_text().splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # one value short on line 4
    target.write_text("\n".join(lines) + "\n")
    before = {p.name: p.read_bytes() for p in (out / "weights").iterdir()}
    with pytest.raises(N2D2PyError, match=r"fc1_weights.syntxt.*line 4|line 4.*fc1_weights") as info:
        runner.run(runner.Options(ini, test=True, weights=str(out / "weights"), out=str(out)))
    assert "expected" in str(info.value)
    assert {p.name: p.read_bytes() for p in (out / "weights").iterdir()} == before


def test_divergence_stops_with_a_clear_message(tmp_path):
    ini = model(tmp_path, lr=1e9)
    with pytest.raises(N2D2PyError, match="diverged"):
        runner.run(runner.Options(ini, learn=6400, log=6400, seed=3, out=str(tmp_path / "run")))
