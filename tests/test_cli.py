"""The command line: options as N2D2 spells them, and one clear line for every bad input."""

import re
from pathlib import Path

import pytest

from n2d2py import cli

BAD = Path(__file__).parent / "data" / "bad_ini"
MODELS = Path(__file__).parents[1] / "models"
NO_COMMENT = {
    "binary_garbage.ini": "not a text INI file",
    "empty.ini": "INI file is empty",
    "comments_only.ini": "missing input section",
}


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def expectation(path):
    if path.name in NO_COMMENT:
        return NO_COMMENT[path.name]
    first = path.read_text().splitlines()[0]
    assert first.startswith("; expect: "), f"{path.name} lacks its '; expect:' line"
    return first[len("; expect: ") :]


@pytest.mark.parametrize("path", sorted(BAD.glob("*.ini")), ids=lambda p: p.stem)
def test_bad_models_fail_with_one_clear_line(path, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, path, "--dry-run")
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2, err
    assert len(errors) == 1, err
    assert "Traceback" not in err + out
    line = errors[0]
    # errors inside a template name the template file (and the section rendering it)
    assert line.startswith(f"error: {path}") or line.startswith(f"error: {path.parent}/"), line
    assert re.search(expectation(path), line), line
    if path.name not in NO_COMMENT and "missing input section" not in line and "missing target" not in line:
        assert re.match(rf"error: {re.escape(str(path.parent))}/[^:]+:\d+: ", line), f"no line: {line}"


def test_dry_run_of_every_model(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for path in sorted(MODELS.glob("*.ini")):
        code, out, err = run_cli(capsys, path, "--dry-run")
        assert code in (0, None), f"{path.name}: {err}"
        assert "Total:" in out, path.name


def test_missing_ini_file(capsys):
    code, _, err = run_cli(capsys, "/nonexistent/model.ini", "--dry-run")
    assert code == 2 and "INI file not found" in err


def test_unknown_option_suggests(capsys):
    code, _, err = run_cli(capsys, MODELS / "LeNet.ini", "-learn-epoc", "3")
    assert code == 2
    assert "unknown option -learn-epoc; did you mean -learn-epoch?" in err


def test_not_yet_implemented_option_is_refused(capsys):
    code, _, err = run_cli(capsys, MODELS / "LeNet.ini", "-export", "CPP")
    assert code == 2 and "not implemented" in err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "x.ini", "-v")
    assert code in (0, None) and out.startswith("n2d2py ")
