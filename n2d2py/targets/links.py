"""Targets that read other targets (``MaskLabelTarget``, ``ROIsLabelTarget``, spec §5.1):
resolved once every target exists, and ordered so that a target is processed after those it
reads (N2D2 relies on the file order; here the order is made right whatever the file says)."""

from n2d2py.errors import N2D2PyError


def link_targets(found):
    """Link the targets of ``found`` [(section, cell, target)]; returns it reordered."""
    by_name = {section: target for section, _, target in found}
    deps = {}
    for section, _, target in found:
        deps[section] = []
        for key, name in target.links():
            where = target.link_where.get(key)
            if name not in by_name or name == section:
                known = ", ".join(s for s in by_name if s != section) or "none"
                raise N2D2PyError(f"no other target section named '{name}' (targets: {known})",
                                  *(where or (None, None, section, key)))
            target.link(key, by_name[name])
            deps[section].append(name)
    ordered, state = [], {}
    entries = {section: entry for entry in found for section in [entry[0]]}

    def visit(section, chain):
        if state.get(section) == "done":
            return
        if state.get(section) == "visiting":
            raise N2D2PyError("targets read each other in a loop: " + " -> ".join(chain + [section]))
        state[section] = "visiting"
        for name in deps[section]:
            visit(name, chain + [section])
        state[section] = "done"
        ordered.append(entries[section])

    for section, _, _ in found:
        visit(section, [])
    return ordered
