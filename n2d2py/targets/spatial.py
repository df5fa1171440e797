"""Targets on spatial (H×W > 1) outputs (spec §5.3–5.6): label maps → per-output-pixel targets,
the class-balanced error, per-pixel estimates and the per-stimulus success.

Label maps and targets live on the host (numpy); only the error is built with the output's
array module, so that CuPy outputs stay on the device.
"""

from dataclasses import dataclass

import numpy as np

from n2d2py.backend import array_module


def block_edges(label_size, out_size):
    """Per output index x, the label range [start, stop) it covers (``Target::provideTargets``):
    start = floor(x·r), stop = max(start + 1, floor((x + 1)·r)), r = label_size / out_size."""
    ratio = label_size / out_size
    x = np.arange(out_size)
    start = np.floor(x * ratio).astype(np.int64)
    stop = np.maximum(start + 1, np.floor((x + 1) * ratio).astype(np.int64))
    return start, np.minimum(stop, label_size)


def pixel_targets(targets, out_hw, nb_targets, weak_target=-2):
    """Per-output-pixel targets (N, H, W) from per-label-pixel targets (N, Hl, Wl), −1 = ignore.

    Same size: unchanged. Otherwise each output pixel takes the most frequent target of its
    block (ties: the smallest value, so −1 wins a tie). ``weak_target`` ≥ −1: when that target
    comes first, the runner-up (if present in the block) is taken instead.
    """
    targets = np.asarray(targets)
    n, hl, wl = targets.shape
    ho, wo = out_hw
    if (hl, wl) == (ho, wo):
        return targets.astype(np.int64, copy=True)
    y0, y1 = block_edges(hl, ho)
    x0, x1 = block_edges(wl, wo)
    counts = np.empty((nb_targets + 1, n, ho, wo), dtype=np.int64)
    for k in range(nb_targets + 1):  # k = target + 1: -1, 0, …, nb_targets - 1
        s = np.zeros((n, hl + 1, wl + 1), dtype=np.int64)
        s[:, 1:, 1:] = (targets == k - 1).cumsum(1).cumsum(2)
        counts[k] = (s[:, y1][:, :, x1] - s[:, y0][:, :, x1]
                     - s[:, y1][:, :, x0] + s[:, y0][:, :, x0])
    first = counts.argmax(axis=0)  # first max: the smallest target on ties
    if weak_target >= -1:
        ranked = np.argsort(-counts, axis=0, kind="stable")
        second = ranked[1]
        second_count = np.take_along_axis(counts, second[None], 0)[0]
        swap = (first == weak_target + 1) & (second_count > 0)
        first = np.where(swap, second, first)
    return first - 1


def broadcast_targets(targets, out_hw):
    """A 1×1 label per stimulus (N,) with a spatial output: every pixel gets it."""
    t = np.asarray(targets, dtype=np.int64).reshape(-1, 1, 1)
    return np.broadcast_to(t, (t.shape[0],) + tuple(out_hw)).copy()


def class_weights(targets, nb_targets):
    """1 / (pixels of that target in the same stimulus) at each pixel, 0 where ignored (§5.5)."""
    n = targets.shape[0]
    flat = targets.reshape(n, -1)
    weights = np.zeros(flat.shape, dtype=np.float32)
    for i in range(n):
        valid = flat[i] >= 0
        counts = np.bincount(flat[i][valid], minlength=nb_targets)
        weights[i, valid] = 1.0 / counts[flat[i][valid]]
    return weights.reshape(targets.shape)


def loss_grad(y, targets, nb_targets, target_value, default_value):
    """(dy, loss) of a spatial output y (N, C, H, W) against targets (N, H, W).

    The value wanted at channel o is ``target_value`` where o is the target (one channel: where
    the target is 1), else ``default_value``; each pixel's error is weighted by 1/n_c of its
    target class c in its stimulus; ignored pixels give none. loss = Σ error² / N.
    """
    xp = array_module(y)
    n, c = y.shape[:2]
    valid = targets >= 0
    if c > 1:
        onehot = targets[:, None] == np.arange(c)[None, :, None, None]
    else:
        onehot = (targets == 1)[:, None]
    wanted = np.where(onehot, target_value, default_value).astype(np.float32)
    weight = class_weights(targets, nb_targets)[:, None] * valid[:, None]
    dy = (y - xp.asarray(wanted)) * xp.asarray(weight.astype(np.float32))
    loss = float(xp.sum(dy * dy)) / n
    return dy.astype(xp.float32, copy=False), loss


def estimate(v, threshold, top_n=1):
    """Per-pixel (estimated (N, TopN, H, W), value (N, TopN, H, W)) of host outputs (N, C, H, W).

    One channel: label = v > threshold, value = v for label 1, 1 − v for label 0. Several: the
    TopN largest channels, first max first."""
    if v.shape[1] == 1:
        est = (v > threshold).astype(np.int64)
        return est, np.where(est == 1, v, 1.0 - v).astype(np.float32)
    if top_n == 1:
        est = v.argmax(axis=1)[:, None]
    else:
        est = np.argsort(-v, axis=1, kind="stable")[:, :top_n]
    return est.astype(np.int64), np.take_along_axis(v, est, axis=1)


def stimulus_success(targets, hits):
    """Mean over the target classes present in one stimulus of (hits / pixels of the class);
    1.0 when no pixel is valid (§5.6). ``targets``, ``hits``: (H, W)."""
    valid = targets >= 0
    if not valid.any():
        return 1.0
    t = targets[valid]
    total = np.bincount(t)
    good = np.bincount(t, weights=hits[valid].astype(np.float64), minlength=len(total))
    present = total > 0
    return float(np.mean(good[present] / total[present]))


@dataclass
class SpatialKeys:
    """The Target keys that only matter on spatial outputs (spec §5.1, §5.7, §5.8)."""

    weak_target: int = -2
    mask_target: str = ""  # section name of the target whose estimates mask this one
    masked_label: int = -1  # the mask target's estimate that lets a pixel through
    masked_label_value: bool = False  # ROI class values × the mask target's estimated value
    no_display_label: int = -1  # shown grey in the overlays
    labels_hue_offset: int = 0
    estimated_labels_value_display: bool = True  # brightness = estimated value
    value_threshold: float = 0.0  # estimates below it are not shown

    @classmethod
    def from_section(cls, sec):
        return cls(
            weak_target=sec.get_int("WeakTarget", -2),
            mask_target=sec.get_str("MaskLabelTarget", ""),
            masked_label=sec.get_int("MaskedLabel", -1),
            masked_label_value=sec.get_bool("MaskedLabelValue", False),
            no_display_label=sec.get_int("NoDisplayLabel", -1),
            labels_hue_offset=sec.get_int("LabelsHueOffset", 0),
            estimated_labels_value_display=sec.get_bool("EstimatedLabelsValueDisplay", True),
            value_threshold=sec.get_float("ValueThreshold", 0.0),
        )
