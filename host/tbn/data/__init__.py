"""Dataset loaders."""

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
    "MNIST_MEAN",
    "MNIST_STD",
    "IdxFormatError",
    "Mnist",
    "MnistError",
    "MnistNotFoundError",
    "load_mnist",
    "parse_idx",
]
