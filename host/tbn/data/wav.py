"""16-bit PCM WAV files, as the audio datasets hold them (Speech Commands, ToyCar): read with
the format checked, and written (the test fixtures in each release's layout)."""

from __future__ import annotations

import io
import wave

import numpy as np


def read_pcm16(data: bytes, where: str, error: type[Exception], what: str) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a mono 16-bit WAV file; ``error`` names anything else
    (``what``: whose clips these are, for the message)."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            if (w.getnchannels(), w.getsampwidth()) != (1, 2):
                raise error(f"{where}: {w.getnchannels()} channels of {8 * w.getsampwidth()} bits at "
                            f"{w.getframerate()} Hz; {what} clips are mono 16-bit")
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()
    except (wave.Error, EOFError) as e:
        raise error(f"{where}: not a WAV file ({e})") from None


def pcm16(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    """A WAV file of ``samples`` (clipped to int16; ``(n, channels)`` for several channels)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.asarray(samples), -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()
