"""``-edge-learn``, ``-test``, ``-edge-stats``, ``-edge-sweep`` end to end on a tiny model."""

import pytest

from n2d2py import cli

EDGE = """
[edge]
Input=conv1
Type=EdgeFc
NbOutputs=10
NumWeights=60
NeuronsPerClass=5
LearningCompetition=0.1
InputThreshold=0.05
[edge.Target]
[common.config]
WeightsSolver.LearningRate=0.05
"""


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture(scope="module")
def edge_ini(tmp_path_factory, write_tiny_mnist_ini):
    """The tiny model's input and conv1 (random He weights, saved by a short run), an EdgeFc on
    conv1 (576 inputs), and a Learn set of 3,000 images."""
    folder = tmp_path_factory.mktemp("edge")
    tiny = write_tiny_mnist_ini(folder).read_text()
    text = tiny[: tiny.index("[fc1]")].replace("Validation=0.1", "Validation=0.95") + EDGE
    path = folder / "edge.ini"
    path.write_text(text)
    return path


def test_learn_then_test_then_test_alone(edge_ini, capsys, tmp_path):
    out = tmp_path / "run"
    code, text, err = run_cli(capsys, edge_ini, "-edge-learn", 3000, "-test", "-nb-test", 500,
                              "-seed", 1, "-o", out)
    assert code in (0, None), err
    assert "Edge learning [edge]: 3000 stimuli" in text
    line = next(l for l in text.splitlines() if l.startswith("Final recognition rate:"))
    assert float(line.split()[3].rstrip("%")) > 30.0, line  # random conv1: well above chance
    # with a Validation set, -test reads weights_validation/ (the runner's rule): saved there
    for name in ("weights_validation/edge_edge.npz", "weights_validation/conv1_weights.syntxt",
                 "edge.Target/ConfusionMatrix_test.dat", "edge.Target/test/classif.log"):
        assert (out / name).is_file(), name
    code, again, err = run_cli(capsys, edge_ini, "-test", "-nb-test", 500, "-o", out)
    assert code in (0, None), err
    assert "Edge state loaded from" in again
    assert next(l for l in again.splitlines() if l.startswith("Final recognition rate:")) == line


def test_stats_and_sweep_print_and_plot(edge_ini, capsys, tmp_path):
    code, text, err = run_cli(capsys, edge_ini, "-edge-stats", 500, "-seed", 1, "-o", tmp_path)
    assert code in (0, None), err
    assert "suggested NumWeights=" in text and (tmp_path / "edge_spikes.png").stat().st_size > 10000
    code, text, err = run_cli(capsys, edge_ini, "-edge-sweep", 7, "-seed", 1, "-o", tmp_path)
    assert code in (0, None), err
    rows = [l.split() for l in text.splitlines() if l.startswith("    ") and l.split()[0].isdigit()]
    assert len(rows) > 10 and all(int(r[2]) <= int(r[0]) for r in rows)
    assert (tmp_path / "edge_sweep_7.png").stat().st_size > 10000


@pytest.mark.parametrize("args, message", [
    (["-learn", 100], "it learns with -edge-learn N, not -learn"),
    (["-edge-stats", 10, "-test"], "-edge-stats runs alone"),
    (["-edge-sweep", "eleven"], "no such class"),
    (["-test"], "no edge state for [edge]"),
])
def test_wrong_uses_are_one_line_errors(edge_ini, capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, edge_ini, *args, "-o", tmp_path / "empty")
    errors = [l for l in err.splitlines() if not l.startswith("warning:")]
    assert code == 2 and len(errors) == 1 and message in errors[0], err


def test_edge_options_need_an_edge_layer(capsys, tmp_path, write_tiny_mnist_ini):
    code, _, err = run_cli(capsys, write_tiny_mnist_ini(tmp_path), "-edge-learn", 10, "-o", tmp_path)
    assert code == 2 and "need a Type=EdgeFc layer" in err
