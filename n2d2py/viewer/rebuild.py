"""The run's network rebuilt from ``run.json`` (INI and seed, so the database partition is
the run's) with the weights of ``weights_validation/`` (else ``weights/``)."""

import io
import os

import numpy as np

from n2d2py.viewer.run_folder import SETS, Skip, load_info, target_dir

_REBUILT = {}


class Rebuilt:
    """The run's network with its best weights, and the target whose folder is viewed."""

    def __init__(self, net, target, weights_dir):
        self.net = net
        self.section, self.cell_name, self.target = target
        self.weights_dir = weights_dir

    def names(self):
        return self.target.output_names()

    def read(self, set_name, positions):
        """(x (n, C, H, W), labels, ids) after the set's transformations, as the run saw them
        (the set's cache is used unless the set is large)."""
        db_set = SETS[set_name]
        small = self.net.provider.size(db_set) <= 20000
        return self.net.provider.read(db_set, positions, np.random.default_rng(0), use_cache=small)

    def positions(self, set_name, ids):
        """Positions in the set of database ids (−1 where an id is not in the set)."""
        all_ids = np.asarray(self.net.database.ids(SETS[set_name]))
        ids = np.asarray(ids, dtype=np.int64)
        if not len(all_ids):
            return np.full(len(ids), -1)
        pos = np.clip(np.searchsorted(all_ids, ids), 0, len(all_ids) - 1)  # the ids are sorted
        return np.where(all_ids[pos] == ids, pos, -1)

    def forward(self, x):
        """{layer name: host array} for a host batch."""
        device = self.net.device
        outputs = self.net.forward(device.asarray(x), train=False)
        return {name: device.to_host(y) for name, y in outputs.items()}


def rebuild(run_dir, target=None):
    """The network of ``run.json`` (cached per run folder); Skip with the reason if impossible."""
    paths = [os.path.join(run_dir, d) for d in ("run.json", "weights_validation", "weights")]
    stamps = tuple(os.stat(p).st_mtime_ns for p in paths if os.path.exists(p))
    key = (os.path.abspath(run_dir), target, stamps)  # a run learned further is rebuilt
    if key in _REBUILT:
        return _REBUILT[key]
    info = load_info(run_dir)
    if info is None:
        raise Skip("the run folder has no run.json (an N2D2 run folder?): the network cannot "
                   "be rebuilt")
    from n2d2py import backend, network, weights
    from n2d2py.errors import Diagnostics, N2D2PyError
    from n2d2py.ini import parse_file

    ini = info.get("ini", "")
    if not os.path.isfile(ini):
        raise Skip(f"the INI of run.json is gone: {ini}")
    folder = os.path.basename(target_dir(run_dir, target))
    try:
        here = os.getcwd()
        os.chdir(info.get("cwd") if os.path.isdir(info.get("cwd", "")) else here)
        try:  # relative DataPath= and the like resolve as they did for the run
            doc = parse_file(ini, Diagnostics(stream=io.StringIO()))
            net = network.build(doc, backend.cpu(int(info.get("seed") or 0)))
        finally:
            os.chdir(here)
        found = [t for t in net.targets if t[0] == folder]
        if not found:
            raise Skip(f"the INI has no target [{folder}]")
        net.initialize()
        weights_dir = weights.best_weights_dir(run_dir)
        if weights_dir is None:
            raise Skip("no weights_validation/ or weights/ in the run folder")
        weights.load_weights(net.cells, weights_dir)
    except N2D2PyError as exc:
        raise Skip(f"the network cannot be rebuilt: {exc}") from None
    _REBUILT[key] = Rebuilt(net, found[0], weights_dir)
    return _REBUILT[key]
