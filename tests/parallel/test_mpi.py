"""``mpiexec -n 2`` against one process, on 2 cores: 40 batches learn the same weights
(LeNet at its BatchSize=128, and a network with BatchNorm and Dropout at batch 16), score the
same, resume after a SIGTERM on any rank, and rank 0 alone writes the run folder (an audit
hook fails rank 1 if it writes).

Tolerance 0: the batch is cut in 8 micro-slices whatever the number of ranks
(``parallel.slices``), each rank computes 4 of them, every batch sum is taken per micro-slice
by the same code and added in float64, so 2 processes compute the bits that one does (before
that they drifted apart at ~1e-7 per step, and at batch 128 a max-pooling decision flipped
after ~23 batches: 2e-2 apart at batch 40).
Needs the ``mpi`` extra (mpi4py and an ``mpiexec``).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from n2d2py import runner, weights

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")
if MPIEXEC is None:
    pytest.skip("no mpiexec: pip install -e '.[mpi]' installs MPICH's", allow_module_level=True)

TOL = 0.0
BATCHES, BATCH = 40, 16
LEARN = BATCHES * BATCH
LENET_BATCH = 128  # models/LeNet.ini's

BN_NET = """DefaultModel=Frame
[database]
Type=MNIST_IDX_Database
Validation=0.02
[sp]
SizeX=28
SizeY=28
BatchSize=16
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=8
Stride=2
WeightsFiller=HeFiller
ConfigSection=common.config
[bn1]
Input=conv1
Type=BatchNorm
NbOutputs=8
ActivationFunction=Rectifier
ConfigSection=common.config
[fc1]
Input=bn1
Type=Fc
NbOutputs=32
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1.drop]
Input=fc1
Type=Dropout
NbOutputs=32
[fc2]
Input=fc1.drop
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
Solvers.LearningRate=0.05
Solvers.Momentum=0.9
"""


def lenet(tmp_path):
    """The shipped LeNet (BatchSize=128), 2 % of MNIST's learning set for validation."""
    text = (ROOT / "models" / "LeNet.ini").read_text()
    assert f"BatchSize={LENET_BATCH}" in text
    text = text.replace("Validation=0.2 ", "Validation=0.02 ")
    path = tmp_path / "lenet.ini"
    path.write_text(text)
    return str(path)


def bn_net(tmp_path):
    path = tmp_path / "bn.ini"
    path.write_text(BN_NET)
    return str(path)


def mpirun(cwd, ini, out, *args, env=None, n=2, check=True):
    """n2d2py on ``n`` ranks (1 thread each) with rank 0 alone allowed to write ``out``."""
    environ = dict(os.environ, OMP_NUM_THREADS="1", N2D2PY_MPI_TIMEOUT="60", PYTHONPATH=str(ROOT),
                   N2D2PY_TEST_GUARD=str(out),
                   # the OpenBLAS kernels of this process (which compares with its own run):
                   # its OPENBLAS_CORETYPE as it stands (n2d2py sets it when imported first)
                   N2D2PY_OPENBLAS_CORETYPE="keep")
    environ.update(env or {})
    cmd = [MPIEXEC, "-n", str(n), sys.executable, str(HERE / "launch.py"), ini, "-o", str(out), *args]
    done = subprocess.run(cmd, cwd=cwd, env=environ, capture_output=True, text=True, timeout=240)
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def state(out, name="net_state"):
    params, _, meta = weights.load_state(str(Path(out) / name))
    return params, meta


def assert_close(got, expected):
    assert got.keys() == expected.keys()
    worst = {k: float(np.abs(got[k] - expected[k]).max()) for k in expected}
    assert max(worst.values()) <= TOL, f"largest differences {worst}"


def files(out):
    return sorted(str(p.relative_to(out)) for p in Path(out).rglob("*"))


def final_line(text):
    return next(l for l in text.splitlines() if l.startswith("Final recognition rate:"))


@pytest.mark.parametrize("make, batch, seed", [(lenet, LENET_BATCH, 1), (bn_net, BATCH, 3)],
                         ids=["LeNet", "BatchNorm+Dropout"])
