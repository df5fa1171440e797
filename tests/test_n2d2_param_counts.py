"""Parameter counts of N2D2's ImageNet model files against torchvision's networks.

torchvision is not installed: its ResNet, SqueezeNet and MobileNet v2 are rebuilt here in
plain torch, layer for layer, and checked against the counts torchvision publishes in its
model documentation (resnet18 11,689,512; resnet34 21,797,672; resnet50 25,557,032;
squeezenet1_0 1,248,424; squeezenet1_1 1,235,496; mobilenet_v2 3,504,872). N2D2's files
describe the same convolutions and Fc; they differ from torchvision only as asserted below
(and said in the README's model section): no BatchNorm after each convolution, one more 1×1
convolution in two places, no convolution biases in SqueezeNet.
"""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from n2d2py import backend, network
from n2d2py.ini import parse_text

N2D2_MODELS = Path(__file__).parent / "data" / "n2d2_models"


def conv_bn(cin, cout, k, stride=1, groups=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout)]


def resnet(bottleneck, blocks):
    """torchvision's ResNet (v1.5: stride in the 3×3), as a flat list of modules."""
    layers, cin, expansion = conv_bn(3, 64, 7, 2), 64, 4 if bottleneck else 1
    for stage, n in enumerate(blocks):
        width = 64 * 2 ** stage
        for b in range(n):
            stride = 2 if stage and not b else 1
            if bottleneck:
                layers += conv_bn(cin, width, 1) + conv_bn(width, width, 3, stride)
                layers += conv_bn(width, width * 4, 1)
            else:
                layers += conv_bn(cin, width, 3, stride) + conv_bn(width, width, 3)
            if stride != 1 or cin != width * expansion:
                layers += conv_bn(cin, width * expansion, 1, stride)  # downsample
            cin = width * expansion
    return layers + [nn.Linear(cin, 1000)]


def squeezenet(version):
    fires = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256),
             (64, 256)]
    layers = [nn.Conv2d(3, 96 if version == "1_0" else 64, 7 if version == "1_0" else 3, 2)]
    cin = layers[0].out_channels
    for squeeze, expand in fires:
        layers += [nn.Conv2d(cin, squeeze, 1), nn.Conv2d(squeeze, expand, 1),
                   nn.Conv2d(squeeze, expand, 3, padding=1)]
        cin = 2 * expand
    return layers + [nn.Conv2d(cin, 1000, 1)]


def mobilenet_v2():
    layers, cin = conv_bn(3, 32, 3, 2), 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            hidden = cin * t
            if t != 1:
                layers += conv_bn(cin, hidden, 1)
            layers += conv_bn(hidden, hidden, 3, s if i == 0 else 1, groups=hidden)
            layers += conv_bn(hidden, c, 1)
            cin = c
    return layers + conv_bn(cin, 1280, 1) + [nn.Linear(1280, 1000)]


def count(layers, kind=None, what=None):
    return sum(p.numel() for m in layers if kind is None or isinstance(m, kind)
               for name, p in m.named_parameters() if what is None or name == what)


TORCHVISION = {  # published counts (torchvision model documentation)
    "resnet18": (resnet(False, [2, 2, 2, 2]), 11_689_512),
    "resnet34": (resnet(False, [3, 4, 6, 3]), 21_797_672),
    "resnet50": (resnet(True, [3, 4, 6, 3]), 25_557_032),
    "squeezenet1_0": (squeezenet("1_0"), 1_248_424),
    "squeezenet1_1": (squeezenet("1_1"), 1_235_496),
    "mobilenet_v2": (mobilenet_v2(), 3_504_872),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_plain_torch_rebuilds_match_torchvision_published_counts(name):
    layers, published = TORCHVISION[name]
    assert count(layers) == published


def n2d2_count(name, **values):
    text = (N2D2_MODELS / name).read_text()
    for var, value in values.items():
        text = re.sub(rf"^\${var}=.*$", f"${var}={value}", text, flags=re.M)
    net = network.build(parse_text(text, str(N2D2_MODELS / name)), backend.cpu(0),
                        load_data=False)
    return sum(row[4] for row in net.summary())


@pytest.fixture(autouse=True)
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("N2D2_DATA", str(tmp_path / "none"))


def bn(name):
    return count(TORCHVISION[name][0], nn.BatchNorm2d)


@pytest.mark.parametrize("file, reference, difference", [
    # no BatchNorm; conv2.1 has a 1×1 projection shortcut (64×64) where torchvision adds
    ("ResNet-18.ini", "resnet18", lambda: -bn("resnet18") + 64 * 64),
    ("ResNet-34.ini", "resnet34", lambda: -bn("resnet34") + 64 * 64),
    ("ResNet-50.ini", "resnet50", lambda: -bn("resnet50")),  # no BatchNorm at all
    # one BatchNorm after each stage (256+512+1024+2048 channels) instead of after each conv
    ("ResNet-50-BN.ini", "resnet50", lambda: -bn("resnet50") + 2 * (256 + 512 + 1024 + 2048)),
    ("SqueezeNet_v1.0.ini", "squeezenet1_0",  # no convolution biases
     lambda: -count(TORCHVISION["squeezenet1_0"][0], nn.Conv2d, "bias")),
    ("SqueezeNet_v1.1.ini", "squeezenet1_1",
     lambda: -count(TORCHVISION["squeezenet1_1"][0], nn.Conv2d, "bias")),
])
def test_n2d2_files_differ_from_torchvision_only_as_stated(file, reference, difference):
    assert n2d2_count(file) == TORCHVISION[reference][1] + difference()


def test_mobilenets_at_width_1():
    """MobileNet_v2.ini ($ALPHA=1.0): no BatchNorm, and a 1×1 expansion (32×32) in the first
    block, where torchvision has none (t = 1). MobileNet_v1_batchnorm.ini ($ALPHA=1.0): the
    published MobileNet v1 1.0-224 (4,231,976 trainable parameters, as models/MobileNet_v1.ini
    and Keras's MobileNet, whose 4,253,864 include 21,888 BatchNorm moving statistics)."""
    assert n2d2_count("MobileNet_v2.ini", ALPHA=1.0) == 3_504_872 - bn("mobilenet_v2") + 32 * 32
    assert n2d2_count("MobileNet_v1_batchnorm.ini", ALPHA=1.0, SIZE=224) == 4_231_976
