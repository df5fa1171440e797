"""Targets on spatial outputs (spec §5.3–5.7): per-pixel targets from label maps, the
class-balanced error (checked against PyTorch), per-pixel scores, confusion, masks, files."""

import numpy as np
import pytest
import torch

from n2d2py.data.rois import ROI, LabelMaps
from n2d2py.targets import spatial
from n2d2py.targets.score import TargetScore

FACE = "background 0\n* -1\ndefault 1\n"
GENDER = "default -1\nM-* 0\nF-* 1\n"
LABELS = ["background", "M-30", "F-20"]


def test_block_majority_with_ties_to_the_smallest_target():
    t = np.array([[[0, 0, 1, 1],
                   [0, 1, 1, -1],
                   [-1, -1, 1, 1],
                   [0, 0, 1, 1]]])
    got = spatial.pixel_targets(t, (2, 2), 2)
    # blocks: {0,0,0,1}→0; {1,1,1,-1}→1; {-1,-1,0,0} tie → -1; {1,1,1,1}→1
    np.testing.assert_array_equal(got[0], [[0, 1], [-1, 1]])


def test_block_edges_for_a_ratio_that_is_not_whole():
    start, stop = spatial.block_edges(5, 2)  # r = 2.5: [0, 2) and [2, 5)
    assert start.tolist() == [0, 2] and stop.tolist() == [2, 5]
    start, stop = spatial.block_edges(3, 4)  # smaller than the output: at least one pixel
    assert start.tolist() == [0, 0, 1, 2] and stop.tolist() == [1, 1, 2, 3]
    t = np.array([[[0, 0, 1, 1, 1]]])
    np.testing.assert_array_equal(spatial.pixel_targets(t, (1, 2), 2)[0], [[0, 1]])


def test_weak_target_gives_way_to_the_runner_up():
    t = np.array([[[0, 0, 0, 1]]])
    assert spatial.pixel_targets(t, (1, 1), 2)[0, 0, 0] == 0
    assert spatial.pixel_targets(t, (1, 1), 2, weak_target=0)[0, 0, 0] == 1
    only = np.array([[[0, 0, 0, 0]]])
    assert spatial.pixel_targets(only, (1, 1), 2, weak_target=0)[0, 0, 0] == 0


def test_one_label_per_stimulus_fills_the_map():
    got = spatial.broadcast_targets(np.array([1, -1]), (2, 3))
    assert got.shape == (2, 2, 3) and (got[0] == 1).all() and (got[1] == -1).all()


def test_error_is_class_balanced_and_matches_torch_bce_with_logits():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
    t = rng.integers(-1, 2, (2, 3, 4))
    y = 1 / (1 + np.exp(-z))  # LogisticWithLoss passes the target's dy straight through
    dy, loss = spatial.loss_grad(y, t, 2, 1.0, 0.0)
    w = spatial.class_weights(t, 2)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        zt[:, 0], torch.tensor((t == 1).astype(np.float64)), weight=torch.tensor(w.astype(np.float64)),
        reduction="sum")
    bce.backward()
    np.testing.assert_allclose(dy[:, 0], zt.grad.numpy()[:, 0], rtol=1e-5, atol=1e-7)
    # the weights: 1 / (pixels of that class in the same stimulus), 0 where ignored
    for i in range(2):
        for c in (0, 1):
            assert np.allclose(w[i][t[i] == c], 1 / max((t[i] == c).sum(), 1))
        assert (w[i][t[i] == -1] == 0).all()
    assert loss == pytest.approx(float((dy ** 2).sum()) / 2, rel=1e-6)


def test_multi_channel_error_by_hand():
    y = np.zeros((1, 3, 1, 2), np.float32)
    y[0, :, 0, 0] = [0.5, 0.2, 0.1]
    dy, _ = spatial.loss_grad(y, np.array([[[2, -1]]]), 3, 1.0, 0.0)
    np.testing.assert_allclose(dy[0, :, 0, 0], [0.5, 0.2, -0.9], rtol=1e-6)
    assert (dy[0, :, 0, 1] == 0).all()


