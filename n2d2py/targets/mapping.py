"""LabelsMapping files (spec §5.2): database label → output index, with ``*``, ``default``,
wildcards and −1 (ignore)."""

import re

from n2d2py.errors import N2D2PyError


def _wildcard(name):
    """N2D2 label wildcards (``Utils::match``): ``*`` any run of characters, ``?`` exactly one
    (N2D2's docs say ``+``; its code, which we follow, reads ``?`` and takes ``+`` literally)."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name)
    return re.compile(pattern, re.DOTALL)


def _mapping_lines(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield number, line


def _split_mapping_line(line, path, number):
    if line.startswith('"'):
        end = line.find('"', 1)
        if end < 0:
            raise N2D2PyError("unterminated quoted label name", path, number)
        name, rest = line[1:end], line[end + 1 :].split()
    else:  # a name may hold spaces: the output is the last word
        words = line.split()
        name, rest = " ".join(words[:-1]), words[-1:]
        if not name:
            rest = []
    if len(rest) != 1 or not re.fullmatch(r"[+-]?\d+", rest[0]) or int(rest[0]) < -1:
        message = f'expected "<label name> <output index or -1>", got "{line}"'
        raise N2D2PyError(message, path, number)
    return name, int(rest[0])


def parse_labels_mapping(path, label_names, nb_targets, warn=None):
    """(label id → output, default output or None) from a LabelsMapping file.

    ``*`` alone names the "no label" id −1; other names with ``*``/``?`` are wildcards over
    ``label_names``; an exact label name is taken literally (IMDB-WIKI has labels such as
    ``M-?``) and beats a wildcard line; output −1 means "ignore".
    """
    explicit, wild, default = {}, [], None
    ids = {name: i for i, name in enumerate(label_names)}
    for number, line in _mapping_lines(path):
        name, output = _split_mapping_line(line, path, number)
        if output >= nb_targets:
            raise N2D2PyError(f"output {output} out of range (0 to {nb_targets - 1})", path, number)
        if name == "default":
            if default is not None:
                raise N2D2PyError("a second 'default' mapping", path, number)
            default = output
        elif name == "*":
            if name in ids:
                raise N2D2PyError("ambiguous '*': the database has a label named '*'", path, number)
            _insert(explicit, -1, output, path, number, line)
        elif name in ids:
            _insert(explicit, ids[name], output, path, number, line)
        elif "*" in name or "?" in name:
            wild.append((_wildcard(name), output, number, line))
        elif label_names and warn is not None:
            warn(f"no label named '{name}' in the database (line {number} of {path})")
    mapping = {}
    for regex, output, number, line in wild:
        matched = [label for name, label in ids.items() if regex.fullmatch(name)]
        for label in matched:
            if label not in explicit:
                _insert(mapping, label, output, path, number, line)
        if not matched and label_names and warn is not None:
            warn(f"no label matches '{line.split()[0]}' in the database (line {number} of {path})")
    mapping.update(explicit)
    return mapping, default


def _insert(mapping, label, output, path, number, line):
    if label in mapping:
        raise N2D2PyError(f'a mapping already exists for this label: "{line}"', path, number)
    mapping[label] = output
