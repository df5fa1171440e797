"""The ``.ini.tpl`` template engine (spec §1.6): ``{{VAR}}``, block, for, if/else, include, set.

A header ``[name@path.ini.tpl]`` makes the keys written under it the template's parameters
(fully resolved), plus ``SECTION_NAME`` and ``SECTION_FILE_NAME``; the rendered text is parsed
as INI in place. Small enough to write here rather than bend Jinja2 to N2D2's block syntax.
"""

import os
import re

from n2d2py.errors import N2D2PyError
from n2d2py.ini.resolve import expand_environment, resolve

_TOKEN = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
MAX_INCLUDE_DEPTH = 16  # {% include %} and templates whose output uses templates
MAX_ITERATIONS = 100_000  # for and block iterations of one rendering, in all
MAX_OUTPUT_CHARS = 16 << 20


def render_section(doc, section):
    """Render the template of a ``[name@file]`` section: returns (path, text)."""
    header = section.template
    path = expand_environment(header, doc)
    if not os.path.isabs(path):
        path = os.path.join(doc.dir, path)
    if not os.path.isfile(path):
        raise N2D2PyError(
            f"template file not found: {path} (from '{header}')",
            section.file,
            section.line,
            section.name,
        )
    from n2d2py.ini.parse import read_text

    if getattr(doc, "render_depth", 0) > MAX_INCLUDE_DEPTH:  # counted by the parser
        raise N2D2PyError(f"templates render templates more than {MAX_INCLUDE_DEPTH} deep (a "
                          "template that uses itself?)", section.file, section.line, section.name)
    params = {key: resolve(doc, section.name, prop) for key, prop in section.props.items()}
    params["SECTION_NAME"] = section.name
    params["SECTION_FILE_NAME"] = path
    try:
        return path, render(read_text(path, "template file"), params, path)
    except N2D2PyError as exc:
        exc.message += f" (rendering [{section.name}] at {section.file}:{section.line})"
        raise


def render(text, params, path="<template>"):
    """Render template ``text`` with string parameters ``params`` (a dict, updated by set)."""
    nodes, rest = _parse(_tokens(text), path, closing=())
    if rest:
        kind, arg, line = rest[0]
        raise N2D2PyError(f"unexpected {{% {arg} %}}", path, line)
    out = []
    _Renderer(dict(params), path, {"iterations": 0, "chars": 0}).run(nodes, out, prefixes=[])
    return "".join(out)


def _tokens(text):
    """(kind, content, line): kind is 'text', 'var' or 'tag'."""
    pos, out = 0, []
    for m in _TOKEN.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.start() > pos:
            out.append(("text", text[pos : m.start()], line))
        if m.group(1) is not None:
            out.append(("var", m.group(1).strip(), line))
        else:
            out.append(("tag", m.group(2).strip(), line))
        pos = m.end()
    out.append(("text", text[pos:], text.count("\n", 0, pos) + 1))
    return out


def _parse(tokens, path, closing):
    """Tokens → nested nodes; stops at a tag whose first word is in ``closing``."""
    nodes = []
    while tokens:
        kind, arg, line = tokens[0]
        if kind != "tag":
            nodes.append(tokens.pop(0))
            continue
        word = arg.split()[0] if arg else ""
        if word in closing:
            return nodes, tokens
        tokens.pop(0)
        end = {"block": "endblock", "for": "endfor", "if": "endif", "set": "endset"}.get(word)
        if word == "include":
            nodes.append(("include", arg[len("include") :].strip(), line))
        elif word in ("endblock", "endfor", "endif", "endset", "else"):
            raise N2D2PyError(f"unexpected {{% {arg} %}} (nothing open to close)", path, line)
        elif end is None:
            raise N2D2PyError(f"unknown template tag {{% {arg} %}}", path, line)
        else:
            body, tokens = _parse(tokens, path, closing=(end, "else"))
            orelse = []
            if tokens and tokens[0][1].split()[0] == "else":
                if word != "if":
                    raise N2D2PyError("{% else %} outside {% if %}", path, tokens[0][2])
                tokens.pop(0)
                orelse, tokens = _parse(tokens, path, closing=(end,))
            if not tokens:
                raise N2D2PyError(f"{{% {word} %}} without {{% {end} %}}", path, line)
            tokens.pop(0)
            nodes.append((word, arg, line, body, orelse))
    return nodes, tokens