def test_estimate_one_channel_values():
    v = np.array([[[[0.2, 0.9]]]], np.float32)
    est, val = spatial.estimate(v, 0.5)
    assert est.tolist() == [[[[0, 1]]]]
    np.testing.assert_allclose(val[0, 0, 0], [0.8, 0.9], rtol=1e-6)


def face_target():
    return TargetScore("fc.Target", "fc", 1, LABELS,
                       mapping={0: 0, -1: -1}, default_target=1)


def test_per_pixel_scores_confusion_and_files(tmp_path):
    t = face_target()
    # label map 4×4 (ids: 0 background, 1 M-30, -1 padding), output 2×2
    maps = np.array([[[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, -1, -1]]], np.int32)
    labels = LabelMaps(maps, [[ROI(1, 2, 0, 3, 1)]])
    y = np.array([[[[0.1, 0.8], [0.7, 0.4]]]], np.float32)  # est: [[0,1],[1,0]]
    dy, _ = t.loss_grad(y, labels)
    # targets: [[0, 1], [0, -1]]: pixel (1,1) block {0,0,-1,-1} is a tie → ignored
    assert dy[0, 0, 1, 1] == 0
    np.testing.assert_allclose(dy[0, 0, 0, 0], 0.1 / 2, rtol=1e-6)  # two background pixels
    np.testing.assert_allclose(dy[0, 0, 0, 1], (0.8 - 1) / 1, rtol=1e-6)
    est = t.process("test", y, labels, ids=[7], names=["a.jpg"])
    np.testing.assert_array_equal(est[0], [[0, 1], [1, 0]])
    s = t.scores("test")
    np.testing.assert_array_equal(s.matrix, [[1, 1], [0, 1]])
    # success: background 1/2 right, face 1/1 → mean over the classes present
    assert s.success_rate() == pytest.approx(0.75)
    t.write_logs(str(tmp_path), "test")
    folder = tmp_path / "fc.Target"
    mis = (folder / "Misclassified_test.dat").read_text().splitlines()
    assert mis[1:] == ['7 "a.jpg" 0 0 1', '7 "a.jpg" 0 1 1', '7 "a.jpg" 1 1 1']
    assert not (folder / "test" / "classif.log").exists()
    assert "0 1 1 0.5" in (folder / "ConfusionMatrix_test.dat").read_text()


def test_mask_label_target_scores(make_targets):
    sections = [
        ("face.Target", "face", 1, "LabelsMapping=face.dat\nNoDisplayLabel=0\nLabelsHueOffset=90"),
        ("gender.Target", "gender", 1, "LabelsMapping=gender.dat\nMaskLabelTarget=face.Target\n"
                                       "MaskedLabel=1"),
    ]
    # the gender target comes first in the file: the links put the face target first
    targets, diag, order = make_targets(sections[::-1], LABELS,
                                        {"face.dat": FACE, "gender.dat": GENDER})
    assert order == ["face.Target", "gender.Target"]
    face, gender = targets["face.Target"], targets["gender.Target"]
    assert face.keys.no_display_label == 0 and face.keys.labels_hue_offset == 90
    assert not diag.messages
    maps = LabelMaps(np.array([[[1, 1, 2, 0]]], np.int32))  # M-30, M-30, F-20, background
    face_y = np.array([[[[0.9, 0.2, 0.8, 0.9]]]], np.float32)  # face est 1, 0, 1, 1
    gender_y = np.array([[[[0.1, 0.1, 0.3, 0.9]]]], np.float32)  # est 0, 0, 0, 1
    face.process("test", face_y, maps)
    gender.process("test", gender_y, maps)
    m = gender.scores("test").matrix
    assert m.shape == (3, 3)  # 2 targets + the masked row/column
    # pixel 0: male, face → (0, 0); pixel 1: male masked out → (0, ∅); pixel 2: female, face,
    # est male → (1, 0); pixel 3: background (ignored) with face → (∅, 1)
    np.testing.assert_array_equal(m, [[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    # success: male 1/2, female 0/1 → 0.25
    assert gender.scores("test").success_rate() == pytest.approx(0.25)
    assert gender.matrix_names() == ["M-30", "F-20", "∅"]
