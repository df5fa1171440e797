"""N2D2 options and keys that n2d2py does not honour: each refused by name, in one line."""

from pathlib import Path

import pytest

from n2d2py import cli
from n2d2py.unsupported import N2D2_OPTIONS

MODELS = Path(__file__).parents[1] / "models"

# Every option of N2D2's command line (src/utils/Helper.cpp, opts.parse), as of its HEAD.
N2D2_ALL = """-act-clipping-mode -act-quantile-value -act-rescale-per-output -act-rescaling-mode
-b-round-mode -bench -c-round-mode -calib -calib-reload -calibOnly -cfg -check -db-export -dev
-dynamic-allocation -export -export-parameters -find-lr -finetuning -fuse -l -learn -learn-epoch
-learn-stdp -log -log-db-stats -log-epoch -log-json -log-kernels -log-outputs -multidev -nb-test
-nbbits -no-cle -no-unsigned -pre-samples -present-time -pruning -pruning-threshold -qat-sat
-report -save-test-set -seed -stop-valid -test -test-id -test-index -testAdv -testQAT -ts -v
-valid-metric -verbose -w -w-ignore -ws -wt-clipping-mode -wt-round-mode""".split()


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_every_n2d2_option_is_implemented_or_refused_by_name():
    known = cli._known_options()
    missing = [o for o in N2D2_ALL if o not in known and o not in cli.NOT_YET]
    assert not missing, f"N2D2 options neither implemented nor in unsupported.N2D2_OPTIONS: {missing}"


@pytest.mark.parametrize("option", sorted(N2D2_OPTIONS))
def test_n2d2_option_is_refused_by_name(option, capsys):
    code, out, err = run_cli(capsys, MODELS / "LeNet.ini", option, "1", "-learn", "10")
    assert code == 2 and out == ""
    assert err == f"error: option {option} ({N2D2_OPTIONS[option]}) is not implemented in n2d2py yet\n"


# -- Transcode models with layers that cannot spike ------------------------------------------------


def tutorial_lenet(tmp_path, default_model_line):
    """LeNet.ini as N2D2's tutorial writes it: no DefaultModel line (N2D2's default: Transcode)."""
    text = (MODELS / "LeNet.ini").read_text().replace("DefaultModel=Frame\n", default_model_line)
    path = tmp_path / "lenet.ini"
    path.write_text(text)
    return path


def test_implicit_transcode_warns_when_built_and_refuses_test_before_learning(tmp_path, capsys):
    ini = tutorial_lenet(tmp_path, "")
    code, out, err = run_cli(capsys, ini, "--dry-run")
    assert code in (0, None) and "Model: Transcode" in out
    assert ("[fc1.drop] Dropout has no spiking equivalent, so learning and testing this model "
            "(which ends in the spike test) are refused" in err)
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, ini, "-learn-epoch", "10", "-test", "-o", run)
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"error: {ini}:") and "[fc1.drop]" in lines[0]
    assert "without a DefaultModel line N2D2's default, Transcode, applies" in lines[0]
    assert "write DefaultModel=Frame before the first section" in lines[0]
    assert "Learning" not in out and not (run / "weights_init").exists()  # nothing learned


def test_explicit_transcode_refuses_with_the_spiking_ini_fix(tmp_path, capsys):
    ini = tutorial_lenet(tmp_path, "DefaultModel=Transcode\n")
    code, out, err = run_cli(capsys, ini, "-learn", "128", "-test", "-o", tmp_path / "run")
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1, err
    assert "[fc1.drop] Dropout has no spiking equivalent: remove [fc1.drop] from the spiking INI" in lines[0]


def test_learning_alone_is_refused_too_as_it_ends_in_the_test(tmp_path, capsys, write_tiny_mnist_ini):
    """-learn tests after learning (as N2D2): the tutorial's `-learn-epoch 10` without a
    DefaultModel line is told at once, not after its 10 epochs."""
    ini = write_tiny_mnist_ini(tmp_path)
    ini.write_text(ini.read_text().replace("DefaultModel=Frame\n", ""))
    code, out, err = run_cli(capsys, ini, "-learn-epoch", "10", "-o", tmp_path / "run")
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(lines) == 1, err
    assert "[softmax] Softmax has no spiking equivalent; without a DefaultModel line" in lines[0]
    assert not (tmp_path / "run" / "weights_init").exists()
    # what the message says to do: the same command then learns
    ini.write_text("DefaultModel=Frame\n" + ini.read_text())
    code, out, err = run_cli(capsys, ini, "-learn", "32", "-log", "32", "-o", tmp_path / "run")
    assert code in (0, None), err
