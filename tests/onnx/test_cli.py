"""The user's path (n2d2py.cli.main): an ONNX file in an INI written N2D2's way, tested,
learned, exported and imported again; a spike test of an imported network."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from n2d2py import cli  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from helpers import export, run_ort  # noqa: E402

INI = """DefaultModel={model}
{glob}
[database]
Type=MNIST_IDX_Database
[{sp}]
SizeX=28
SizeY=28
BatchSize=32
{extra}
[onnx]
Input={sp}
Type=ONNX
File={file}
[onnx:Conv_def]
ConfigSection=common.config
[onnx:Fc_def]
ConfigSection=common.config
[out.Target]
[common.config]
Solvers.LearningRate=0.05
"""


def cnn():
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def run_cli(capsys, *args):
    code = 0
    try:
        cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def rate(out):
    return float(re.findall(r"Final recognition rate: ([\d.]+)%", out)[-1])


@pytest.fixture
def onnx_ini(tmp_path):
    def write(name="m.ini", file=None, model="Frame", sp="sp", extra=""):
        file = file or export(cnn(), (1, 1, 28, 28), tmp_path / "m.onnx")
        path = tmp_path / name
        glob = "WeightsNormalization=None" if model == "Transcode" else ""
        path.write_text(INI.format(model=model, glob=glob, sp=sp, extra=extra, file=file))
        return path

    return write


def test_import_test_learn_export_round_trip(onnx_ini, tmp_path, capsys):
    ini, run = onnx_ini(), tmp_path / "run"
    code, out, err = run_cli(capsys, ini, "-test", "-nb-test", "200", "-o", run)
    assert code == 0, err
    module = cnn().eval()  # the ONNX weights are tested when nothing was learned
    untrained = rate(out)
    code, out, err = run_cli(capsys, ini, "-learn", "256", "-log", "256", "-seed", "1", "-test",
                             "-nb-test", "200", "-o", run)
    assert code == 0, err
    learned = rate(out)
    assert learned != untrained and (run / "weights" / "out_weights.syntxt").is_file()
    code, out, err = run_cli(capsys, ini, "-export", "ONNX", "-o", run)
    assert code == 0, err
    exported = run / "export_ONNX_float32" / "model.onnx"
    assert f"Exported the network to {exported}" in out
    # onnxruntime on the exported file = n2d2py with the learned weights
    from n2d2py import backend, network, weights
    from n2d2py.errors import Diagnostics
    from n2d2py.ini import parse_file

    net = network.build(parse_file(ini, Diagnostics()), backend.cpu(1), load_data=False)
    net.initialize()
    weights.load_weights(net.cells, run / "weights")
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(net.forward(x)["out"].reshape(5, 10), run_ort(exported, x),
                               rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # and the learned weights differ from the file's first ones
        assert not np.allclose(module(torch.from_numpy(x)).numpy(), run_ort(exported, x))
    # exported then imported: the same score
    again = onnx_ini("again.ini", file=exported)
    code, out, err = run_cli(capsys, again, "-test", "-w", "/dev/null", "-nb-test", "200", "-o",
                             tmp_path / "run2")
    assert code == 0, err
    assert rate(out) == learned


def test_other_export_types_are_refused_by_name(onnx_ini, capsys):
    code, _, err = run_cli(capsys, onnx_ini(), "-export", "CPP")
    assert code == 2 and "-export CPP: not implemented in n2d2py" in err and "ONNX" in err


def test_missing_onnx_file_is_one_line(onnx_ini, tmp_path, capsys):
    code, _, err = run_cli(capsys, onnx_ini(file=tmp_path / "absent.onnx"), "--dry-run")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "[onnx] File: ONNX file not found:" in lines[0] and "absent.onnx" in lines[0]


def test_imported_network_transcodes_to_spikes(onnx_ini, tmp_path, capsys):
    extra = ("ConfigSection=env.config\n[env.config]\nStimulusType=JitteredPeriodic\n"
             "PeriodMin=1,000,000\nPeriodMeanMin=10,000,000\nPeriodMeanMax=100,000,000,000\nPeriodRelStdDev=0.0\n")
    ini = onnx_ini(model="Transcode", sp="env", extra=extra)
    code, out, err = run_cli(capsys, ini, "-test", "-nb-test", "20", "-o", tmp_path / "spk")
    assert code == 0, err
    assert "Final recognition rate" in out and "Final spiking recognition rate" in out


def test_transfer_learning_on_onnx_nodes(onnx_ini, tmp_path, capsys):
    """MobileNet_v1_ONNX_transfer.ini's recipe: Ignore the old classifier, stack new layers on
    an ONNX node (Input=onnx,<node>), freeze the imported Conv through [onnx:Conv_def]."""
    ini = onnx_ini()
    text = ini.read_text().replace("[onnx:Conv_def]\nConfigSection=common.config",
                                   "[onnx:Conv_def]\nConfigSection=frozen")
    text = text.replace("File=", "Ignore=out\nFile=").replace("[out.Target]\n", "")
    text += ("[frozen]\nSolvers.LearningRate=0\n"
             "[fc]\nInput=onnx,/2/MaxPool_output_0\nType=Fc\nNbOutputs=10\n"
             "ConfigSection=common.config\n[soft]\nInput=fc\nType=Softmax\nNbOutputs=10\n"
             "WithLoss=1\n[soft.Target]\n")
    ini.write_text(text)
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, ini, "-learn", "128", "-log", "128", "-seed", "2", "-o", run)
    assert code == 0, err
    assert "out" not in [line.split()[0] for line in out.splitlines() if line.strip()]
    read = lambda folder, name: np.loadtxt(run / folder / name, ndmin=2)
    conv = "_0_Conv_output_0_weights.syntxt"
    np.testing.assert_array_equal(read("weights", conv), read("weights_init", conv))  # frozen
    assert not np.allclose(read("weights", "fc_weights.syntxt"), read("weights_init", "fc_weights.syntxt"))
