"""Dataset loaders."""

from tbn.data.cifar10 import Cifar10, Cifar10Error, load_cifar10
from tbn.data.datasets import DATASETS, Dataset, dataset, load_arrays
from tbn.data.mnist import (
    MNIST_MEAN,
    MNIST_STD,
    IdxFormatError,
    Mnist,
    MnistError,
    MnistNotFoundError,
    load_mnist,
    parse_idx,
)

__all__ = [
    "DATASETS",
    "MNIST_MEAN",
    "MNIST_STD",
    "Cifar10",
    "Cifar10Error",
    "Dataset",
    "IdxFormatError",
    "Mnist",
    "MnistError",
    "MnistNotFoundError",
    "dataset",
    "load_arrays",
    "load_cifar10",
    "load_mnist",
    "parse_idx",
]
