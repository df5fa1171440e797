"""Channel map generator (spec §1.11): grouped, explicit, canvas, full; errors and warnings."""

import numpy as np
import pytest
from harness import LENET_TABLE, make_section

from n2d2py.cells.base import Port
from n2d2py.cells.mapping import build_mapping, canvas_mask, grouped_mask
from n2d2py.errors import N2D2PyError


def mapping(body, ports, nb_outputs, strict=False):
    sec = make_section(f"[layer]\n{body}\n", "layer", strict=strict)
    return build_mapping(sec, [Port(n, s) for n, s in ports], nb_outputs), sec


def test_full_by_default():
    (mask,), _ = mapping("", [("sp", (3, 8, 8))], 4)
    assert mask.shape == (4, 3) and mask.all()


def test_lenet_table_from_the_tutorial():
    (mask,), _ = mapping(f"Mapping(pool1)={LENET_TABLE}", [("pool1", (6, 14, 14))], 16)
    assert mask.shape == (16, 6) and mask.sum() == 60
    # Column n of the table lists the inputs of output n.
    np.testing.assert_array_equal(np.flatnonzero(mask[0]), [0, 1, 2])
    np.testing.assert_array_equal(np.flatnonzero(mask[6]), [0, 1, 2, 3])
    assert mask[15].all()


@pytest.mark.parametrize("spelling", ["env", "sp"])
def test_explicit_map_on_the_provider_accepts_env_and_sp(spelling):
    (mask,), _ = mapping(f"Mapping({spelling})=1 0\n", [("sp", (1, 4, 4))], 2)
    np.testing.assert_array_equal(mask, [[True], [False]])


def test_explicit_size_error_names_the_counts():
    with pytest.raises(N2D2PyError, match=r"Mapping\(pool1\): expected 6×4 = 24 entries .* got 6") as info:
        mapping("Mapping(pool1)=1 0 1 \\\n0 1 1", [("pool1", (6, 4, 4))], 4)
    assert info.value.line == 2
    with pytest.raises(N2D2PyError, match="0 or 1"):
        mapping("Mapping(a)=1 2", [("a", (1, 4, 4))], 2)


def test_canvas_size_one_is_one_to_one():
    (mask,), _ = mapping("Mapping.Size=1", [("c", (5, 4, 4))], 5)
    np.testing.assert_array_equal(mask, np.eye(5, dtype=bool))


def test_canvas_keys_and_per_input_override():
    body = "Mapping.SizeY=2\nMapping.Stride=2\nMapping(b).Size=1\nMapping(b).OffsetX=1"
    (a, b), _ = mapping(body, [("a", (4, 4, 4)), ("b", (3, 4, 4))], 4)
    np.testing.assert_array_equal(a, canvas_mask(4, 4, size=(1, 2), stride=(2, 2)))
    np.testing.assert_array_equal(b, canvas_mask(3, 4, size=(1, 1), stride=(2, 2), offset=(1, 0)))
    # Patch of 1 output × 2 channels moved by 2 along both: outputs 0, 2 read channels {0,1}, {2,3}.
    np.testing.assert_array_equal(np.flatnonzero(a[0]), [0, 1])
    np.testing.assert_array_equal(np.flatnonzero(a[2]), [2, 3])
    assert not a[1].any()


def test_canvas_size_zero_is_all_and_iterations():
    np.testing.assert_array_equal(canvas_mask(3, 2, size=(0, 0)), np.ones((2, 3), bool))
    assert canvas_mask(4, 4, iterations=2).sum() == 2


def test_grouped_and_depthwise():
    (mask,), _ = mapping("Mapping.NbGroups=2", [("c", (4, 4, 4))], 6)
    np.testing.assert_array_equal(mask, grouped_mask(2, 4, 6))
    np.testing.assert_array_equal(mask[:3], [[1, 1, 0, 0]] * 3)
    np.testing.assert_array_equal(mask[3:], [[0, 0, 1, 1]] * 3)
    (mask,), _ = mapping("Mapping.ChannelsPerGroup=1", [("c", (3, 4, 4))], 3)
    np.testing.assert_array_equal(mask, np.eye(3, dtype=bool))
    # Uneven output split: chunks of (remaining outputs) / (remaining groups).
    assert grouped_mask(2, 2, 5).sum(axis=0).tolist() == [2, 3]


@pytest.mark.parametrize(
    "body, message",
    [
        ("Mapping.NbGroups=2\nMapping.ChannelsPerGroup=2", "exclude each other"),
        ("Mapping.NbGroups=4", "cannot be split in 4 groups"),
        ("Mapping.ChannelsPerGroup=4", "not a multiple of 4"),
        ("Mapping.NbGroups=0", "at least 1"),
    ],
)
def test_grouped_errors(body, message):
    with pytest.raises(N2D2PyError, match=message):
        mapping(body, [("c", (6, 4, 4))], 6)


def test_warns_on_an_output_without_input():
    _, sec = mapping("Mapping(a)=1 0", [("a", (1, 4, 4))], 2)
    assert any("output map 1 has no input connection" in m for m in sec.doc.diagnostics.messages)
