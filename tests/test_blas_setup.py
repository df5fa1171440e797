"""Which OpenBLAS kernels n2d2py asks for, from the CPU's flags (never over a user's choice)."""

import sys

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


def test_a_set_core_type_or_a_loaded_numpy_is_left_alone(monkeypatch):
    monkeypatch.setattr(blas_setup, "cpu_flags", lambda: AVX512)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    blas_setup.choose_blas_kernels()
    assert blas_setup.os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setitem(sys.modules, "numpy", sys)  # too late to choose: OpenBLAS is loaded
    blas_setup.choose_blas_kernels()
    assert "OPENBLAS_CORETYPE" not in blas_setup.os.environ
    monkeypatch.delitem(sys.modules, "numpy")
    blas_setup.choose_blas_kernels()
    assert blas_setup.os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"
