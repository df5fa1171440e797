"""The tutorial's face and gender network (N2D2's IMDB-WIKI segmentation part), scaled down,
through the command line on a tiny generated IMDB-WIKI set: learn a few batches, test, and
every target writes its files."""

import importlib.util
from pathlib import Path

import pytest

from n2d2py import cli

TOOL = Path(__file__).parents[2] / "tools" / "make_imdbwiki.py"
CONV = "Type=Conv\nKernelWidth=3\nKernelHeight=3\nPadding=1\nActivationFunction=Rectifier\n" \
       "WeightsFiller=HeFiller\nConfigSection=common.config\n"
HEAD = "Type=Conv\nKernelWidth=1\nKernelHeight=1\nNbOutputs=1\nActivationFunction=LogisticWithLoss\n" \
       "WeightsFiller=XavierFiller\nConfigSection=common.config\n"
ROIS = "MinOverlap=0.33\nFilterMinWidth=2\nFilterMinHeight=2\nFilterMinAspectRatio=0.3\n" \
       "FilterMaxAspectRatio=3\n"
INI = f"""DefaultModel=Frame
[database]
Type=IMDBWIKI_Database
WikiSet=1
IMDBSet=0
Learn=0.6
Validation=0.2
DefaultLabel=background
[sp]
SizeX=48
SizeY=36
BatchSize=4
CompositeStimuli=1
[sp.Transformation-1]
Type=ChannelExtractionTransformation
CSChannel=Gray
[sp.Transformation-2]
Type=RescaleTransformation
Width=[sp]SizeX
Height=[sp]SizeY
KeepAspectRatio=1
[sp.Transformation-3]
Type=PadCropTransformation
Width=[sp]SizeX
Height=[sp]SizeY
[sp.Transformation-4]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
SecondOperator=Minus
SecondValue=0.5
[sp.OnTheFlyTransformation-5]
Type=FlipTransformation
RandomHorizontalFlip=1
ApplyTo=LearnOnly
[conv1]
Input=sp
NbOutputs=6
{CONV}
[pool1]
Input=conv1
Type=Pool
PoolWidth=2
PoolHeight=2
NbOutputs=6
Stride=2
Pooling=Max
Mapping.Size=1
[conv2]
Input=pool1
NbOutputs=8
{CONV}
[pool2]
Input=conv2
Type=Pool
PoolWidth=2
PoolHeight=2
NbOutputs=8
Stride=2
Pooling=Max
Mapping.Size=1
[fc3.face]
Input=pool2
{HEAD}
[fc3.face.Target]
LabelsMapping=face.dat
NoDisplayLabel=0
LabelsHueOffset=90
[fc3.gender]
Input=pool2
{HEAD}
[fc3.gender.Target]
LabelsMapping=gender.dat
MaskLabelTarget=fc3.face.Target
MaskedLabel=1
[common.config]
NoBias=1
WeightsSolver.LearningRate=0.01
WeightsSolver.Momentum=0.9
[post.Transformation-thres]
Input=fc3.face
Type=Transformation
NbOutputs=1
Transformation=ThresholdTransformation
Operation=ToZero
Threshold=0.75
[post.Transformation-thres.Target-face]
Type=TargetROIs
LabelsMapping=face.dat
{ROIS}
[post.Transformation-thres.Target-gender]
Type=TargetROIs
ROIsLabelTarget=fc3.gender.Target
LabelsMapping=gender.dat
{ROIS}
"""


@pytest.fixture(scope="module")
def imdbwiki(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_imdbwiki", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = tmp_path_factory.mktemp("data")
    tool.generate(root / "IMDB-WIKI", frames=24, width=64, height=48, seed=5, max_faces=2)
    return root


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        cli.main(list(args))
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    return out


def test_learn_and_test_the_face_and_gender_network(imdbwiki, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("N2D2_DATA", str(imdbwiki))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "face.dat").write_text("background 0\n* -1\ndefault 1\n")
    (tmp_path / "gender.dat").write_text("default -1\nM-* 0\nF-* 1\n")
    (tmp_path / "net.ini").write_text(INI)
    out = run(capsys, "net.ini", "-learn", "16", "-log", "8", "-seed", "1")
    assert "[fc3.gender.Target]" in out and "Final recognition rate" in out
    assert out.count("ground-truth ROIs found (IoU > 0.33)") == 2
    face, gender = tmp_path / "fc3.face.Target", tmp_path / "fc3.gender.Target"
    rois = tmp_path / "post.Transformation-thres.Target-face"
    rois_gender = tmp_path / "post.Transformation-thres.Target-gender"
    for folder in (face, gender):
        for name in ("ConfusionMatrix_test.dat", "ConfusionMatrix_test_score.dat",
                     "Misclassified_test.dat", "Success_test.dat", "ConfusionMatrix_test.png",
                     "Success_learning.dat", "ConfusionMatrix_validation.dat"):
            assert (folder / name).is_file(), folder / name
    # the gender target is masked by the face target: 2 targets + the "masked" row/column
    assert len((gender / "ConfusionMatrix_test.dat").read_text().splitlines()) == 1 + 9
    assert len((face / "ConfusionMatrix_test.dat").read_text().splitlines()) == 1 + 4
    for folder in (rois, rois_gender):
        for name in ("ConfusionMatrix_test.dat", "ConfusionMatrix_test_score.dat", "test.log"):
            assert (folder / name).is_file(), folder / name
        assert not (folder / "Success_test.dat").exists()
    assert (rois_gender / "target_rois_label.dat").read_text() == "fc3.gender.Target\n"
    # N2D2's test images: targets and estimates over the input, boxes over the input
    stems = {p.name[: -len("_target.jpg")] for p in (face / "test").glob("*_target.jpg")}
    assert stems and all((face / "test" / f"{s}_estimated.jpg").is_file() for s in stems)
    assert {p.stem for p in (rois / "test").glob("*.jpg")} == stems
    assert not list((tmp_path / "fc3.face.Target" / "validation").glob("*.jpg"))
    assert (face / "labels_legend.png").is_file() and (gender / "labels_legend.png").is_file()
    # the viewer shows the segmentation of the gender target with the boxes of both TargetROIs
    from n2d2py.viewer import main as viewer

    assert viewer([str(tmp_path), "--save", str(tmp_path / "view"), "--target",
                   "fc3.gender.Target", "--debug"]) == 0
    out = capsys.readouterr().out
    assert "misclassified gallery" not in out
    for name in ("segmentation_0.png", "segmentation_test.png", "confusion_test.png"):
        assert (tmp_path / "view" / name).stat().st_size > 10000, name
