"""TargetROIs on hand-made maps (spec §7): boxes of the thresholded face map, their class from
the gender target (ROIsLabelTarget, masked by the face target), matching, scores and files."""

import numpy as np
import pytest

from n2d2py.data.rois import ROI, LabelMaps
from n2d2py.errors import N2D2PyError

FACE = "background 0\n* -1\ndefault 1\n"
GENDER = "default -1\nM-* 0\nF-* 1\n"
LABELS = ["background", "M-30", "F-20"]
ROIS = "MinOverlap=0.33\nFilterMinWidth=2\nFilterMinHeight=2\n"
SECTIONS = [
    ("face.Target", "face", 1, "LabelsMapping=face.dat"),
    ("gender.Target", "gender", 1, "LabelsMapping=gender.dat\nMaskLabelTarget=face.Target\n"
                                   "MaskedLabel=1"),
    ("thres.Target-face", "thres", 1, "Type=TargetROIs\nLabelsMapping=face.dat\n" + ROIS),
    ("thres.Target-gender", "thres", 1, "Type=TargetROIs\nROIsLabelTarget=gender.Target\n"
                                        "LabelsMapping=gender.dat\n" + ROIS),
]
FILES = {"face.dat": FACE, "gender.dat": GENDER}


def scene():
    """16×16 label map, 8×8 outputs: a male and a female face found, a female face missed,
    and one false detection."""
    maps = np.zeros((1, 16, 16), np.int32)
    truths = [ROI(1, 0, 0, 5, 5), ROI(2, 10, 10, 15, 15), ROI(2, 0, 10, 3, 13)]
    for r in truths:
        maps[0, r.y0:r.y1 + 1, r.x0:r.x1 + 1] = r.label
    face = np.full((1, 1, 8, 8), 0.1, np.float32)
    face[0, 0, 0:3, 0:3] = 0.9
    face[0, 0, 5:8, 5:8] = 0.9
    face[0, 0, 0:2, 5:8] = 0.9  # nothing there
    gender = np.full((1, 1, 8, 8), 0.5, np.float32)
    gender[0, 0, 0:3, 0:3] = 0.2
    gender[0, 0, 5:8, 5:8] = 0.8
    gender[0, 0, 0:2, 5:8] = 0.9
    thres = (face > 0.75).astype(np.float32)  # the Threshold cell's output (Binary)
    return LabelMaps(maps, [truths]), {"face": face, "gender": gender, "thres": thres}


def run(make_targets, sections=SECTIONS):
    targets, diag, order = make_targets(sections, LABELS, FILES)
    labels, outputs = scene()
    for name in order:
        target = targets[name]
        assert target.loss_grad(outputs[target.cell_name], labels)[0] is not None or \
            name.startswith("thres")
        target.process("test", outputs[target.cell_name], labels, ids=[3], names=["s.jpg"])
    return targets, diag


def test_face_boxes_matching_and_scores(make_targets, tmp_path):
    targets, diag = run(make_targets)
    assert not diag.messages
    face = targets["thres.Target-face"]
    assert face.loss_grad(None, None) == (None, 0.0)
    np.testing.assert_array_equal(face.scores("test").matrix, [[0, 1], [1, 2]])
    precision, recall = face.box_rates("test")
    assert precision[1] == pytest.approx(2 / 3) and recall[1] == pytest.approx(2 / 3)
    face.write_logs(str(tmp_path), "test")
    log = (tmp_path / "thres.Target-face" / "test.log").read_text().splitlines()
    assert log == ['"s.jpg" 0 0 6 6 default 9 1', '"s.jpg" 10 10 6 6 default 9 1',
                   '"s.jpg" 10 0 6 4 default 6 0']
    score = (tmp_path / "thres.Target-face" / "ConfusionMatrix_test_score.dat").read_text()
    assert score.splitlines()[2].startswith('1 "default" 0.666667')
    assert any("precision 66.67% / recall 66.67%" in l for l in face.summary_lines("test"))


def test_gender_of_the_boxes_from_roislabeltarget(make_targets, tmp_path):
    targets, _ = run(make_targets)
    gender = targets["thres.Target-gender"]
    assert gender.label_target is targets["gender.Target"]
    # male box → (M, M); female box → (F, F); false box (gender 0.9) → (0, F); missed F → (F, 0)
    np.testing.assert_array_equal(gender.scores("test").matrix, [[1, 1], [1, 1]])
    gender.write_labels_mapping(str(tmp_path))
    assert (tmp_path / "thres.Target-gender" / "target_rois_label.dat").read_text() == "gender.Target\n"
    gender.write_logs(str(tmp_path), "test")
    log = (tmp_path / "thres.Target-gender" / "test.log").read_text().splitlines()
    assert sorted(log) == ['"s.jpg" 0 0 6 6 M-30 7.2 1', '"s.jpg" 10 0 6 4 F-20 5.4 0',
                           '"s.jpg" 10 10 6 6 F-20 7.2 1']


def test_boxes_from_the_label_map_when_there_is_no_roi(make_targets):
    targets, diag, order = make_targets(SECTIONS[:1] + SECTIONS[2:3], LABELS, FILES)
    labels, outputs = scene()
    labels = LabelMaps(labels.maps)  # no ROI list: components of the raw map are the truths
    for name in order:
        targets[name].process("test", outputs[targets[name].cell_name], labels)
    np.testing.assert_array_equal(targets["thres.Target-face"].scores("test").matrix,
                                  [[0, 1], [1, 2]])


def test_unknown_roislabeltarget_is_an_error(make_targets):
    bad = [("thres.Target", "thres", 1, "Type=TargetROIs\nROIsLabelTarget=nope.Target")]
    with pytest.raises(N2D2PyError, match="no other target section named 'nope.Target'") as info:
        make_targets(bad, LABELS, FILES)
    assert info.value.key == "ROIsLabelTarget" and info.value.line == 3


@pytest.mark.parametrize("registry, name", [("TARGETS", "TargetRP"), ("TARGETS", "TargetBBox"),
                                            ("CELLS", "Anchor"), ("CELLS", "RP"),
                                            ("CELLS", "ROIPooling")])
def test_faster_rcnn_pieces_are_refused_by_name(registry, name):
    import n2d2py.network  # noqa: F401  (registers everything)
    from n2d2py import registry as registries

    with pytest.raises(N2D2PyError, match=f"'{name}' .* is not supported yet"):
        getattr(registries, registry).get(name)
