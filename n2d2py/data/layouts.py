"""Tiny synthetic data sets in the on-disk layouts N2D2's drivers read (ImageNet, GTSRB).

For tests, the survey of N2D2's model files (``benchmarks/n2d2_model_files.py``) and
trying a model without the real data. Class k's images are noise around a colour and a
brightness of its own (told apart in gray too), so a network can tell the classes apart
after a few steps.
"""

from pathlib import Path

import cv2
import numpy as np


def _image(rng, k, n_classes, size):
    hsv = np.array([(37 * k) % 180, 200, 70 + (53 * k) % 180], np.uint8).reshape(1, 1, 3)
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.int16)  # hue and brightness differ
    noise = rng.integers(-25, 26, size + (3,))
    return np.clip(bgr + noise, 0, 255).astype(np.uint8)


def synset_names(n):
    """``n`` ImageNet-style synset ids: n00000000, n00000001, ..."""
    return [f"n{k:08d}" for k in range(n)]


def write_ilsvrc2012(root, n_synsets=3, per_class=4, val_per_class=2, size=(20, 24), seed=0):
    """``root/train/<synset>/*.JPEG``, ``root/val/*.JPEG``, ``root/val.txt``,
    ``root/synsets.txt`` (ILSVRC2012_Database's layout); returns the synset list."""
    root, rng = Path(root), np.random.default_rng(seed)
    synsets = synset_names(n_synsets)
    (root / "val").mkdir(parents=True, exist_ok=True)
    val_lines = []
    for k, synset in enumerate(synsets):
        folder = root / "train" / synset
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{synset}_{i}.JPEG"), _image(rng, k, n_synsets, size))
        for i in range(val_per_class):
            name = f"ILSVRC2012_val_{k * val_per_class + i + 1:08d}.JPEG"
            cv2.imwrite(str(root / "val" / name), _image(rng, k, n_synsets, size))
            val_lines.append(f"{name} {k}")
    (root / "val.txt").write_text("\n".join(val_lines) + "\n")
    (root / "synsets.txt").write_text("\n".join(synsets) + "\n")
    return synsets


def write_gtsrb(root, n_classes=3, per_class=4, n_test=6, size=(30, 32), margin=3, seed=0):
    """GTSRB as distributed (``Final_Training/Images/<00000..>/*.ppm`` with
    ``GT-<class>.csv``, ``Final_Test/Images/*.ppm``, ``GT-final_test.csv``): each image has
    its sign box ``margin`` pixels inside the frame; the frame outside it is black."""
    root, rng = Path(root), np.random.default_rng(seed)
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
    h, w = size

    def sign(k):
        img = np.zeros((h, w, 3), np.uint8)
        img[margin:h - margin, margin:w - margin] = _image(rng, k, n_classes,
                                                          (h - 2 * margin, w - 2 * margin))
        return img

    box = f"{w};{h};{margin};{margin};{w - margin};{h - margin}"
    for k in range(n_classes):
        folder = root / "Final_Training" / "Images" / f"{k:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = [header]
        for i in range(per_class):
            name = f"00000_{i:05d}.ppm"
            cv2.imwrite(str(folder / name), sign(k))
            rows.append(f"{name};{box};{k}")
        (folder / f"GT-{k:05d}.csv").write_text("\n".join(rows) + "\n")
    test = root / "Final_Test" / "Images"
    test.mkdir(parents=True, exist_ok=True)
    rows = [header]
    for i in range(n_test):
        name, k = f"{i:05d}.ppm", i % n_classes
        cv2.imwrite(str(test / name), sign(k))
        rows.append(f"{name};{box};{k}")
    (root / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
