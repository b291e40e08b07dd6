"""Dataset loaders."""

from tbn.data.mnist import (
    IdxFormatError,
    Mnist,
    MnistError,
    MnistNotFoundError,
    load_mnist,
    parse_idx,
)

__all__ = ["IdxFormatError", "Mnist", "MnistError", "MnistNotFoundError", "load_mnist", "parse_idx"]
