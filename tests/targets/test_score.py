"""TargetScore on 1×1 outputs: loss and gradient (spec §3.7), scores and metrics, LabelsMapping
(spec §5)."""

import os

import numpy as np
import pytest

from n2d2py.errors import Diagnostics, N2D2PyError
from n2d2py.ini import Section, parse_text
from n2d2py.registry import TARGETS
from n2d2py.targets import METRICS, Scores, TargetScore, class_metrics, parse_labels_mapping


def target_from(text, nb_outputs, labels, tmp_path, files=None):
    for name, content in (files or {}).items():
        (tmp_path / name).write_text(content)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        diag = Diagnostics(stream=open(os.devnull, "w"))
        doc = parse_text(f"[fc.Target]\n{text}\n", "m.ini", diag)
        sec = Section(doc, ["fc.Target"])
        cls = TARGETS.get(sec.get_str("Type", "TargetScore"))
        return cls.from_section(sec, "fc", nb_outputs, labels), diag
    finally:
        os.chdir(cwd)


# -- loss -------------------------------------------------------------------------------


def test_loss_and_gradient_by_hand():
    t = TargetScore("fc.Target", "fc", 3, ["a", "b", "c"], target_value=1.0, default_value=0.0)
    y = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=np.float32).reshape(2, 3, 1, 1)
    dy, loss = t.loss_grad(y, np.array([0, 2]))
    expected = np.array([[-0.3, 0.2, 0.1], [0.1, 0.3, -0.4]], dtype=np.float32)
    assert dy.shape == (2, 3, 1, 1) and dy.dtype == np.float32
    np.testing.assert_allclose(dy.reshape(2, 3), expected, rtol=1e-6)
    assert loss == pytest.approx((0.09 + 0.04 + 0.01 + 0.01 + 0.09 + 0.16) / 2, rel=1e-6)


def test_target_and_default_values():
    t = TargetScore("T", "fc", 2, ["a", "b"], target_value=0.9, default_value=-0.9)
    dy, loss = t.loss_grad(np.zeros((1, 2), dtype=np.float32), np.array([1]))
    np.testing.assert_allclose(dy, [[0.9, -0.9]], rtol=1e-6)
    assert loss == pytest.approx(2 * 0.81, rel=1e-6)


def test_ignored_labels_give_zero_gradient_but_count_in_batch():
    t = TargetScore("T", "fc", 2, ["a", "b"], mapping={0: 0, 1: -1})
    y = np.array([[0.5, 0.5], [0.5, 0.5]], dtype=np.float32)
    dy, loss = t.loss_grad(y, np.array([1, 0]))
    np.testing.assert_allclose(dy, [[0.0, 0.0], [-0.5, 0.5]])
    assert loss == pytest.approx(0.5 / 2)
    dy, _ = t.loss_grad(y, np.array([-1, -1]))  # unlabelled stimuli
    assert not dy.any()


def test_single_output_is_binary():
    t = TargetScore("T", "fc", 1, ["no", "yes"], binary_threshold=0.3)
    y = np.array([[0.2], [0.4], [0.9]], dtype=np.float32)
    dy, loss = t.loss_grad(y, np.array([1, 0, 1]))
    np.testing.assert_allclose(dy, [[-0.8], [0.4], [-0.1]], rtol=1e-6)
    est, values = t.estimate(y)
    assert est[:, 0].tolist() == [0, 1, 1]
    assert t.nb_targets == 2


def test_label_beyond_outputs_is_an_error():
    t = TargetScore("T", "fc", 2, ["a", "b", "c"], where=("m.ini", 5, "fc.Target"))
    with pytest.raises(N2D2PyError, match=r"m.ini:5: \[fc.Target\] label #2 \(c\) maps to output 2"):
        t.loss_grad(np.zeros((1, 2), dtype=np.float32), np.array([2]))


# -- estimates and scores ---------------------------------------------------------------


def test_top_n_estimates_and_ties():
    t = TargetScore("T", "fc", 4, top_n=2)
    y = np.array([[0.1, 0.5, 0.3, 0.1], [0.2, 0.2, 0.0, 0.0]], dtype=np.float32)
    est, values = t.estimate(y)
    assert est.tolist() == [[1, 2], [1, 0]]  # on a tie, the larger index first (as N2D2)
    np.testing.assert_allclose(values, [[0.5, 0.3], [0.2, 0.2]])
    t.process("test", y, np.array([2, 3]))
    s = t.scores("test")
    assert (s.success_rate(), s.top_n_rate()) == (0.0, 0.5)


