"""A real time series that ships inside a Python package, so it needs no download: the
intracellular membrane potential recording in matplotlib's sample data (``membrane.dat``, the
data of matplotlib's logo): 12,000 little-endian float32 samples, 0.5 ms apart (6 s), in units
of 100 mV (its examples plot ``100 * x`` as mV).

As forecasting examples: ``WINDOW`` past samples in, the next ``HORIZON`` out. The recording
splits in time: windows wholly inside its first ``TRAIN_SHARE`` train, windows wholly after it
test (none straddles the cut, so no test sample is ever seen in training). Both are
standardised with the training part's mean and deviation. The training windows come in one
fixed shuffled order, so that the first N (``--subset``, ``tbn compile``'s calibration) span
the recording, not its quiet first second; the test windows stay in time order.

Looked up in ``data_dir`` (a copy named ``membrane.dat``), then in matplotlib's sample data;
checked against its size and SHA-256 (matplotlib 3.8 to 3.11 ship the same bytes).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from tbn.errors import TbnError

FILE = "membrane.dat"
SAMPLES = 12_000
SHA256 = "ab795b429201a5bb575c6370d5e17090dfcfc317431aa9382f8e881366f43357"
SAMPLE_MS = 0.5
MV = 100.0  # the file's unit in mV
WINDOW = 128  # 64 ms of past
HORIZON = 16  # 8 ms ahead
TRAIN_SHARE = 0.8
SPLITS = ("train", "test")


class MembraneError(TbnError, RuntimeError):
    """The membrane recording cannot be found or read."""


def find(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir/membrane.dat`` when ``data_dir`` has one, else matplotlib's copy."""
    if data_dir is not None and (Path(data_dir) / FILE).is_file():
        return Path(data_dir) / FILE
    try:
        from matplotlib import cbook
    except ImportError:
        raise MembraneError(f"{FILE} ships with matplotlib, which is not installed: pip install matplotlib, "
                            f"or put a copy in the data folder (--data-dir)") from None
    path = Path(cbook.get_sample_data(FILE, asfileobj=False))
    if not path.is_file():
        raise MembraneError(f"this matplotlib ({path.parent}) has no {FILE}; put a copy in the data folder "
                            f"(--data-dir)")
    return path


def read_series(path: str | os.PathLike, verify: bool = True) -> np.ndarray:
    """The recording as float32 ``(12000,)``; a named error for a file of the wrong size, hash
    (``verify``) or with values that are not finite."""
    data = Path(path).read_bytes()
    if len(data) != SAMPLES * 4:
        raise MembraneError(f"{path} holds {len(data)} bytes; the recording is {SAMPLES} float32 samples "
                            f"({SAMPLES * 4} bytes): a truncated or different file")
    if verify and hashlib.sha256(data).hexdigest() != SHA256:
        raise MembraneError(f"{path} has the right size but not the recording's SHA-256 ({SHA256[:12]}...): "
                            f"a corrupt copy (verify_data=False reads it anyway)")
    series = np.frombuffer(data, "<f4").astype(np.float32)
    if not np.isfinite(series).all():
        raise MembraneError(f"{path} holds {int((~np.isfinite(series)).sum())} values that are not finite")
    return series


def windows(series: np.ndarray, window: int = WINDOW,
            horizon: int = HORIZON) -> tuple[np.ndarray, np.ndarray]:
    """Every stretch of ``window + horizon`` consecutive samples, one sample apart, as
    (inputs float32 ``(n, 1, window)``, targets float32 ``(n, horizon)``)."""
    n = len(series) - window - horizon + 1
    if n < 1:
        raise MembraneError(f"{len(series)} samples are fewer than one window of {window} and a horizon "
                            f"of {horizon}")
    span = np.lib.stride_tricks.sliding_window_view(series, window + horizon)[:n]
    return (np.ascontiguousarray(span[:, None, :window], np.float32),
            np.ascontiguousarray(span[:, window:], np.float32))


def load_membrane(split: str, data_dir: str | os.PathLike | None = None,
                  verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One split's standardised (inputs ``(n, 1, WINDOW)``, targets ``(n, HORIZON)``)."""
    if split not in SPLITS:
        raise MembraneError(f"the membrane recording has splits {', '.join(SPLITS)}, not {split!r}")
    series = read_series(find(data_dir), verify)
    cut = int(len(series) * TRAIN_SHARE)
    train = series[:cut]
    mean, std = float(train.mean()), float(train.std())
    if split == "test":
        return windows((series[cut:] - mean) / std)
    x, y = windows((train - mean) / std)
    order = np.random.default_rng(0).permutation(len(x))
    return x[order], y[order]


def scale_mv(data_dir: str | os.PathLike | None = None, verify: bool = True) -> float:
    """mV per standardised unit: what turns an error on the standardised targets into mV."""
    series = read_series(find(data_dir), verify)
    return float(series[: int(len(series) * TRAIN_SHARE)].std()) * MV


def persistence_rmse(x: np.ndarray, y: np.ndarray) -> float:
    """The error of repeating the last seen sample over the horizon: what a forecast must beat."""
    return float(np.sqrt(np.mean((y - x[:, 0, -1:]) ** 2)))
