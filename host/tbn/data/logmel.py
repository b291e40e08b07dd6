"""Log-mel frames in numpy, as MLPerf Tiny's anomaly-detection reference computes them with
librosa 0.6.0 (mlcommons/tiny ``anomaly_detection/common.py``, ``file_to_vector_array`` with
``baseline.yaml``'s settings):

1. the 16-bit samples as float (``/ 32768``, librosa.load's scaling, ``sr=None``);
2. a short-time Fourier transform: 1,024-point frames every 512 samples, a periodic Hann
   window, the signal reflect-padded by 512 at both ends (``center=True``, librosa 0.6's
   ``pad_mode="reflect"``), power 2;
3. 128 mel bands from 0 Hz to half the sample rate on the Slaney mel scale (linear below
   1 kHz, logarithmic above), each triangle scaled to unit area (``htk=False, norm=1``);
4. ``10 log10(mel + 2.2e-16)`` (``20 / power * log10``, the epsilon ``sys.float_info.epsilon``);
5. the central frames only (50 to 249: MLPerf Tiny's change to the DCASE baseline), and every
   run of 5 consecutive frames as one vector of 640 (frame t's 128 bands, then frame t+1's):
   196 vectors a clip.

``tests/test_toycar.py`` compares steps 1 to 4 with librosa where it is installed
(docs/datasets.md gives the tolerance).
"""

from __future__ import annotations

import sys

import numpy as np

FFT, HOP, MELS, FRAMES = 1024, 512, 128, 5
CENTRE = (50, 250)  # the frames the reference keeps
VECTOR = MELS * FRAMES  # 640: ad01's input
_EPS = sys.float_info.epsilon


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: 3 mels a 200 Hz below 1 kHz, then logarithmic (27 mels an octave of 6.4)."""
    hz = np.asarray(hz, np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    return np.where(log_part, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_matrix(sample_rate: int, fft: int = FFT, mels: int = MELS) -> np.ndarray:
    """``(mels, fft // 2 + 1)`` float32 weights from power-spectrum bins to mel bands."""
    freqs = np.linspace(0.0, sample_rate / 2, fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # each triangle's area 1
    return weights.astype(np.float32)


def log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, 128)`` float32 log-mel energies (dB) of int16 ``samples`` (steps 1 to 4)."""
    y = np.asarray(samples, np.float32) / 32768.0
    if len(y) <= FFT // 2:
        raise ValueError(f"{len(y)} samples: too short to reflect-pad by {FFT // 2}")
    y = np.pad(y, FFT // 2, mode="reflect")
    n = 1 + (len(y) - FFT) // HOP
    frames = y[np.arange(n)[:, None] * HOP + np.arange(FFT)[None, :]]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FFT) / FFT)).astype(np.float32)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = power @ mel_matrix(sample_rate).T.astype(np.float64)
    return (10.0 * np.log10(mel + _EPS)).astype(np.float32)


def vectors(frames: np.ndarray) -> np.ndarray:
    """``(196, 640)`` float32: the central frames (:data:`CENTRE`) of a clip's log-mel, every 5
    in a row as one vector (step 5). A clip too short for them gives ``(0, 640)``, as the
    reference skips it."""
    central = frames[CENTRE[0]:CENTRE[1]]
    count = len(central) - FRAMES + 1
    if count < 1:
        return np.zeros((0, VECTOR), np.float32)
    return np.concatenate([central[t:t + count] for t in range(FRAMES)], axis=1).astype(np.float32)