def test_learning_window():
    s = Scores(2, window=3)
    for hit in [0, 0, 1, 1, 1]:
        s.add(np.array([0]), np.array([[0 if hit else 1]]), np.zeros((1, 1)), np.zeros((1, 2)))
    assert s.window_success() == 1.0
    assert s.success_rate() == pytest.approx(3 / 5)


def test_metrics_on_a_hand_made_matrix():
    m = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])
    got = class_metrics(m)
    # class 0: tp 5, fn 1, fp 2, tn 8
    assert got["Sensitivity"][0] == pytest.approx(5 / 6)
    assert got["Specificity"][0] == pytest.approx(8 / 10)
    assert got["Precision"][0] == pytest.approx(5 / 7)
    assert got["NegativePredictiveValue"][0] == pytest.approx(8 / 9)
    assert got["Accuracy"][0] == pytest.approx(13 / 16)
    assert got["IU"][0] == pytest.approx(5 / 8)
    p, r = 5 / 7, 5 / 6
    assert got["F1Score"][0] == pytest.approx(2 * p * r / (p + r))
    assert got["Informedness"][0] == pytest.approx(5 / 6 + 0.8 - 1)
    assert got["Markedness"][0] == pytest.approx(5 / 7 + 8 / 9 - 1)
    assert got["MissRate"][0] == pytest.approx(1 / 6)
    # class 2: tp 4, fn 0, fp 1, tn 11
    assert got["Sensitivity"][2] == 1.0 and got["Precision"][2] == pytest.approx(0.8)
    assert set(got) == set(METRICS)
    s = Scores(3)
    s.matrix = m
    assert s.average("Sensitivity") == pytest.approx((5 / 6 + 3 / 6 + 1) / 3)
    with pytest.raises(N2D2PyError, match="unknown metric"):
        s.average("Recall")


def test_empty_class_metrics_are_zero():
    got = class_metrics(np.zeros((2, 2)))
    assert got["Sensitivity"].tolist() == [0.0, 0.0] and got["F1Score"].tolist() == [0.0, 0.0]


def test_log_files(tmp_path):
    t = TargetScore("softmax.Target", "softmax", 3, ["cat", "dog", "cow"])
    y = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.0, 0.1, 0.9]], dtype=np.float32)
    t.process("test", y, np.array([0, 1, 2]), ids=[10, 11, 12], names=["a.png", "b.png", "c.png"])
    t.write_logs(str(tmp_path), "test")
    t.record_success(str(tmp_path), "test", 300)
    folder = tmp_path / "softmax.Target"
    conf = (folder / "ConfusionMatrix_test.dat").read_text().splitlines()
    assert conf[0] == "target estimated # %" and "1 0 1 1" in conf
    score = (folder / "ConfusionMatrix_test_score.dat").read_text().splitlines()
    assert score[0].startswith("Target TargetName Sensitivity")
    assert score[1].startswith('0 "cat" 1 ') and score[-1].startswith("- AVG ")
    mis = (folder / "Misclassified_test.dat").read_text().splitlines()
    assert mis == ["# name target estimated count", '11 "b.png" 1 0 1']
    log = (folder / "test" / "classif.log").read_text().splitlines()
    assert log[0] == '10 "a.png" 0 0 0.8 0.8 0.1 0.1'
    assert (folder / "Success_test.dat").read_text() == f"300 {2 / 3:g}\n"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- from the INI, LabelsMapping --------------------------------------------------------

MAPPING = """# comment line
cat 0
dog 1   # trailing comment
"big cat" 0
bird* 2
f?sh 2
* -1
default 3
"""


def test_labels_mapping_file(tmp_path):
    labels = ["cat", "dog", "big cat", "bird1", "bird22", "fish", "foosh", "cow"]
    t, _ = target_from("LabelsMapping=map.txt\nTopN=2", 4, labels, tmp_path, {"map.txt": MAPPING})
    assert t.top_n == 2
    assert t.targets_of([0, 1, 2, 3, 4, 5, 6, 7, -1]).tolist() == [0, 1, 0, 2, 2, 2, 3, 3, -1]
    assert t.output_names() == ["cat...", "dog", "bird1...", "default"]


def test_explicit_name_beats_wildcard(tmp_path):
    mapping, default = parse_labels_mapping_text(tmp_path, "c* 1\ncat -1\n", ["cat", "cow"], 2)
    assert mapping == {0: -1, 1: 1} and default is None


def parse_labels_mapping_text(tmp_path, text, labels, nb_targets, warn=None):
    path = tmp_path / "m.txt"
    path.write_text(text)
    return parse_labels_mapping(str(path), labels, nb_targets, warn)


