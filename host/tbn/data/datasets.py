"""The datasets a recipe can train on, by name: input shape and normalised arrays."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tbn.errors import UsageError


@dataclass(frozen=True)
class Dataset:
    name: str
    input_shape: tuple[int, ...]  # channels, then height and width (or points, or samples)
    classes: int  # 0 for a forecast or an anomaly detector
    # (split, data_dir, verify) -> (inputs as stored: float32, standardised, NCHW, or pixel bytes
    # (:func:`as_float`); int64 labels, float32 targets for a forecast, or int64 (machine, clip,
    # anomalous) rows for anomaly detection)
    load: Callable[[str, str | os.PathLike | None, bool], tuple[np.ndarray, np.ndarray]]
    task: str = "classify"  # or "forecast" or "anomaly": tbn.train.objective reads it


def as_float(x: Any) -> Any:
    """Inputs as a model reads them (a numpy array or a torch tensor): float32 as they are, or
    pixel bytes (uint8) over 255. A dataset holds bytes where float32 would not fit in memory
    (Visual Wake Words' 105k training images: 2.9 GB as bytes, 11.6 GB as float32); the training
    loop converts a batch at a time."""
    if str(x.dtype) not in ("uint8", "torch.uint8"):
        return x
    return x.float() / 255.0 if hasattr(x, "float") else x.astype(np.float32) / np.float32(255.0)


def _mnist(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.mnist import load_mnist

    m = load_mnist(split, data_dir, verify=verify)
    return m.normalized(), m.labels.astype(np.int64)


def area_matrix(size: int, out: int) -> np.ndarray:
    """The ``(out, size)`` matrix of adaptive average pooling along one axis (PyTorch's
    ``adaptive_avg_pool2d``): row i averages pixels ``floor(i*size/out)`` to
    ``ceil((i+1)*size/out) - 1``."""
    m = np.zeros((out, size), np.float32)
    for i in range(out):
        lo, hi = (i * size) // out, -(-((i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def downsample(images: np.ndarray, out: int) -> np.ndarray:
    """Float images ``(n, C, H, W)`` area-averaged to ``(n, C, out, out)``: how the small-RAM
    recipes see MNIST (:func:`mnist16`), on the host, before the device gets the input."""
    rows, cols = area_matrix(images.shape[2], out), area_matrix(images.shape[3], out)
    return np.ascontiguousarray(np.einsum("ih,nchw,jw->ncij", rows, images, cols), dtype=np.float32)


# MNIST's outer 2 pixels hold 0.24% of the ink: cropping them first lets each of the 16x16
# pixels average 1.5x1.5 source pixels (on average) of digit instead of 1.75x1.75 with border.
MNIST16_CROP = 2


def mnist16(images: np.ndarray) -> np.ndarray:
    """Normalised 28x28 MNIST ``(n, 1, 28, 28)`` as the small-RAM recipes see it: the 2-pixel
    border cropped, then area-averaged to 16x16 (24x24 to 16x16 on the host)."""
    c = MNIST16_CROP
    return downsample(images[:, :, c:-c, c:-c], 16)


def _mnist16(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    x, y = _mnist(split, data_dir, verify)
    return mnist16(x), y


MNIST_POINTS = 128  # points sampled from each digit's ink
_INK = 64  # a pixel is ink from this grey level (of 255)


def mnist_points(images: np.ndarray, points: int = MNIST_POINTS, seed: int = 0) -> np.ndarray:
    """MNIST digits as 2-D point sets, as PointNet reads them: ``points`` pixels drawn (with
    replacement) from each digit's ink (grey >= 64 of 255), jittered within the pixel, as
    ``(x, y)`` in [-1, 1] (x right, y up): float32 ``(n, 2, points)``, in no particular order.
    The draw depends on ``seed`` and the image's index only, so a split is the same every time."""
    images = np.asarray(images)
    out = np.zeros((len(images), 2, points), np.float32)
    rng = np.random.default_rng(seed)
    for i, img in enumerate(images.reshape(len(images), 28, 28)):
        rows, cols = np.nonzero(img >= _INK)
        if not len(rows):  # a blank image: every point at the centre
            continue
        k = rng.integers(0, len(rows), points)
        jitter = rng.uniform(-0.5, 0.5, (2, points))
        out[i, 0] = (cols[k] + jitter[0] - 13.5) / 14.0
        out[i, 1] = (13.5 - rows[k] + jitter[1]) / 14.0
    return out


def _mnist_points(split: str, data_dir: str | os.PathLike | None,
                  verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.mnist import load_mnist

    m = load_mnist(split, data_dir, verify=verify)
    return mnist_points(m.images, seed={"train": 0, "test": 1}.get(split, 2)), m.labels.astype(np.int64)


def _cifar10(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.cifar10 import load_cifar10

    c = load_cifar10(split, data_dir, verify=verify)
    return c.normalized(), c.labels.astype(np.int64)


def _speech_commands(split: str, data_dir: str | os.PathLike | None,
                     verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.speech_commands import load_speech_commands

    return load_speech_commands(split, data_dir, verify=verify)


def _wakeword(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.wakeword import load_wakeword

    return load_wakeword(split, data_dir, verify=verify)


def _membrane(split: str, data_dir: str | os.PathLike | None,
              verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.membrane import load_membrane

    return load_membrane(split, data_dir, verify)


def _vww(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.vww import load_vww

    v = load_vww(split, data_dir, verify=verify)
    return v.images, v.labels.astype(np.int64)  # bytes: the model reads them over 255 (as_float)


def _modelnet40(split: str, data_dir: str | os.PathLike | None,
                verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.modelnet40 import load_modelnet40

    return load_modelnet40(split, data_dir)  # no published checksum to verify against


def _toycar(split: str, data_dir: str | os.PathLike | None, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    from tbn.data.toycar import load_toycar

    return load_toycar(split, data_dir)  # no published checksum to verify against


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset("mnist", (1, 28, 28), 10, _mnist),
    "mnist16": Dataset("mnist16", (1, 16, 16), 10, _mnist16),
    # PointNet's view of MNIST: each digit as 128 (x, y) points from its ink
    "mnist-points": Dataset("mnist-points", (2, MNIST_POINTS), 10, _mnist_points),
    # PointNet's ModelNet40: 1,024 (x, y, z) points a shape, 40 classes (tbn.data.modelnet40)
    "modelnet40": Dataset("modelnet40", (3, 1024), 40, _modelnet40),
    "cifar10": Dataset("cifar10", (3, 32, 32), 10, _cifar10),
    # MLPerf Tiny's visual wake words: person or not, 96x96 RGB scaled by 1/255 (tbn.data.vww)
    "vww": Dataset("vww", (3, 96, 96), 2, _vww),
    # MLPerf Tiny's keyword spotting: 49x10 MFCC (tbn.data.mfcc), 12 classes
    "speech_commands": Dataset("speech_commands", (1, 49, 10), 12, _speech_commands),
    # MLPerf Tiny's streaming wake word: marvin, silence or other, 30x40 log filterbank energies
    # channels first (tbn.data.wakeword)
    "wakeword": Dataset("wakeword", (40, 30, 1), 3, _wakeword),
    # a time series: 128 samples of a membrane potential in, the next 16 out (tbn.data.membrane)
    "membrane": Dataset("membrane", (1, 128), 0, _membrane, "forecast"),
    # MLPerf Tiny's anomaly detection: ToyCar clips as 640-value log-mel vectors (tbn.data.toycar)
    "toycar": Dataset("toycar", (640,), 0, _toycar, "anomaly"),
}


def dataset(name: str) -> Dataset:
    """A dataset by name, or a :class:`UsageError` listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}") from None


def mnist_test(input_shape: tuple[int, ...], n: int | None = None,
               data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` MNIST test images as a model whose input is ``input_shape`` takes them
    (28x28, or cropped and averaged to 16x16 for the small-RAM recipes: :func:`mnist16`), and
    their int64 labels. Other shapes get the 28x28 images, for the caller's shape check to
    refuse."""
    from tbn.data.mnist import load_mnist

    test = load_mnist("test", data_dir)
    x = test.normalized(n)
    if tuple(input_shape) == DATASETS["mnist16"].input_shape:
        x = mnist16(x)
    return x, test.labels[: len(x)].astype(np.int64)


def test_split(name: str, input_shape: tuple[int, ...], n: int | None = None,
               data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` test inputs of dataset ``name`` and their labels (int64) or, for a
    forecast, targets (float32). MNIST comes as ``input_shape`` takes it (:func:`mnist_test`)."""
    if name == "mnist":
        return mnist_test(input_shape, n, data_dir)
    x, y = load_arrays(name, "test", data_dir)
    return x[:n], y[:n]


def dataset_for_input(shape: tuple[int, ...]) -> Dataset:
    """The dataset whose one input has ``shape`` (C, H, W): which test images a compiled model
    takes. A :class:`UsageError` when none has it."""
    for d in DATASETS.values():
        if tuple(shape) == d.input_shape:
            return d
    known = ", ".join(f"{d.name} {d.input_shape}" for d in DATASETS.values())
    raise UsageError(f"no dataset has inputs of shape {tuple(shape)}; known: {known}")


def load_arrays(name: str, split: str, data_dir: str | os.PathLike | None = None,
                verify: bool = True, stored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A split of dataset ``name`` as the models see it: (float32 NCHW images, int64 labels);
    ``stored``: the inputs as the dataset holds them (pixel bytes for some: :func:`as_float`)."""
    x, y = dataset(name).load(split, data_dir, verify)
    return (x if stored else as_float(x)), y
