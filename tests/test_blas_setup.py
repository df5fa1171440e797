"""Which OpenBLAS kernels n2d2py asks for, from the CPU's flags and the two variables."""

import subprocess
import sys

import pytest

from n2d2py import blas_setup

AVX512 = {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl"}


def test_core_type_follows_the_cpu_flags():
    assert blas_setup.openblas_coretype({"avx2", "fma"}) is None
    assert blas_setup.openblas_coretype(AVX512 - {"avx512vl"}) is None
    assert blas_setup.openblas_coretype(AVX512) == "SkylakeX"
    assert blas_setup.openblas_coretype(AVX512 | {"avx512_bf16"}) == "Cooperlake"


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f\n")
    assert blas_setup.cpu_flags(str(info)) == {"fpu", "avx2", "avx512f"}
    assert blas_setup.cpu_flags(str(tmp_path / "missing")) == set()


@pytest.fixture
def fresh(monkeypatch):
    """choose_blas_kernels as if numpy were not loaded yet, on an AVX-512 CPU."""
    monkeypatch.setattr(blas_setup, "cpu_flags", lambda: AVX512)
    monkeypatch.setattr(blas_setup, "choice", blas_setup.choice)  # restored afterwards
    monkeypatch.delitem(sys.modules, "numpy", raising=False)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    monkeypatch.delenv(blas_setup.OWN_VARIABLE, raising=False)
    return monkeypatch


@pytest.mark.parametrize("given, expected", [
    (None, "SkylakeX"),                   # nobody chose: the CPU's AVX-512 kernels
    ("Haswell", "SkylakeX"),              # a pin below the CPU is raised, and said
    ("zen", "SkylakeX"),
    ("SkylakeX", "SkylakeX"),             # an AVX-512 pin is kept
    ("Cooperlake", "Cooperlake"),
    ("SapphireRapids", "SapphireRapids"),
])
def test_a_pin_without_avx512_is_raised_on_an_avx512_cpu(fresh, given, expected):
    if given is not None:
        fresh.setenv("OPENBLAS_CORETYPE", given)
    blas_setup.choose_blas_kernels()
    assert blas_setup.os.environ["OPENBLAS_CORETYPE"] == expected
    line = blas_setup.describe()
    assert expected in line
    if given and given.lower() in blas_setup.NARROWER_CORES:
        assert f"not OPENBLAS_CORETYPE={given}" in line and "=keep" in line


def test_own_variable_decides(fresh):
    fresh.setenv("OPENBLAS_CORETYPE", "Haswell")
    fresh.setenv(blas_setup.OWN_VARIABLE, "keep")
    blas_setup.choose_blas_kernels()
    assert blas_setup.os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert blas_setup.describe() == f"OpenBLAS Haswell ({blas_setup.OWN_VARIABLE}=keep)"
    fresh.setenv(blas_setup.OWN_VARIABLE, "Zen")
    blas_setup.choose_blas_kernels()
    assert blas_setup.os.environ["OPENBLAS_CORETYPE"] == "Zen"


def test_no_avx512_or_a_loaded_numpy_changes_nothing(fresh):
    fresh.setattr(blas_setup, "cpu_flags", lambda: {"avx2", "fma"})
    blas_setup.choose_blas_kernels()
    assert "OPENBLAS_CORETYPE" not in blas_setup.os.environ
    fresh.setattr(blas_setup, "cpu_flags", lambda: AVX512)
    fresh.setitem(sys.modules, "numpy", sys)  # too late to choose: OpenBLAS is loaded
    blas_setup.choose_blas_kernels()
    assert "OPENBLAS_CORETYPE" not in blas_setup.os.environ
    assert blas_setup.describe() == ""


def test_the_choice_reaches_openblas_in_a_fresh_process():
    """Importing n2d2py first sets the variable before numpy loads OpenBLAS, over a Haswell pin
    on an AVX-512 CPU (the pin stays elsewhere)."""
    code = ("import n2d2py, numpy, os; from n2d2py import blas_setup; "
            "print(os.environ.get('OPENBLAS_CORETYPE'), blas_setup.choice[0])")
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_CORETYPE": "Haswell",
           "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    expected = blas_setup.openblas_coretype(blas_setup.cpu_flags()) or "Haswell"
    assert out[0] == expected


def test_an_unknown_core_of_our_own_variable_is_refused_by_name(fresh, tmp_path):
    fresh.setenv(blas_setup.OWN_VARIABLE, "Skylake-X")  # OpenBLAS spells it SkylakeX
    blas_setup.choose_blas_kernels()
    assert "OPENBLAS_CORETYPE" not in blas_setup.os.environ
    with pytest.raises(Exception, match="N2D2PY_OPENBLAS_CORETYPE=Skylake-X: not an OpenBLAS"):
        blas_setup.check()
    code = "import sys; from n2d2py.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
           blas_setup.OWN_VARIABLE: "Skylake-X"}
    ini = tmp_path / "m.ini"
    ini.write_text("[database]\nType=MNIST_IDX_Database\n[sp]\nSizeX=28\nSizeY=28\n"
                   "[fc]\nInput=sp\nType=Fc\nNbOutputs=10\n[fc.Target]\n")
    run = subprocess.run([sys.executable, "-c", code, str(ini), "--dry-run"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "N2D2PY_OPENBLAS_CORETYPE=Skylake-X" in lines[0], run.stderr