@pytest.mark.parametrize(
    "text, message, line",
    [
        ("cat\n", "expected", 1),
        ("cat 0\ncat 1\n", "already exists", 2),
        ("\ncat x\n", "expected", 2),
        ("cat 0\ndog -2\n", "expected", 2),
        ("cat 5\n", "out of range", 1),
        ("default 0\ndefault 1\n", "second 'default'", 2),
        ('"cat 0\n', "unterminated", 1),
    ],
)
def test_bad_mapping_lines(tmp_path, text, message, line):
    with pytest.raises(N2D2PyError, match=message) as info:
        parse_labels_mapping_text(tmp_path, text, ["cat", "dog"], 2)
    assert info.value.line == line and info.value.file.endswith("m.txt")


def test_unknown_label_name_warns(tmp_path):
    warnings = []
    parse_labels_mapping_text(tmp_path, "horse 0\n", ["cat"], 2, warnings.append)
    assert "no label named 'horse'" in warnings[0]


def test_missing_mapping_file_is_located(tmp_path):
    with pytest.raises(N2D2PyError) as info:
        target_from("LabelsMapping=nope.txt", 2, ["a", "b"], tmp_path)
    assert str(info.value).startswith("m.ini:2: [fc.Target] LabelsMapping: ")
    assert "nope.txt" in str(info.value)


def test_incomplete_mapping(tmp_path):
    t, _ = target_from("LabelsMapping=map.txt", 2, ["a", "b", "c"], tmp_path, {"map.txt": "a 0\nb 1\n"})
    with pytest.raises(N2D2PyError, match=r"no output for label #2 \(c\)"):
        t.targets_of([2])


def test_keys_and_defaults(tmp_path):
    t, _ = target_from("Type=Target", 10, [str(i) for i in range(10)], tmp_path)
    assert (t.target_value, t.default_value, t.top_n, t.binary_threshold) == (1.0, 0.0, 1, 0.5)
    assert t.mapping is None and t.name == "fc.Target"
    t, _ = target_from("TargetValue=0.9\nDefaultValue=-0.9\nBinaryThreshold=0\nCreateMissingLabels=1",
                       1, ["a", "b"], tmp_path)
    assert (t.target_value, t.default_value, t.binary_threshold) == (0.9, -0.9, 0.0)


def test_top_n_larger_than_outputs(tmp_path):
    with pytest.raises(N2D2PyError, match=r"m.ini:2: \[fc.Target\] TopN: must be between 1 and"):
        target_from("TopN=5", 3, ["a", "b", "c"], tmp_path)


# -- classif.log ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, outputs", [(np.float32, 10), (np.float64, 3), (np.float32, 1),
                                            (np.int64, 4)])
def test_classif_lines_are_each_number_formatted_with_g(dtype, outputs):
    """The lines are those of the plain per-number f-string formatting: id, "name", target,
    estimated, value and every output with :g (NaN, infinities, -0, tiny and huge values)."""
    rng = np.random.default_rng(outputs)
    scores, batches = Scores(max(outputs, 2), 1, 100, False), []
    for b, n in enumerate((5, 0, 7, 6)):
        y = (rng.standard_normal((n, outputs)) * 10.0 ** rng.integers(-40, 38, (n, outputs)))
        if dtype != np.int64 and n:
            y.ravel()[:4] = [np.nan, np.inf, -0.0, 1e-45][:y.size]
        y = y.astype(dtype) if dtype != np.int64 else rng.integers(-9, 10**6, (n, outputs))
        targets = rng.integers(-1, max(outputs, 2), n)
        estimated = rng.integers(0, max(outputs, 2), (n, 1))
        values = rng.standard_normal((n, 1)).astype(np.float32)
        ids = rng.integers(0, 10**6, n) if b % 2 == 0 else None
        names = [f"img {k}.png" for k in range(n)] if b < 2 else None
        batches.append((list(ids) if ids is not None else list(range(scores.total, scores.total + n)),
                        names or [""] * n, targets, estimated[:, 0], values[:, 0], y))
        scores.add(targets, estimated, values, y, ids, names)
    expected = [f'{sid} "{name}" {t[i]} {e[i]} {v[i]:g} ' + " ".join(f"{x:g}" for x in y[i])
                for ids, names, t, e, v, y in batches for i, (sid, name) in enumerate(zip(ids, names))]
    assert scores.classif == expected and len(expected) == 18
    tokens = set(" ".join(expected).split())
    assert dtype == np.int64 or {"nan", "inf", "-0"} <= tokens
