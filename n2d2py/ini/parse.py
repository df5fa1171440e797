"""Lines → sections, following N2D2's lexer (spec §1.2), keeping the file:line of every value."""

import os
from dataclasses import dataclass, field

from n2d2py.errors import Diagnostics, N2D2PyError


MAX_INHERITED = 1_000_000  # keys copied by section inheritance, per document


@dataclass
class Prop:
    """One ``Key=value`` as written (value unresolved), with where it was written."""

    section: str
    key: str
    raw: str
    file: str
    line: int
    generated: bool = False


@dataclass
class RawSection:
    name: str
    file: str
    line: int
    props: dict = field(default_factory=dict)  # key -> Prop, in file order
    prev: str = ""  # the section defined just before this one (for ${PREV_SECTION_NAME})
    template: str = ""  # template path for [name@file.ini.tpl] headers


class Document:
    """All sections of one model (the top file and the templates it renders)."""

    GLOBAL = ""

    def __init__(self, path, diagnostics=None):
        self.path = str(path)
        self.dir = os.path.dirname(os.path.abspath(path))
        self.diagnostics = diagnostics or Diagnostics()
        self.sections = {self.GLOBAL: RawSection(self.GLOBAL, self.path, 0)}
        self.read = set()  # (section, key) pairs that some consumer read
        self.probed = {}  # section -> set of keys asked for (found or not): "did you mean"

    def __contains__(self, name):
        return name in self.sections

    def section_names(self):
        return [n for n in self.sections if n != self.GLOBAL]

    def prop(self, section, key):
        return self.sections[section].props.get(key)

    def mark_read(self, section, key):
        self.read.add((section, key))

    def set_generated(self, section, key, value):
        """Write a generated read-only key such as ``[sp]_EpochSize`` or ``[conv1]_NbOutputs``."""
        sec = self.sections[section]
        sec.props[key] = Prop(section, key, str(value), sec.file, sec.line, generated=True)
        self.read.add((section, key))

    def warn(self, message, prop=None, section=None):
        if prop is not None:
            self.diagnostics.warn(message, prop.file, prop.line, prop.section, prop.key)
        else:
            self.diagnostics.warn(message, self.path, None, section)


