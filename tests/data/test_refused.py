"""Database types N2D2's files name that n2d2py does not read yet: one line through the CLI."""

import pytest

from n2d2py import cli


def test_n_mnist_is_refused_by_name(tmp_path, capsys):
    path = tmp_path / "n.ini"
    path.write_text("[database]\nType=N_MNIST_Database\n[sp]\nSizeX=34\nSizeY=34\n")
    with pytest.raises(SystemExit) as info:
        cli.main([str(path), "--dry-run"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    [line] = [l for l in err.splitlines() if l.startswith("error:")]
    assert "n.ini:1: [database] Type=N_MNIST_Database is not supported yet" in line
