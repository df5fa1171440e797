"""Shared test data: a tiny model on the shipped MNIST, for end-to-end tests."""

import pytest

TINY_MNIST_INI = """DefaultModel=Frame
[database]
Type=MNIST_IDX_Database
Validation=0.1
[sp]
SizeX=28
SizeY=28
BatchSize=32
[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=2
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
[fc1]
Input=conv1
Type=Fc
NbOutputs=10
WeightsFiller=XavierFiller
ConfigSection=common.config
[softmax]
Input=fc1
Type=Softmax
NbOutputs=10
WithLoss=1
[softmax.Target]
[common.config]
WeightsSolver.LearningRate=0.05
Solvers.Momentum=0.9
"""


@pytest.fixture(scope="session")
def write_tiny_mnist_ini():
    """A function writing the tiny model into a folder and returning its path."""

    def write(folder):
        path = folder / "tiny.ini"
        path.write_text(TINY_MNIST_INI)
        return path

    return write
