"""N2D2's own model files (copies in tests/data/n2d2_models/) learn and test through the CLI
on tiny generated data in N2D2's layouts, with only their ``$VAR`` sizes lowered."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from n2d2py import backend, cli, learning, network
from n2d2py.data.databases import PACKAGE_DATA, read_idx, write_idx
from n2d2py.data.layouts import write_gtsrb, write_ilsvrc2012
from n2d2py.ini import parse_file

N2D2_MODELS = Path(__file__).parent / "data" / "n2d2_models"


def n2d2_file(name, folder, **values):
    """Copy N2D2's ``name`` (and its templates) into ``folder`` with ``$VAR=value`` lines set."""
    for tpl in N2D2_MODELS.glob("*.tpl"):
        shutil.copy(tpl, folder)
    text = (N2D2_MODELS / name).read_text()
    for var, value in values.items():
        text, n = re.subn(rf"^\${var}=.*$", f"${var}={value}", text, flags=re.M)
        assert n == 1, var
    path = folder / name
    path.write_text(text)
    return path


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    assert "Traceback" not in err
    return out


def final_rates(out):
    return [float(m) for m in re.findall(r"Final recognition rate: ([\d.]+)%", out)]


def tiny_mnist(root, n_train=400, n_test=100):
    """The first images of the shipped MNIST, written as a small IDX data set."""
    root.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        for kind, ndim in (("images-idx3", 3), ("labels-idx1", 1)):
            data = read_idx(PACKAGE_DATA / "mnist" / f"{split}-{kind}-ubyte.gz", ndim)[:n]
            write_idx(root / f"{split}-{kind}-ubyte", np.ascontiguousarray(data))
    return root


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("N2D2_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    return root


IMAGENET = {  # file -> the $VARs lowered (input 32×32, width ×1/8 or ×1/4, batches of 4)
    "ResNet-18.ini": {"SIZE": 32, "MARGIN": 4, "BATCH_SIZE": 4, "ALPHA": 0.125},
    "MobileNet_v1.ini": {"SIZE": 32, "MARGIN": 4, "BATCH_SIZE": 4, "ALPHA": 0.125},
}


@pytest.mark.parametrize("name", sorted(IMAGENET))
def test_imagenet_files_learn_and_test(name, data_root, tmp_path, capsys):
    """ILSVRC2012_Database on train/<synset>, val/, val.txt; learn 2 batches, then test."""
    write_ilsvrc2012(data_root / "ILSVRC2012", n_synsets=3, per_class=4, val_per_class=2)
    path = n2d2_file(name, tmp_path, **IMAGENET[name])
    out = run_cli([path, "-learn", 8, "-log", 8, "-seed", 1], capsys)
    assert "Learn set size: 12 stimuli" in out and "Test set size: 6 stimuli" in out
    [rate] = final_rates(out)
    assert rate in (0.0, 100 / 6, 200 / 6, 50.0, 400 / 6, 500 / 6, 100.0) or abs(
        rate * 6 / 100 - round(rate * 6 / 100)) < 1e-2  # k of 6 test images
    assert (tmp_path / "softmax.Target" / "Success_validation.dat").is_file()
    # the same file in process: a few steps on one batch lower its loss (it learns)
    net = network.build(parse_file(path), backend.cpu(0))
    net.initialize()
    x, labels, _ = next(net.provider.batches("Learn"))
    losses = [learning._step(net, x, labels, 0)[0] for _ in range(6)]
    assert losses[-1] < losses[0], losses


def test_gtsrb_file_learns_and_tests(data_root, tmp_path, capsys):
    """GTSRB_DIR_Database (crops to the sign box), gray 29×29, N2D2's file unchanged."""
    write_gtsrb(data_root / "GTSRB", n_classes=3, per_class=10, n_test=9)
    path = n2d2_file("GTSRB29_32c4s1_32mp2_48c5s1_48mp3_200_43.ini", tmp_path)
    out = run_cli([path, "-learn", 48, "-log", 48, "-seed", 1], capsys)
    assert "Learn set size: 24 stimuli" in out and "Validation set size: 6 stimuli" in out
    assert "Test set size: 9 stimuli" in out and len(final_rates(out)) == 1
    net = network.build(parse_file(path), backend.cpu(0))
    net.initialize()
    x, labels, _ = next(net.provider.batches("Learn"))
    assert x.shape == (24, 1, 29, 29)
    losses = [learning._step(net, x, labels, 0)[0] for _ in range(8)]
    assert losses[-1] < losses[0], losses


def test_am_softmax_file_learns_and_tests(data_root, tmp_path, capsys):
    """Normalize, Fc Normalize=1, TargetBias and the ×30 scale, from N2D2's file."""
    tiny_mnist(data_root / "mnist")
    path = n2d2_file("mnist24_16c4s2_24c5s2_150_10_AM-Softmax.ini", tmp_path)
    out = run_cli([path, "-learn", 1600, "-log", 1600, "-seed", 1], capsys)
    assert "Test set size: 100 stimuli" in out
    rates = final_rates(out)
    assert len(rates) == 2 and rates[0] >= 50.0  # 10 classes: chance is 10 %
    assert out.index("[softmax.Target]") < out.index("[fc2_margin.Target]")  # softmax first


def test_autoencoder_file_learns_its_input(data_root, tmp_path, capsys):
    """DataAsTarget: N2D2's distribution-weighted loss falls while learning; the score is the
    per-stimulus MSE against the input (printed as the "recognition rate", 100 × MSE)."""
    tiny_mnist(data_root / "mnist", n_train=200, n_test=40)
    path = n2d2_file("mnist-autoencoder.ini", tmp_path, BATCH_SIZE=8, LR=0.01)
    net = network.build(parse_file(path), backend.cpu(0))
    net.initialize()
    losses = [learning._step(net, x, labels, 0)[0]
              for x, labels, _ in net.provider.random_batches(8 * 60, net.device.rng)]
    assert np.mean(losses[-10:]) < 0.7 * losses[0], (losses[0], losses[-10:])
    target = net.targets[0][2]
    x, labels, ids = next(net.provider.batches("Test"))
    y = net.forward(x)["desp"]
    target.scores("test").clear()
    target.process("test", y, labels, ids)
    mse = ((np.asarray(y) - np.asarray(x)) ** 2).reshape(len(x), -1).mean(axis=1)
    assert target.scores("test").success_rate() == pytest.approx(mse.mean(), rel=1e-6)
    out = run_cli([path, "-learn", 160, "-log", 80, "-seed", 1], capsys)
    [rate] = final_rates(out)
    assert 0 < rate < 100
    matrix = np.loadtxt(tmp_path / "desp.Target" / "ConfusionMatrix_test.dat", skiprows=1)
    assert matrix.shape == (100, 4) and matrix[:, 2].sum() == 40 * 31 * 31
    assert not (tmp_path / "desp.Target" / "labels_mapping.log.dat").exists()
