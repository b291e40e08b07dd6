"""The datasets a recipe can train on, by name: input shape and normalised arrays."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tbn.errors import UsageError


@dataclass(frozen=True)
class Dataset:
    name: str
    input_shape: tuple[int, int, int]  # channels, height, width
    classes: int
    # (split, data_dir, verify) -> (float32 images, standardised, NCHW; int64 labels)
    load: Callable[[str, str | os.PathLike | None, bool], tuple[np.ndarray, np.ndarray]]


def _mnist(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.mnist import load_mnist

    m = load_mnist(split, data_dir, verify=verify)
    return m.normalized(), m.labels.astype(np.int64)


def _cifar10(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.cifar10 import load_cifar10

    c = load_cifar10(split, data_dir, verify=verify)
    return c.normalized(), c.labels.astype(np.int64)


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset("mnist", (1, 28, 28), 10, _mnist),
    "cifar10": Dataset("cifar10", (3, 32, 32), 10, _cifar10),
}


def dataset(name: str) -> Dataset:
    """A dataset by name, or a :class:`UsageError` listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def load_arrays(name: str, split: str, data_dir: str | os.PathLike | None = None,
                verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A split of dataset ``name`` as the models see it: (float32 NCHW images, int64 labels)."""
    return dataset(name).load(split, data_dir, verify)
