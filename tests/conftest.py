"""Shared test data: a tiny model on the shipped MNIST, for end-to-end tests. Puts tests/ on
the import path, so that every test module imports the shared helpers as ``harness``."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import mnist_head, softmax_tail  # noqa: E402

TINY_MNIST_INI = (
    mnist_head("Validation=0.1\n", "SizeX=28\nSizeY=28\nBatchSize=32\n")
    + """[conv1]
Input=sp
Type=Conv
KernelDims=5 5
NbOutputs=4
Stride=2
ActivationFunction=Rectifier
WeightsFiller=HeFiller
ConfigSection=common.config
"""
    + softmax_tail("conv1", fc="WeightsFiller=XavierFiller\n",
                   config="WeightsSolver.LearningRate=0.05\nSolvers.Momentum=0.9")
)


@pytest.fixture(scope="session")
def write_tiny_mnist_ini():
    """A function writing the tiny model into a folder and returning its path."""

    def write(folder):
        path = folder / "tiny.ini"
        path.write_text(TINY_MNIST_INI)
        return path

    return write
