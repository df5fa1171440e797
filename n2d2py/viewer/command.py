"""The viewer's command line: ``tools/test.py RUN_DIR`` or ``python -m n2d2py.viewer RUN_DIR``."""

import argparse
import glob
import os
import sys

from n2d2py.viewer.views import pages
from n2d2py.viewer.run_folder import SETS, ViewerError, target_dir, target_folders
from n2d2py.viewer.window import display_problem, save_pages, show_interactive, write_html


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="test.py", description="Show what an n2d2py (or N2D2) run folder holds: curves, "
        "confusion matrix, misclassified stimuli, one stimulus through the layers, find-lr, "
        "segmentation overlays with their boxes (per-pixel targets).")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder (the -o of n2d2py)")
    parser.add_argument("--save", metavar="OUT_DIR", help="write the figures as PNGs there")
    parser.add_argument("--html", metavar="FILE", help="write one self-contained HTML page")
    parser.add_argument("--set", dest="set_name", default="test", choices=list(SETS),
                        help="set of the confusion matrix, gallery and stimulus [test]")
    parser.add_argument("--stimulus", type=int, metavar="K", default=None,
                        help="position in the set of the stimulus to trace "
                        "[the first misclassified]")
    parser.add_argument("--target", default=None, help="target folder [the first found]")
    parser.add_argument("--debug", action="store_true", help="tracebacks instead of one line")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    try:
        return _main(args)
    except ViewerError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _main(args):
    run_dir = args.run_dir
    if not os.path.isdir(run_dir):
        why = "no such folder" if not os.path.exists(run_dir) else "not a folder"
        raise ViewerError(f"{run_dir}: {why} (give the run folder, the -o of n2d2py)")
    if not target_folders(run_dir) and not glob.glob(os.path.join(glob.escape(run_dir),
                                                                   "find_lr_*.dat")):
        raise ViewerError(f"{run_dir}: not a run folder (no target folder with Success_*.dat or "
                          "ConfusionMatrix_*.dat, no find_lr_*.dat)")
    if args.stimulus is not None and args.stimulus < 0:
        raise ViewerError(f"--stimulus {args.stimulus}: a position in the set is 0 or more")
    if args.target is not None:
        target_dir(run_dir, args.target)
    save, page = args.save, args.html
    if not save and not page:
        problem = display_problem()
        if problem:
            save = os.path.join(".", "view")
            print(f"{problem}: writing the figures to {save}/ instead")
    done = pages(run_dir, args.set_name, args.stimulus, args.target, debug=args.debug)
    if not done:
        print("nothing to show")
        return 0
    if save:
        save_pages(done, save)
    if page:
        write_html(done, page, run_dir)
    if not save and not page:
        print(f"{len(done)} figure(s) in a window: n/→ next, p/← previous, q quits "
              f"({', '.join(caption for _, caption, _ in done)})")
        try:
            show_interactive(done)
        except Exception as exc:  # a window that cannot open after all (e.g. a dead X server)
            print(f"no window ({type(exc).__name__}: {exc}): writing the figures to ./view/")
            save_pages(done, os.path.join(".", "view"))
    return 0
