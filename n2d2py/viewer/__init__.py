"""The run viewer (``tools/test.py RUN_DIR`` or ``python -m n2d2py.viewer RUN_DIR``).

N2D2's ``test.py`` is a dangling symlink at HEAD (spec §8); this one reads a run folder and
shows: the success curves, the confusion matrix of a set, a gallery of its misclassified
stimuli, one stimulus through every layer, and the find-lr curve. The last two need the
network: it is rebuilt from ``run.json`` (INI and seed, so the database partition is the
run's) with the weights of ``weights_validation/`` (else ``weights/``).

The package: ``run_folder`` reads the folder, ``rebuild`` the network, ``figures`` draws from
arrays, ``views`` decides what to show, ``window`` writes or shows it, ``command`` is the CLI.
Figures are written as PNGs (``--save``), one self-contained HTML page (``--html``), or shown
one at a time in a window (n/→ next, p/← previous, q quit; pyplot is used only there).
"""

from n2d2py.viewer.command import main
from n2d2py.viewer.views import (default_stimulus, figure_confusion,
                                 figure_curves, figure_find_lr, figure_misclassified,
                                 figure_stimulus, pages)
from n2d2py.viewer.rebuild import rebuild
from n2d2py.viewer.run_folder import SETS, Skip, ViewerError, load_info, target_dir
from n2d2py.viewer.window import save_pages, show_interactive, write_html

__all__ = ["SETS", "Skip", "ViewerError", "default_stimulus", "figure_confusion",
           "figure_curves", "figure_find_lr", "figure_misclassified", "figure_stimulus",
           "load_info", "main", "pages", "rebuild", "save_pages", "show_interactive",
           "target_dir", "write_html"]
