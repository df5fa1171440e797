"""The model zoo: every INI in models/ dry-runs; published parameter counts; cifar-10.ini
learns on a small CIFAR-format data set written by the test."""

import time
from pathlib import Path

import numpy as np
import pytest

from n2d2py import backend, cli, learning, network
from n2d2py.data.cifar import CIFAR10_NAMES, write_batch
from n2d2py.ini import parse_file, parse_text

MODELS = Path(__file__).parents[1] / "models"
PUBLISHED = {  # file -> (parameters, output of the global pooling)
    "ResNet-18.ini": (11_689_512, (512, 1, 1)),  # torchvision resnet18
    "MobileNet_v1.ini": (4_231_976, (1024, 1, 1)),  # MobileNet v1 1.0-224
}


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """An empty data root, so that dry runs never depend on what the machine holds."""
    monkeypatch.setenv("N2D2_DATA", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("path", sorted(MODELS.glob("[!.]*.ini")), ids=lambda p: p.name)
def test_model_dry_runs(path, no_data, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([str(path), "--dry-run"])
    out, err = capsys.readouterr()
    assert info.value.code in (0, None), err
    assert "Total:" in out and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name, no_data):
    doc = parse_file(MODELS / name)
    net = network.build(doc, backend.cpu(0), load_data=False)
    params, pooled = PUBLISHED[name]
    assert sum(row[4] for row in net.summary()) == params
    assert net.cells["pool"].out_shape == pooled
    assert net.provider.shape == (3, 224, 224)
    assert net.cells["fc"].out_shape == (1000, 1, 1)


def write_cifar10(root, per_file=60, n_test=50, seed=0):
    """Two colour classes (bluish "automobile" vs reddish "airplane") in CIFAR-10 format."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)

    def batch(n):
        labels = rng.integers(0, 2, n)
        noise = rng.integers(0, 128, (n, 32, 32, 3))
        tint = np.where(labels[:, None] == 1, [100, 20, 20], [20, 20, 100])  # BGR
        return (noise + tint[:, None, None, :] + 20).astype(np.uint8), labels

    for i in range(1, 6):
        write_batch(root / f"data_batch_{i}.bin", *batch(per_file))
    write_batch(root / "test_batch.bin", *batch(n_test))
    (root / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n")


def test_cifar10_model_learns_on_cifar_format_data(tmp_path, monkeypatch):
    """The shipped cifar-10.ini (batch size made 2) for 300 steps on 300 generated images."""
    write_cifar10(tmp_path / "cifar-10-batches-bin")
    monkeypatch.setenv("N2D2_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    text = (MODELS / "cifar-10.ini").read_text()
    assert "$BATCH_SIZE=64" in text
    doc = parse_text(text.replace("$BATCH_SIZE=64", "$BATCH_SIZE=2"), str(tmp_path / "c.ini"))
    device = backend.cpu(1)
    net = network.build(doc, device)
    assert (net.provider.size("Learn"), net.provider.size("Validation")) == (270, 30)
    stats = {k: float(doc.prop("sp.StimuliData-normalize", f"_GlobalValue.{k}").raw)
             for k in ("mean", "stdDev")}
    assert 110 < stats["mean"] < 150 and 30 < stats["stdDev"] < 70  # raw 0-255 units
    net.initialize()
    held_out = [np.concatenate(a) for a in zip(*net.provider.batches("Validation"))][:2]

    def validation_loss():  # the 30 validation images in one batch (batch statistics)
        return sum(net.loss_grads(net.forward(held_out[0], train=True), held_out[1])[1])

    before, steps, start = validation_loss(), 300, time.perf_counter()
    losses = [learning._step(net, x, labels, 0)[0]
              for x, labels, _ in net.provider.random_batches(2 * steps, device.rng)]
    after = validation_loss()
    print(f"validation loss {before:.4f} -> {after:.4f}, {steps} steps in "
          f"{time.perf_counter() - start:.1f} s")
    assert len(losses) == steps and all(np.isfinite(losses))
    assert after < 0.5 * before, (before, after)
    x, labels = (np.concatenate(a) for a in list(zip(*net.provider.batches("Test")))[:2])
    accuracy = (net.forward(x)["softmax"].argmax(axis=1)[:, 0, 0] == labels).mean()
    assert accuracy >= 0.9, accuracy


@pytest.mark.parametrize("formal, spiking", [
    ("LeNet.ini", "LeNet_Spike.ini"),
    ("mnist24_16c4s2_24c5s2_150_10.ini", "mnist24_16c4s2_24c5s2_150_10_Spike.ini"),
])
def test_spike_models_read_their_formal_models_weights(formal, spiking, no_data):
    """Every parameter of a _Spike model is one its formal model learns, with the same shape
    (and the same connection table), so the run folder's weights load into it."""
    def params(name):
        net = network.build(parse_file(MODELS / name), backend.cpu(0), load_data=False)
        return {(cell, p.name): (p.shape, None if p.mask is None else
                                 np.broadcast_to(np.asarray(p.mask), p.shape).tobytes())
                for cell, c in net.cells.items() for p in c.params()}, net

    learned, _ = params(formal)
    needed, net = params(spiking)
    assert net.spike is not None and needed
    for key, shape in needed.items():
        assert learned.get(key) == shape, key
