"""Labels of composite stimuli (``CompositeStimuli=1``) on their way through the provider.

Before the transformations every stimulus gets its database label data (a label map of its
frame, or 1x1 for a stimulus that is not composite) and its ROI list; the transformations
move both with the image (``pipeline.run_labelled``); at the end each map must be
SizeY x SizeX (spec addendum §4.3) and the batch becomes a ``LabelMaps``.
"""

import numpy as np

from n2d2py.data.dir_database import stack_or_list
from n2d2py.data.rois import LabelMaps


def initial(db, set_name, positions, imgs):
    """(label maps, ROI lists) of ``positions`` of a set whose images are ``imgs``."""
    ids = db.ids(set_name, positions)
    maps = [db.label_data(int(i), *img.shape[:2]) for i, img in zip(ids, imgs)]
    return stack_or_list(maps), [db.stimulus_rois(int(i)) for i in ids]


def compact(maps):
    """Label maps in the smallest signed type that holds them (int8/int16), for the cache."""
    if isinstance(maps, list):
        return [compact(m) for m in maps]
    if maps.size == 0:
        return maps
    lo, hi = int(maps.min()), int(maps.max())
    for dtype in (np.int8, np.int16):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return maps.astype(dtype)
    return maps


def take(stack, positions):
    """Items ``positions`` of a stack or list."""
    if isinstance(stack, list):
        return stack_or_list([stack[int(i)] for i in positions])
    return stack[positions]


def empty(shape):
    _, h, w = shape
    return LabelMaps(np.zeros((0, h, w), np.int32), [])


def finish(maps, rois, shape, ids, db, error):
    """LabelMaps of a batch, after checking every map is SizeY x SizeX; ``error(message)``
    builds the user error naming the first stimulus whose map is not."""
    _, h, w = shape
    for i, m in enumerate(maps):
        if m.shape != (h, w):
            raise error(
                f"expected labels size is {w}x{h} (SizeX x SizeY), but size after "
                f"transformations is {m.shape[1]}x{m.shape[0]} for stimulus: "
                f"{db.stimulus_name(int(ids[i]))}"
                + (" (a stimulus that is not composite has a single label: CompositeStimuli"
                   "=1 needs ROIs or CompositeLabel=Default|Disjoint|Combine in "
                   "[database])" if m.size == 1 else "")
            )
    return LabelMaps(np.asarray(maps, np.int32), [list(r) for r in rois])
