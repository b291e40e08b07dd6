"""A serial port wrapper that damages request frames on their way to the device (soak tests)."""

from __future__ import annotations

import random

import serial


class FaultyPort:
    """Delegates to ``port``; each written frame is, with probability ``rate``, damaged once:
    a flipped bit (most faults) or a dropped byte. Counts what it did."""

    def __init__(self, port: serial.SerialBase, rate: float, seed: int = 0, drop_share: float = 0.2) -> None:
        self.port = port
        self.rate = rate
        self.drop_share = drop_share
        self.rng = random.Random(seed)
        self.frames = 0
        self.flipped = 0
        self.dropped = 0

    @property
    def damaged(self) -> int:
        return self.flipped + self.dropped

    def write(self, data: bytes) -> int:
        self.frames += 1
        if self.rng.random() < self.rate:
            data = bytearray(data)
            i = self.rng.randrange(len(data))
            if self.rng.random() < self.drop_share:
                del data[i]
                self.dropped += 1
            else:
                data[i] ^= 1 << self.rng.randrange(8)
                self.flipped += 1
            data = bytes(data)
        return self.port.write(data)

    def __getattr__(self, name: str):
        return getattr(self.port, name)