def read_text(path, what="INI file"):
    """The text of ``path``; missing, binary, empty, special (``/dev/zero``) or huge files are
    user errors."""
    from n2d2py import limits

    try:
        data = limits.read_regular(path, limits.MAX_TEXT_BYTES, what)
    except FileNotFoundError:
        raise N2D2PyError(f"{what} not found", str(path)) from None
    except IsADirectoryError:
        raise N2D2PyError(f"{what} is a directory, not a file", str(path)) from None
    except OSError as exc:
        raise N2D2PyError(f"cannot read {what}: {exc.strerror}", str(path)) from None
    if b"\0" in data:
        raise N2D2PyError(f"not a text {what} (binary data)", str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise N2D2PyError(f"not a UTF-8 text {what} (byte {exc.start})", str(path)) from None
    if not text.strip():
        raise N2D2PyError(f"{what} is empty", str(path))
    return text


def parse_file(path, diagnostics=None, variables=None):
    """Parse a top-level INI file into a Document (templates are rendered on the way)."""
    doc = Document(path, diagnostics)
    for key, value in (variables or {}).items():
        doc.sections[Document.GLOBAL].props[key] = Prop("", key, value, "<command line>", 0)
    _Parser(doc).feed(read_text(path), str(path))
    return doc


def parse_text(text, path="<string>", diagnostics=None):
    """Parse INI text (tests, templates); ``path`` is used for messages and relative paths."""
    doc = Document(path, diagnostics)
    if not text.strip():
        raise N2D2PyError("INI file is empty", path)
    _Parser(doc).feed(text, path)
    return doc


def logical_lines(text, path):
    """(line number, content) after continuation, comment stripping and trimming."""
    pending, start = "", None
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removeprefix("\ufeff").removesuffix("\r")
        if line.endswith("\\"):
            if start is None:
                start = number
            pending += line[:-1]
            continue
        line, first = pending + line, start or number
        pending, start = "", None
        line = strip_comment(line, path, first).strip()
        if line:
            yield first, line
    if pending.strip():
        line = strip_comment(pending, path, start).strip()
        if line:
            yield start, line


def strip_comment(line, path, number):
    """Cut at the first ``;`` or ``#`` outside double quotes; an open quote is an error."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch in ";#" and not quoted:
            return line[:i]
    if quoted:
        raise N2D2PyError("unterminated double quote", path, number)
    return line


class _Parser:
    def __init__(self, doc, parent_section=None):
        self.doc = doc
        self.parent_section = parent_section  # set while parsing a template's output
        self.current = doc.sections[Document.GLOBAL]
        self.last_defined = ""

    def feed(self, text, path):
        for number, line in logical_lines(text, path):
            if line.startswith("[") and "]" in line:
                self._header(line, path, number)
            else:
                self._property(line, path, number)
        self._close_template()

    def _header(self, line, path, number):
        self._close_template()
        end = line.index("]")
        name, parents = line[1:end].strip(), line[end + 1 :].split()
        if not name:
            raise N2D2PyError("empty section name", path, number)
        template = ""
        if "@" in name:
            name, template = (s.strip() for s in name.split("@", 1))
            if not name or not template:
                raise N2D2PyError(f"malformed template header [{line[1:end]}]", path, number)
        doc = self.doc
        if name in doc.sections:
            old = doc.sections[name]
            raise N2D2PyError(
                f"section [{name}] already exists (first defined at {old.file}:{old.line})",
                path,
                number,
                name,
            )
        section = RawSection(name, path, number, prev=self.last_defined, template=template)
        for parent in parents:
            if parent not in doc.sections or parent == Document.GLOBAL:
                raise N2D2PyError(
                    f"inherited section [{parent}] does not exist", path, number, name
                )
            inherited = doc.sections[parent].props
            doc.inherited = getattr(doc, "inherited", 0) + len(inherited)
            if doc.inherited > MAX_INHERITED:
                raise N2D2PyError(f"section inheritance copies more than {MAX_INHERITED:,} keys "
                                  "in this file (the limit)", path, number, name)
            for key, prop in inherited.items():
                section.props.setdefault(key, prop)
        if self.parent_section is not None:
            section.props["$PARENT_SECTION_NAME"] = Prop(
                name, "$PARENT_SECTION_NAME", self.parent_section, path, number
            )
            doc.mark_read(name, "$PARENT_SECTION_NAME")
        doc.sections[name] = section
        self.current = section
        if not template:
            self.last_defined = name

    def _property(self, line, path, number):
        name = self.current.name
        if "=" not in line:
            raise N2D2PyError(
                f"missing '=' in \"{line}\" (expected Key=Value)", path, number, name or None
            )
        key, value = line.split("=", 1)
        key, value = key.rstrip(), value.lstrip()
        if not key:
            raise N2D2PyError(f"missing key before '=' in \"{line}\"", path, number, name or None)
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        prop = Prop(name, key, value, path, number)
        old = self.current.props.get(key)
        if old is not None:
            self.doc.warn(
                f'overriding property {key} (previous value was "{old.raw}" at '
                f"{old.file}:{old.line})",
                prop,
            )
        self.current.props[key] = prop
        if key.startswith("$"):
            self.doc.mark_read(name, key)

    def _close_template(self):
        section = self.current
        if not section.template:
            return
        from n2d2py.ini.template import render_section

        self.current = self.doc.sections[Document.GLOBAL]
        self.doc.render_depth = getattr(self.doc, "render_depth", 0) + 1
        try:
            path, text = render_section(self.doc, section)
        finally:
            self.doc.render_depth -= 1
        for key in section.props:
            self.doc.mark_read(section.name, key)
        sub = _Parser(self.doc, parent_section=section.name)
        sub.last_defined = self.last_defined
        depth = getattr(self.doc, "render_depth", 0)
        self.doc.render_depth = depth + 1  # bounded in render_section
        try:
            sub.feed(text, path)
        finally:
            self.doc.render_depth = depth
        self.last_defined = sub.last_defined
