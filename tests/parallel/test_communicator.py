"""The communicator interface with its single-process implementation, the Group's arithmetic
of slices and ranges, detection of mpiexec, and the data-parallel code path run in one
process (``--parallel single``) learning exactly what the plain path learns."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from n2d2py import parallel, runner
from n2d2py.parallel.communicator import Communicator, SingleCommunicator
from n2d2py.parallel.group import Group
from n2d2py.targets import Scores

ROOT = Path(__file__).parents[2]


def test_single_communicator_keeps_the_contract():
    comm = SingleCommunicator()
    assert (comm.rank, comm.size, comm.local_rank) == (0, 1, 0)
    a = np.arange(6, dtype=np.float32)
    assert comm.allreduce(a) is a and a.tolist() == list(range(6))
    assert comm.bcast_array(a) is a
    assert comm.bcast({"seed": 3}) == {"seed": 3}
    assert comm.gather("x") == ["x"]
    with pytest.raises(SystemExit):
        comm.abort(3)


def test_the_interface_says_what_is_missing():
    with pytest.raises(NotImplementedError):
        Communicator().allreduce(np.zeros(1))


class FakeRank:
    """Rank ``rank`` of ``size``, for the arithmetic only."""

    def __init__(self, rank, size):
        self.rank, self.size, self.local_rank = rank, size, rank


@given(st.integers(1, 9), st.integers(0, 300))
def test_batch_slices_and_set_ranges_cover_everything_once(size, n):
    groups = [Group(FakeRank(r, size)) for r in range(size)]
    ranges = [g.share(n) for g in groups]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # consecutive: set order kept
    slices = [g.part(n) for g in groups]
    if n >= size:  # every rank computes a non-empty slice, together the whole batch once
        assert slices == ranges and all(hi > lo for lo, hi in slices)
    else:  # smaller than the group: every rank computes the whole batch
        assert slices == [(0, n)] * size


def test_reducing_scores_of_one_rank_changes_nothing():
    scores = Scores(3)
    scores.add(np.array([0, 1, 2]), np.array([[0], [2], [2]]), np.ones((3, 1)), np.eye(3), ids=[5, 6, 7])
    before = (scores.matrix.copy(), scores.total, scores.correct, dict(scores.misclassified), scores.classif)
    Group(SingleCommunicator()).reduce_scores(scores)
    after = (scores.matrix, scores.total, scores.correct, scores.misclassified, scores.classif)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1:] == before[1:]


def test_mpiexec_is_detected_from_its_environment(monkeypatch):
    for var in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert parallel.launched() is None and parallel.start("auto") is None
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert parallel.launched() == (1, 4)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")
    assert parallel.start("auto") is None  # mpiexec -n 1: a plain run
    assert parallel.start("off") is None


def test_a_plain_run_never_imports_mpi4py(tmp_path):
    code = ("import sys; from n2d2py import cli, runner, learning, parallel; "
            "assert parallel.start('auto') is None; print('mpi4py' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MV2_", "PMIX_"))}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


SMALL = """DefaultModel=Frame
[database]
Type=MNIST_IDX_Database
Validation=0.01
[sp]
SizeX=28
SizeY=28
BatchSize=8
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=3
ConfigSection=common.config
[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=4
ActivationFunction=Rectifier
[drop]
Input=bn1
Type=Dropout
NbOutputs=4
[fc]
Input=drop
Type=Fc
NbOutputs=10
ConfigSection=common.config
[softmax]
Input=fc
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
[common.config]
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
Solvers.IterationSize=2
"""


def test_the_group_path_in_one_process_learns_exactly_the_plain_path(tmp_path, capsys):
    """Slices, the packed buffer, carried IterationSize gradients, BatchNorm and Dropout hooks
    and score reduction, with one rank: bit for bit what the plain loop computes."""
    ini = tmp_path / "small.ini"
    ini.write_text(SMALL)
    nets = [runner.run(runner.Options(str(ini), learn=84, log=40, seed=2, test=True, nb_test=50,
                                      out=str(tmp_path / kind), parallel=kind))
            for kind in ("off", "single")]
    lines = [l for l in capsys.readouterr().out.splitlines() if "recognition rate" in l]
    assert len(lines) == 2 and lines[0] == lines[1]
    for cell in nets[0].cells:
        for a, b in zip(nets[0].cells[cell].params() + nets[0].cells[cell].buffers(),
                        nets[1].cells[cell].params() + nets[1].cells[cell].buffers()):
            np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data), err_msg=f"{cell}/{a.name}")
    for name in ("ConfusionMatrix_learning.dat", "ConfusionMatrix_validation.dat", "test/classif.log"):
        assert ((tmp_path / "single" / "softmax.Target" / name).read_text()
                == (tmp_path / "off" / "softmax.Target" / name).read_text())
