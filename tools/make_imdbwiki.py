#!/usr/bin/env python3
"""Write a face data set in the exact IMDB-WIKI layout from MNIST digits (IMDB-WIKI itself is
not reachable here).

    python tools/make_imdbwiki.py OUT [--frames 500] [--width 160] [--height 120] [--seed 0]
        [--max-faces 1] [--sizes 0.25 0.6] [--source train|test] [--part wiki|imdb]
        [--crop] [--force]

OUT becomes an IMDB-WIKI folder (``DataPath``): ``OUT/<part>/NN/<id>_<dob>_<year>.jpg``
frames (colour JPEGs), ``OUT/imdb_metadata/<part>.csv`` (``LabelPath``) with N2D2's columns
``full_path;name;x0;y0;x1;y1;dob;photo_taken;gender`` (x1, y1 exclusive) and, with
``--crop``, ``OUT/<part>_crop/`` holding each frame's first face cropped.

Each frame is a noisy, smoothly shaded background with 0 to ``--max-faces`` MNIST digits
pasted at random places without overlap, each a square whose side is a random fraction
(``--sizes``) of the frame's smaller side. A digit is a "face": its ROI is the
tight box of its ink; even digits are men (gender 1), odd ones women (gender 0); the age
is 20 + 5 x digit. A frame with several digits has one metadata line per digit (N2D2 makes
one stimulus of each line, with that digit as its only ROI); a frame without digit has one
line at (1, 1) as IMDB-WIKI marks "no face found" (N2D2 skips it as a corrupted frame).
Since each line is its own stimulus, the other digits of its frame are background in that
stimulus' label map: a frame with several digits teaches "digit" and "background" for the
same pixels. Real IMDB-WIKI has one line per image, and most images hold one face; the
default ``--max-faces 1`` is closest to it (measured on IMDBWIKI.ini at 160x120, 2400
stimuli, unseen digits: box precision 89 %, recall 58 % with 1; 52 % and 14 % with 3).
The same seed writes the same bytes; ``--source test`` draws digits from MNIST's test
images, which a network learnt on a ``--source train`` set has never seen.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from n2d2py.data.databases import dataset_dir, find_file, read_idx  # noqa: E402
from n2d2py.errors import N2D2PyError  # noqa: E402

SOURCES = {"train": "train", "test": "t10k"}


def load_digits(source, mnist_dir=None):
    """(images uint8 (n, 28, 28), labels (n,)) of MNIST's ``source`` split."""
    folder = Path(mnist_dir) if mnist_dir else dataset_dir("mnist")
    prefix = SOURCES[source]
    paths = [find_file(folder, f"{prefix}-{kind}-idx{nd}-ubyte")
             for kind, nd in (("images", 3), ("labels", 1))]
    if None in paths:
        raise N2D2PyError(f"MNIST {source} files not found in {folder} (use --mnist DIR)")
    return read_idx(paths[0], 3), read_idx(paths[1], 1)


def background(rng, height, width):
    """A BGR frame: a smooth colour gradient plus blurred and fine noise."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    frame = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b, base = rng.uniform(-60, 60), rng.uniform(-60, 60), rng.uniform(40, 150)
        frame[:, :, c] = base + a * xx + b * yy
    blobs = cv2.GaussianBlur(rng.normal(0, 40, (height, width)).astype(np.float32), (0, 0), 6)
    frame += blobs[:, :, None] + rng.normal(0, 8, (height, width, 3))
    return frame


def paste(frame, digit, x, y, size, rng):
    """Paste a digit scaled to ``size``; returns its ink box (x0, y0, x1, y1), exclusive."""
    glyph = cv2.resize(digit, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = glyph / 255.0
    region = frame[y : y + size, x : x + size]
    # a random colour whose gray level (the networks see gray) contrasts with the region's
    gray = np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights of OpenCV's gray
    target = rng.uniform(190, 250) if float(region.mean(axis=(0, 1)) @ gray) < 128 \
        else rng.uniform(5, 65)
    colour = rng.uniform(0, 255, 3)
    colour = np.clip(colour + (target - colour @ gray), 0, 255)
    region[:] = region * (1 - alpha[:, :, None]) + colour * alpha[:, :, None]
    rows, cols = np.nonzero(glyph > 64)
    return x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1


def place(rng, boxes, width, height, size):
    """A free (x, y) for a size x size square, or None after 50 tries."""
    for _ in range(50):
        x, y = int(rng.integers(0, width - size + 1)), int(rng.integers(0, height - size + 1))
        if all(x + size <= a or a + s <= x or y + size <= b or b + s <= y
               for a, b, s in boxes):
            return x, y
    return None


def make_frame(rng, digits, labels, width, height, max_faces, sizes=(0.25, 0.6)):
    """(BGR uint8 frame, faces [(digit, (x0, y0, x1, y1))]); a digit's square side is a
    fraction ``sizes`` of the frame's smaller side (IMDB-WIKI faces are large)."""
    frame = background(rng, height, width)
    faces, squares = [], []
    side = min(width, height)
    lo = max(14, int(sizes[0] * side))
    hi = max(lo, min(side, int(sizes[1] * side)))
    for _ in range(int(rng.integers(0, max_faces + 1))):
        size = int(rng.integers(lo, hi + 1))
        spot = place(rng, squares, width, height, size)
        if spot is None:
            continue
        k = int(rng.integers(len(digits)))
        faces.append((int(labels[k]), paste(frame, digits[k], *spot, size, rng)))
        squares.append((*spot, size))
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8), faces