class _Renderer:
    def __init__(self, params, path, budget, depth=0):
        self.params = params
        self.path = path
        self.budget = budget  # shared by the includes of one rendering
        self.depth = depth

    def emit(self, text, line, out):
        self.budget["chars"] += len(text)
        if self.budget["chars"] > MAX_OUTPUT_CHARS:
            raise N2D2PyError(f"the template renders more than {MAX_OUTPUT_CHARS:,} characters",
                              self.path, line)
        out.append(text)

    def iterations(self, count, line):
        self.budget["iterations"] += max(count, 0)
        if self.budget["iterations"] > MAX_ITERATIONS:
            raise N2D2PyError(f"the template loops more than {MAX_ITERATIONS:,} times (the "
                              "limit)", self.path, line)

    def value(self, name, line, prefixes):
        if name == "#" and prefixes:
            return str(prefixes[-1][1])
        key = self.key(name, prefixes)
        if key not in self.params:
            raise N2D2PyError(f"undefined template variable: {name}", self.path, line)
        return self.params[key]

    def key(self, name, prefixes):
        if name.startswith(".") and prefixes:
            array, index = prefixes[-1]
            return f"{array}[{index}]{name}"
        return name

    def run(self, nodes, out, prefixes):
        for node in nodes:
            kind, line = node[0], node[2]
            if kind == "text":
                self.emit(node[1], line, out)
            elif kind == "var":
                self.emit(self.value(node[1], line, prefixes), line, out)
            elif kind == "include":
                self.include(node[1], line, out, prefixes)
            else:
                getattr(self, "do_" + kind)(node[1], line, node[3], node[4], out, prefixes)

    def do_block(self, arg, line, body, orelse, out, prefixes):
        parts = arg.split()
        if len(parts) != 2:
            raise N2D2PyError(f"expected {{% block NAME %}}, got {{% {arg} %}}", self.path, line)
        count = self._int(self.value(parts[1], line, prefixes), line)
        self.iterations(count, line)
        for i in range(count):
            self.run(body, out, prefixes + [(self.key(parts[1], prefixes), i)])

    def do_for(self, arg, line, body, orelse, out, prefixes):
        m = re.fullmatch(r"for\s+(\w+)\s+in\s+range\(([^,)]*)(?:,([^)]*))?\)", arg)
        if not m:
            raise N2D2PyError(f"expected {{% for V in range(a, b) %}}, got {{% {arg} %}}", self.path, line)
        bounds = [self._bound(b.strip(), line, prefixes) for b in m.groups()[1:] if b is not None]
        start, stop = (0, bounds[0]) if len(bounds) == 1 else bounds
        self.iterations(stop - start, line)
        for i in range(start, stop):
            self.params[m.group(1)] = str(i)
            self.run(body, out, prefixes)

    def do_if(self, arg, line, body, orelse, out, prefixes):
        parts = arg.split(None, 3)
        if len(parts) < 3:
            raise N2D2PyError(f"expected {{% if V OP [VALUE] %}}, got {{% {arg} %}}", self.path, line)
        name, op = parts[1], parts[2]
        key = self.key(name, prefixes)
        if op == "exists":
            test = key in self.params
        elif op == "not_exists":
            test = key not in self.params
        elif op in ("==", "!=") and len(parts) == 4:
            left = self.value(name, line, prefixes)
            right = parts[3].strip()
            right = self.params.get(self.key(right, prefixes), right)
            test = (left.strip() == right.strip()) == (op == "==")
        else:
            raise N2D2PyError(f"unknown condition in {{% {arg} %}}", self.path, line)
        self.run(body if test else orelse, out, prefixes)

    def do_set(self, arg, line, body, orelse, out, prefixes):
        parts = arg.split()
        if len(parts) != 2:
            raise N2D2PyError(f"expected {{% set NAME %}}, got {{% {arg} %}}", self.path, line)
        inner = []
        self.run(body, inner, prefixes)
        self.params[self.key(parts[1], prefixes)] = "".join(inner).strip()
        self.budget["chars"] -= sum(map(len, inner))  # counted again where it is used

    def include(self, name, line, out, prefixes):
        name = name.strip("\"'")
        candidates = [name, os.path.join(os.path.dirname(self.path), name)]
        path = next((p for p in candidates if os.path.isfile(p)), None)
        if path is None:
            raise N2D2PyError(f"included template not found: {name}", self.path, line)
        if self.depth >= MAX_INCLUDE_DEPTH:
            raise N2D2PyError(f"includes nested more than {MAX_INCLUDE_DEPTH} deep (a template "
                              "that includes itself?)", self.path, line)
        from n2d2py.ini.parse import read_text

        nodes, _ = _parse(_tokens(read_text(path, "template file")), path, closing=())
        _Renderer(self.params, path, self.budget, self.depth + 1).run(nodes, out, prefixes)

    def _bound(self, text, line, prefixes):
        if re.fullmatch(r"[+-]?\d{1,18}", text):
            return int(text)
        return self._int(self.value(text, line, prefixes), line)

    def _int(self, text, line):
        try:
            return int(float(text))
        except (ValueError, OverflowError):
            raise N2D2PyError(f"expected an integer count, got '{text[:40]}'", self.path,
                              line) from None