def test_two_processes_learn_and_score_what_one_does(tmp_path, make, batch, seed, capsys):
    ini = make(tmp_path)
    one, two = tmp_path / "one", tmp_path / "two"
    learn = BATCHES * batch
    runner.run(runner.Options(ini, learn=learn, log=learn // 2, seed=seed, test=True, nb_test=300,
                              out=str(one)))
    single = capsys.readouterr().out
    done = mpirun(tmp_path, ini, two, "-learn", str(learn), "-log", str(learn // 2),
                  "-seed", str(seed), "-test", "-nb-test", "300")
    expected, _ = state(one)
    got, meta = state(two)
    assert meta["progress"]["seen"] == learn
    assert_close(got, expected)  # BatchNorm's moving means and variances included
    best_one, _ = state(one, "net_state_validation")
    best_two, _ = state(two, "net_state_validation")
    assert_close(best_two, best_one)
    # split validation and test, counts reduced: the same scores and logs
    assert final_line(done.stdout) == final_line(single)
    target = "softmax.Target"
    for name in ("ConfusionMatrix_test.dat", "ConfusionMatrix_validation.dat", "Success_validation.dat",
                 "Success_learning.dat", "ConfusionMatrix_learning.dat"):
        assert (two / target / name).read_text() == (one / target / name).read_text(), name
    rows = [[line.split() for line in (run / target / "test" / "classif.log").read_text().splitlines()]
            for run in (two, one)]
    assert [r[:4] for r in rows[0]] == [r[:4] for r in rows[1]]  # id, name, target, estimated
    outputs = [np.array([[float(v) for v in r[4:]] for r in run]) for run in rows]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-4)
    # rank 1 wrote nothing (the audit hook would have failed it) and rank 0 the same files
    assert files(two) == files(one)
    assert sorted(os.listdir(tmp_path)) == sorted(["one", "two", Path(ini).name])
    assert done.stdout.count("Final recognition rate:") == 1  # one rank prints


def test_sigterm_on_rank_1_checkpoints_once_and_resumes_on_one_process(tmp_path, capsys):
    ini = bn_net(tmp_path)
    full, cut = tmp_path / "full", tmp_path / "cut"
    runner.run(runner.Options(ini, learn=LEARN, log=LEARN // 2, seed=3, out=str(full)))
    capsys.readouterr()
    done = mpirun(tmp_path, ini, cut, "-learn", str(LEARN), "-log", str(LEARN // 2), "-seed", "3",
                  env={"N2D2PY_TEST_TERM_AT": "25"}, check=False)
    assert done.returncode == 130, done.stderr[-3000:]
    assert done.stdout.count("state saved in") == 1
    _, meta = state(cut)
    assert meta["progress"]["seen"] == 25 * BATCH  # the batch during which rank 1 was stopped
    resumed = runner.run(runner.Options(ini, learn=LEARN, log=LEARN // 2, out=str(cut),
                                        load_state=str(cut / "net_state")))
    got = {f"{c}/{p.name}": np.asarray(p.data) for c, cell in resumed.cells.items()
           for p in list(cell.params()) + list(cell.buffers())}
    expected, _ = state(full)
    assert_close(got, expected)


def test_a_rank_that_stops_answering_ends_the_run_with_one_line(tmp_path):
    """Rank 1 hangs after the first log step: rank 0 gives up after N2D2PY_MPI_TIMEOUT seconds
    with one line and aborts the job; the checkpoint of the log step is intact."""
    ini = bn_net(tmp_path)
    out = tmp_path / "run"
    done = mpirun(tmp_path, ini, out, "-learn", str(12 * BATCH), "-log", str(8 * BATCH), "-seed", "3",
                  env={"N2D2PY_TEST_HANG_AT": "10", "N2D2PY_MPI_TIMEOUT": "8"}, check=False)
    assert done.returncode != 0
    lines = [l for l in done.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "rank 0 of 2: no answer from the other ranks for 8 s" in lines[0], done.stderr
    _, meta = state(out)
    assert meta["progress"]["seen"] == 8 * BATCH