def write_jpeg(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise N2D2PyError("cannot encode JPEG", str(path))
    path.write_bytes(data.tobytes())


def generate(out, frames=500, width=160, height=120, seed=0, max_faces=1, source="train",
             part="wiki", crop=False, mnist_dir=None, progress=True, sizes=(0.25, 0.6)):
    """Write the set into ``out`` (a new folder, made atomically); returns its summary."""
    if min(width, height) < 30:
        raise N2D2PyError(f"canvas {width}x{height} is too small (30x30 at least)")
    digits, labels = load_digits(source, mnist_dir)
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        lines, nb_faces = _write_frames(tmp, rng, digits, labels, frames, width, height,
                                        max_faces, part, crop, progress, sizes)
        meta = tmp / "imdb_metadata" / f"{part}.csv"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text("\n".join(lines) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"frames": frames, "faces": nb_faces, "lines": len(lines), "path": str(out)}


def _write_frames(root, rng, digits, labels, frames, width, height, max_faces, part, crop,
                  progress, sizes):
    from tqdm import tqdm

    lines, nb_faces = [], 0
    for i in tqdm(range(frames), desc="frames", unit="frame", disable=not progress):
        frame, faces = make_frame(rng, digits, labels, width, height, max_faces, sizes)
        dob = int(rng.integers(1930, 1990))
        full_path = f"{i % 100:02d}/{1000000 + i}_{dob}-01-01_{dob + 60}.jpg"
        write_jpeg(root / part / full_path, frame)
        if crop and faces:
            x0, y0, x1, y1 = faces[0][1]
            write_jpeg(root / f"{part}_crop" / full_path, frame[y0:y1, x0:x1])
        if not faces:  # IMDB-WIKI's "no face found": the whole image, from (1, 1)
            lines.append(f"{full_path};nobody {i};1;1;{width};{height};{dob};{dob + 30};1")
        for digit, (x0, y0, x1, y1) in faces:
            age = 20 + 5 * digit
            gender = 1 if digit % 2 == 0 else 0
            lines.append(f"{full_path};digit {digit} of frame {i};{x0};{y0};{x1};{y1};{dob};"
                         f"{dob + age};{gender}")
        nb_faces += len(faces)
    return lines, nb_faces


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to write (the IMDB-WIKI DataPath)")
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-faces", type=int, default=1,
                        help="digits per frame: 0 to this many (one metadata line each)")
    parser.add_argument("--sizes", type=float, nargs=2, default=(0.25, 0.6),
                        metavar=("MIN", "MAX"),
                        help="digit side as fractions of the frame's smaller side")
    parser.add_argument("--source", choices=tuple(SOURCES), default="train")
    parser.add_argument("--part", choices=("wiki", "imdb"), default="wiki")
    parser.add_argument("--crop", action="store_true", help="also write <part>_crop/")
    parser.add_argument("--mnist", help="MNIST folder (default: $N2D2_DATA/mnist or shipped)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists() and not args.force:
            raise N2D2PyError(f"{out} exists (use --force to replace it)")
        if args.frames < 1 or args.max_faces < 0:
            raise N2D2PyError("--frames must be at least 1 and --max-faces at least 0")
        if not 0 < args.sizes[0] <= args.sizes[1] <= 1:
            raise N2D2PyError("--sizes MIN MAX: fractions with 0 < MIN <= MAX <= 1")
        summary = generate(out, args.frames, args.width, args.height, args.seed,
                           args.max_faces, args.source, args.part, args.crop, args.mnist,
                           sizes=tuple(args.sizes))
    except N2D2PyError as exc:
        print(f"make_imdbwiki.py: {exc}", file=sys.stderr)
        return 2
    print(f"{summary['frames']} frames, {summary['faces']} faces, {summary['lines']} "
          f"metadata lines in {summary['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
