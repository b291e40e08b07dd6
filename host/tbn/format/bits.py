"""Packed tile bits (numpy only): element ``j`` is bit ``j % 8`` of byte ``j // 8``,
least significant first; a set bit is +1, a clear bit -1; unused high bits are zero."""

from __future__ import annotations

import numpy as np


def pack_signs(signs: np.ndarray) -> np.ndarray:
    """Pack +1/-1 (any array, read flat; > 0 counts as +1) into uint8 bytes."""
    return np.packbits(np.asarray(signs).reshape(-1) > 0, bitorder="little")


def unpack_signs(packed: bytes | np.ndarray, n_bits: int) -> np.ndarray:
    """The first ``n_bits`` signs of ``packed`` as float32 +1/-1."""
    raw = packed if isinstance(packed, np.ndarray) else np.frombuffer(bytes(packed), dtype=np.uint8)
    if raw.size * 8 < n_bits:
        raise ValueError(f"{raw.size} bytes hold {raw.size * 8} bits, fewer than the {n_bits} asked for")
    bits = np.unpackbits(raw, bitorder="little", count=n_bits)
    return np.where(bits == 1, 1.0, -1.0).astype(np.float32)
