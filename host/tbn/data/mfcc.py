"""MFCC features in numpy, as MLPerf Tiny's keyword-spotting reference computes them with
``tf.signal`` (mlcommons/tiny ``keyword_spotting/get_dataset.py``, ``feature_type="mfcc"``):

1. the clip as float, divided by its largest sample (not its largest magnitude), zero-padded
   to one second;
2. a short-time Fourier transform: 30 ms frames (480 samples) every 20 ms (320), a periodic
   Hann window, a 512-point FFT, no padding at the end: 49 frames of 257 magnitudes;
3. 40 mel bands from 20 to 4,000 Hz, triangles on the HTK mel scale (1127 ln(1 + f/700)), as
   ``tf.signal.linear_to_mel_weight_matrix`` builds them (the DC bin left out);
4. ``ln(mel + 1e-6)``, a DCT-II scaled by ``1/sqrt(2 * 40)`` (``tf.signal.mfccs_from_log_mel_
   spectrograms``), and the first 10 coefficients: ``(49, 10)``.

``tests/test_speech_commands.py`` compares this with the same ``tf.signal`` calls on the same
audio (docs/datasets.md gives the tolerance).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
FRAME, STEP, FFT = 480, 320, 512
MEL_BANDS, LOW_HZ, HIGH_HZ = 40, 20.0, 4000.0
COEFFICIENTS = 10
FRAMES = 1 + (CLIP_SAMPLES - FRAME) // STEP  # 49


def normalise_clip(samples: np.ndarray) -> np.ndarray:
    """A clip's int16 samples as the reference feeds them: float, divided by the largest
    sample, zero-padded (or cut) to one second. A silent clip stays zeros."""
    x = np.asarray(samples, dtype=np.float32)[:CLIP_SAMPLES]
    top = x.max() if x.size else 0.0
    x = x / top if top > 0 else np.zeros_like(x)
    return np.pad(x, (0, CLIP_SAMPLES - len(x)))


def _mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def mel_matrix(bins: int = FFT // 2 + 1, bands: int = MEL_BANDS, low_hz: float = LOW_HZ,
               high_hz: float = HIGH_HZ) -> np.ndarray:
    """``(bins, bands)`` triangle weights from spectrogram bins to mel bands from ``low_hz``
    to ``high_hz`` (``tf.signal.linear_to_mel_weight_matrix``)."""
    linear = _mel(np.linspace(0.0, SAMPLE_RATE / 2, bins)[1:])[:, None]  # the DC bin gets no weight
    edges = np.linspace(_mel(np.float64(low_hz)), _mel(np.float64(high_hz)), bands + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (linear - lower) / (center - lower)
    falling = (upper - linear) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.vstack([np.zeros((1, bands)), weights]).astype(np.float32)


def _dct_matrix() -> np.ndarray:
    """``(MEL_BANDS, COEFFICIENTS)``: the DCT-II (2 sum x_n cos(pi k (2n+1) / 2N)) times
    1/sqrt(2N), for the first coefficients."""
    n, k = np.arange(MEL_BANDS)[:, None], np.arange(COEFFICIENTS)[None, :]
    dct = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * MEL_BANDS))
    return (dct / np.sqrt(2.0 * MEL_BANDS)).astype(np.float32)


def mfcc(clips: np.ndarray) -> np.ndarray:
    """``(n, 49, 10)`` float32 features of ``(n, 16000)`` normalised clips (:func:`normalise_clip`)."""
    clips = np.asarray(clips, dtype=np.float32)
    starts = np.arange(FRAMES) * STEP
    frames = clips[:, starts[:, None] + np.arange(FRAME)[None, :]]  # (n, 49, 480)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)  # periodic Hann
    spectrum = np.abs(np.fft.rfft(frames * window.astype(np.float32), n=FFT, axis=-1)).astype(np.float32)
    log_mel = np.log(spectrum @ mel_matrix() + 1e-6)
    return (log_mel @ _dct_matrix()).astype(np.float32)
