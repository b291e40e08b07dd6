"""Log filterbank energies in numpy, as MLPerf Tiny's streaming wake word reference computes
them with ``tf.signal`` (mlcommons/tiny ``streaming_wakeword/get_dataset.py``, ``get_lfbe_func``):

1. pre-emphasis ``x[n] - (1 - 2^-5) x[n-1]`` (a zero before the first sample);
2. a short-time Fourier transform: 64 ms frames (1,024 samples) every 32 ms (512), a symmetric
   Hamming window, a 1,024-point FFT, no padding at the end: 30 frames of 513 magnitudes;
3. the power ``|X|^2 / 1024``, clipped to ``[1e-30, its largest value]``;
4. 40 mel bands from 0 to 8,000 Hz (``tf.signal.linear_to_mel_weight_matrix``, as
   :func:`tbn.data.mfcc.mel_matrix`), ``10 log10``, then ``(x + 52) / 64`` clipped to [0, 1].

``tests/test_wakeword.py`` compares this with the same ``tf.signal`` calls on the same audio
(docs/datasets.md gives the tolerance).
"""

from __future__ import annotations

import numpy as np

from tbn.data.mfcc import CLIP_SAMPLES, SAMPLE_RATE, mel_matrix

FRAME, STEP, FFT = 1024, 512, 1024
BANDS = 40
FRAMES = 1 + (CLIP_SAMPLES - FRAME) // STEP  # 30
PREEMPHASIS = 1.0 - 2.0 ** -5
POWER_OFFSET = 52.0


def lfbe(clips: np.ndarray) -> np.ndarray:
    """``(n, 30, 40)`` float32 features of ``(n, 16000)`` waveforms in [-1, 1]."""
    x = np.asarray(clips, dtype=np.float32)
    x = x - np.float32(PREEMPHASIS) * np.pad(x, ((0, 0), (1, 0)))[:, :-1]
    starts = np.arange(FRAMES) * STEP
    frames = x[:, starts[:, None] + np.arange(FRAME)[None, :]]  # (n, 30, 1024)
    window = (0.54 - 0.46 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, n=FFT, axis=-1)).astype(np.float32) ** 2 / FRAME
    top = power.max(axis=(1, 2), keepdims=True)  # a clip's largest (the reference's one clip)
    power = np.minimum(np.maximum(power, np.float32(1e-30)), top)  # tf.clip_by_value's order
    mel = power @ mel_matrix(FFT // 2 + 1, BANDS, 0.0, SAMPLE_RATE / 2)
    with np.errstate(divide="ignore"):  # a silent clip's bands are 0: -inf, clipped to 0 below
        db = 10.0 * np.log10(mel)
    return np.clip((db + POWER_OFFSET) / 64.0, 0.0, 1.0).astype(np.float32)
