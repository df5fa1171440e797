"""Channel maps: which input channel feeds which output map (spec §1.11).

For each input of a Conv/Pool cell, a host boolean matrix (nb_outputs, nb_channels). The
decision order follows N2D2: grouped (``Mapping.NbGroups``/``Mapping.ChannelsPerGroup``),
then an explicit 0/1 matrix ``Mapping(P)=``, then the "canvas" pattern when any
``Mapping.*``/``Mapping(P).*`` key exists, else fully connected.
"""

import numpy as np

# Every alias of the input provider: a map on the input may be written Mapping(env) (N2D2's
# spelling) or with the provider section's own name.
PROVIDER_NAMES = ("env", "sp", "cenv")

_CANVAS_ATTRS = ("Size", "Stride", "Offset")
_CANVAS_DEFAULTS = {"Size": 1, "Stride": 1, "Offset": 0}


def build_mapping(sec, inputs, nb_outputs):
    """One bool array (nb_outputs, C_p) per input Port, read from the layer section ``sec``."""
    groups = read_groups(sec)
    masks = []
    for port in inputs:
        channels = port.shape[0]
        if groups is not None:
            masks.append(_grouped(sec, groups, channels, nb_outputs))
            continue
        key = _explicit_key(sec, port.name)
        if key is not None:
            masks.append(_explicit(sec, key, channels, nb_outputs))
        elif _has_canvas_keys(sec, port.name):
            masks.append(_canvas(sec, port.name, channels, nb_outputs))
        else:
            masks.append(np.ones((nb_outputs, channels), dtype=bool))
    connected = np.zeros(nb_outputs, dtype=bool)
    for mask in masks:
        connected |= mask.any(axis=1)
    for o in np.flatnonzero(~connected):
        sec.doc.warn(f"output map {o} has no input connection (check Mapping*)", section=sec.name)
    return masks


def read_groups(sec):
    """("NbGroups", G) or ("ChannelsPerGroup", C) when the mapping is grouped, else None."""
    has_groups, has_cpg = sec.has("Mapping.NbGroups"), sec.has("Mapping.ChannelsPerGroup")
    if has_groups and has_cpg:
        message = "Mapping.NbGroups and Mapping.ChannelsPerGroup exclude each other"
        raise sec.error("Mapping.ChannelsPerGroup", message)
    for key, present in (("NbGroups", has_groups), ("ChannelsPerGroup", has_cpg)):
        if present:
            value = sec.get_uint("Mapping." + key)
            if value < 1:
                raise sec.error("Mapping." + key, f"must be at least 1, got {value}")
            return key, value
    return None


def nb_groups(groups, channels):
    """G for a ``read_groups`` result on an input of ``channels`` channels (1 if not grouped)."""
    if groups is None:
        return 1
    key, value = groups
    return value if key == "NbGroups" else max(channels // value, 1)


def grouped_mask(groups, channels, nb_outputs):
    """Grouped connections: G chunks of outputs, chunk g reading channels [g·C/G, (g+1)·C/G)."""
    per_group = channels // groups
    mask = np.zeros((nb_outputs, channels), dtype=bool)
    start = 0
    for g in range(groups):
        size = (nb_outputs - start) // (groups - g)
        mask[start : start + size, g * per_group : (g + 1) * per_group] = True
        start += size
    return mask


def even_groups(mask):
    """G > 1 when the (O, C) ``mask`` is ``grouped_mask(G, C, O)`` with O and C multiples of
    G (the layout a grouped convolution computes block by block), else 1."""
    o, c = mask.shape
    for g in range(2, min(o, c) + 1):
        if o % g == 0 and c % g == 0 and mask.sum() == o * (c // g):
            return g if (mask == grouped_mask(g, c, o)).all() else 1
    return 1


def canvas_mask(channels, nb_outputs, size=(1, 1), stride=(1, 1), offset=(0, 0), iterations=0):
    """N2D2's canvas: patch (x = outputs, y = channels) moved by ``stride`` at each iteration."""
    size_x = size[0] or nb_outputs
    size_y = size[1] or channels
    iterations = iterations or max(nb_outputs, channels)
    mask = np.zeros((nb_outputs, channels), dtype=bool)
    for i in range(iterations):
        outs = (offset[0] + i * stride[0] + np.arange(size_x)) % nb_outputs
        chans = (offset[1] + i * stride[1] + np.arange(size_y)) % channels
        mask[np.ix_(outs, chans)] = True
    return mask


def _grouped(sec, groups, channels, nb_outputs):
    key, value = groups
    if key == "ChannelsPerGroup" and channels % value:
        raise sec.error(
            "Mapping.ChannelsPerGroup",
            f"{channels} input channels are not a multiple of {value} channels per group",
        )
    g = nb_groups(groups, channels)
    if channels % g:
        message = f"{channels} input channels cannot be split in {g} groups"
        raise sec.error("Mapping.NbGroups", message)
    if g > nb_outputs:
        raise sec.error("Mapping." + key, f"{g} groups for only {nb_outputs} outputs")
    return grouped_mask(g, channels, nb_outputs)


def _aliases(name):
    """``name``, and for the provider its other spellings too."""
    if name not in PROVIDER_NAMES:
        return (name,)
    return (name,) + tuple(n for n in PROVIDER_NAMES if n != name)


def _explicit_key(sec, name):
    for alias in _aliases(name):
        if sec.has(f"Mapping({alias})"):
            return f"Mapping({alias})"
    return None


def _explicit(sec, key, channels, nb_outputs):
    values = sec.get_ints(key)
    expected = channels * nb_outputs
    if len(values) != expected:
        raise sec.error(
            key,
            f"expected {channels}×{nb_outputs} = {expected} entries (one row per input channel, "
            f"one column per output), got {len(values)}",
        )
    if any(v not in (0, 1) for v in values):
        raise sec.error(key, "entries must be 0 or 1")
    return np.array(values, dtype=bool).reshape(channels, nb_outputs).T.copy()


def _has_canvas_keys(sec, name):
    prefixes = ("Mapping.",) + tuple(f"Mapping({a})." for a in _aliases(name))
    return any(key.startswith(prefixes) for key in sec.keys())


def _canvas(sec, name, channels, nb_outputs):
    prefixes = [f"Mapping({a})." for a in _aliases(name)]
    values = {}
    for attr in _CANVAS_ATTRS:
        # Mapping.X, then Mapping.XX/XY; then the same under Mapping(P). overriding them.
        x = y = _CANVAS_DEFAULTS[attr]
        for prefix in ["Mapping."] + prefixes[::-1]:
            both = sec.get_uint(prefix + attr, None)
            x = sec.get_uint(prefix + attr + "X", both if both is not None else x)
            y = sec.get_uint(prefix + attr + "Y", both if both is not None else y)
        values[attr] = (x, y)
    iterations = sec.get_uint("Mapping.NbIterations", 0)
    for prefix in prefixes[::-1]:
        iterations = sec.get_uint(prefix + "NbIterations", iterations)
    return canvas_mask(
        channels, nb_outputs, values["Size"], values["Stride"], values["Offset"], iterations
    )
