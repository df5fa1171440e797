"""Targets built from INI text, as the network builds them (``make_target``)."""

import os

import pytest

from n2d2py.errors import Diagnostics
from n2d2py.ini import Section, parse_text
from n2d2py.registry import TARGETS
from n2d2py.targets import link_targets


def build_targets(tmp_path, sections, labels, files=None):
    """Targets of INI ``sections`` [(section name, cell, nb_outputs, body)], linked and
    ordered as the network does; returns ({section: target}, diagnostics)."""
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        diag = Diagnostics(stream=open(os.devnull, "w"))
        text = "".join(f"[{name}]\n{body}\n" for name, _, _, body in sections)
        doc = parse_text(text, "m.ini", diag)
        found = []
        for name, cell, nb_outputs, _ in sections:
            sec = Section(doc, [name])
            cls = TARGETS.get(sec.get_str("Type", "TargetScore"))
            found.append((name, cell, cls.from_section(sec, cell, nb_outputs, labels)))
        ordered = link_targets(found)
        return {name: t for name, _, t in ordered}, diag, [name for name, _, _ in ordered]
    finally:
        os.chdir(cwd)


@pytest.fixture
def make_targets(tmp_path):
    return lambda *args, **kw: build_targets(tmp_path, *args, **kw)
