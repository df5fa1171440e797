"""End to end on the shipped MNIST: learn a tiny model, then run its spiking INI as N2D2 does
(in the learning run's folder), one stimulus with -test-index, and the one-line errors."""

import pytest

from n2d2py import cli, runner

SPIKE_INI = """DefaultModel=Transcode
WeightsNormalization=Percentile
[database]
Type=MNIST_IDX_Database
Validation=0.1
[env]
SizeX=28
SizeY=28
BatchSize=32
ConfigSection=env.config
[env.config]
StimulusType=JitteredPeriodic
PeriodMin=1,000,000
PeriodMeanMin=10,000,000
PeriodMeanMax=100,000,000,000
PeriodRelStdDev=0.0
[conv1]
Input=env
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=2
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1]
Input=conv1
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config,fc1.config
{softmax}
[common.config]
NoBias=1
WeightsSolver.LearningRate=0.05
Solvers.Momentum=0.9
Threshold=1.0
BipolarThreshold=0
IncomingDelay=0
[fc1.config]
BipolarThreshold=1
TerminateDelta=4
Threshold=0.125
"""
SOFTMAX = "[softmax]\nInput=fc1\nType=Softmax\nNbOutputs=10\nWithLoss=1\n[softmax.Target]"


@pytest.fixture(scope="module")
def learned(tmp_path_factory, write_tiny_mnist_ini):
    """A run folder where the tiny Frame model (NoBias) learned 2,000 stimuli."""
    folder = tmp_path_factory.mktemp("spike_run")
    ini = write_tiny_mnist_ini(folder)
    ini.write_text(ini.read_text().replace("[common.config]\n", "[common.config]\nNoBias=1\n"))
    runner.run(runner.Options(str(ini), learn=2000, log=2000, seed=1, out=str(folder / "run")))
    return folder


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def rate(out, prefix):
    line = next(l for l in out.splitlines() if l.startswith(prefix))
    return float(line[len(prefix):].split("%")[0])


def test_spiking_ini_in_the_learning_folder_runs_both_tests(learned, capsys):
    ini = learned / "spike.ini"
    ini.write_text(SPIKE_INI.format(softmax="[fc1.Target]"))
    code, out, err = run_cli(capsys, ini, "-test", "-o", learned / "run", "-nb-test", "200")
    assert code == 0, err
    formal = rate(out, "Final recognition rate: ")
    spiking = rate(out, "Final spiking recognition rate: ")
    assert formal > 80 and spiking > formal - 5, out
    assert "Network activity (events/connection/pattern): " in out
    assert "(error rate: " in out.splitlines()[-3]
    run = learned / "run"
    stats = (run / "stats_spike.log").read_text()
    assert "Patterns: 200\n" in stats and "Read events per virtual synapse per pattern" in stats
    classif = (run / "fc1.Target" / "test_spike" / "classif.log").read_text().splitlines()
    assert len(classif) == 200
    assert (run / "fc1.Target" / "ConfusionMatrix_test_spike.dat").exists()


def test_test_index_prints_the_outputs_and_plots_them(learned, capsys):
    ini = learned / "spike.ini"
    ini.write_text(SPIKE_INI.format(softmax="[fc1.Target]"))
    code, out, err = run_cli(capsys, ini, "-test", "-o", learned / "run", "-test-index", "7")
    assert code == 0, err
    outs = [l for l in out.splitlines() if l.strip().startswith("out #")]
    assert len(outs) == 10 and sum("***" in l for l in outs) == 1
    png = learned / "run" / "output_spikes_7.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "Patterns: 1\n" in (learned / "run" / "stats_spike.log").read_text()


def test_softmax_in_a_spiking_ini_is_one_clear_line(learned, capsys):
    ini = learned / "spike_softmax.ini"
    ini.write_text(SPIKE_INI.format(softmax=SOFTMAX))
    code, out, err = run_cli(capsys, ini, "-test", "-o", learned / "run", "-nb-test", "10")
    lines = [l for l in err.splitlines() if not l.startswith("warning:")]
    assert code == 2 and len(lines) == 1, err
    assert "[softmax] Softmax has no spiking equivalent: remove [softmax]" in lines[0]
    assert "[fc1.Target]" in lines[0] and "Final recognition rate" not in out
