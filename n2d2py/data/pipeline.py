"""Running the stimuli pipeline: steps in order, channel stacking, stimuli of different sizes.

A step runs on a stack (N, H, W[, C]) of equally sized stimuli, or on a list of stimuli of
different sizes (one at a time; stacked again as soon as the sizes agree).
"""

import numpy as np

from n2d2py.data.dir_database import stack_or_list


def run_steps(imgs, steps, rng):
    """Run ``steps`` (in order, all stages) on a stack of stimuli."""
    i = 0
    while i < len(steps):
        step = steps[i]
        if step.stage != "channel":
            imgs = step.run(imgs, rng)
            i += 1
            continue
        j = i
        while j < len(steps) and steps[j].stage == "channel":
            j += 1
        imgs = _channels(imgs, steps[i:j], rng)
        i = j
    return imgs


def run_labelled(imgs, maps, rois, steps, rng):
    """``run_steps`` for composite stimuli: label maps and ROI lists ride along.

    ``imgs`` and ``maps`` are stacks or lists of the same length, ``rois`` a list of ROI
    lists. The channel stages move the labels with the first channel's steps (N2D2 keeps
    one label map per input channel; a segmentation provider has a single one).
    """
    i = 0
    while i < len(steps):
        j = i + 1
        if steps[i].stage == "channel":
            while j < len(steps) and steps[j].stage == "channel":
                j += 1
            imgs, (maps, rois) = _channels(imgs, steps[i:j], rng, (maps, rois))
        else:
            imgs, maps, rois = steps[i].run_labelled(imgs, maps, rois, rng)
        i = j
    return imgs, maps, rois


def _concat(chunks):
    """Chunks of stimuli (arrays, or lists when sizes differ) as one array or list."""
    if not chunks:
        return np.zeros((0,))
    if all(isinstance(c, np.ndarray) for c in chunks) and len(
            {(c.shape[1:], c.dtype) for c in chunks}) == 1:
        return np.concatenate(chunks)
    return stack_or_list([img for chunk in chunks for img in chunk])


def _channels(imgs, steps, rng, labelled=None):
    """Stack the channels built by consecutive channel steps (grouped by ``Channel``).

    With ``labelled`` = (maps, rois), the first channel's steps also move them; returns
    (stack, (maps, rois)) then.
    """
    outs = []
    for channel in sorted({s.channel for s in steps}):
        out = imgs
        for step in (s for s in steps if s.channel == channel):
            if labelled is not None and not outs:
                out, *labelled = step.run_labelled(out, *labelled, rng)
            else:
                out = step.run(out, rng)
        if isinstance(out, list):
            raise steps[0].error("input channels of different sizes cannot be stacked")
        if out.ndim == 4 and out.shape[3] == 1:
            out = out[..., 0]
        if out.ndim != 3:
            raise steps[0].error(
                f"input channel {channel} has {out.shape[3]} channels after its "
                "transformations, expected a single one"
            )
        outs.append(out)
    dtype = np.result_type(*outs)
    stack = np.stack([o.astype(dtype, copy=False) for o in outs], axis=3)
    return stack if labelled is None else (stack, tuple(labelled))
