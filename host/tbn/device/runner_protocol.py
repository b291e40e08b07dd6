"""The host side of MLCommons' MLPerf Tiny runner protocol, as a firmware built with
``tbn-flash --protocol mlperf`` answers it (firmware/app/mlperf.c; docs/mlperf.md): text
commands ending in ``%``, replies of ``\\r\\n``-ended lines ending with ``m-ready``.

MLCommons' own runner drives such a board too; this client is what tbn's tests and tools use.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import serial

from tbn.errors import DeviceError

READY = "m-ready"
DB_CHUNK = 31  # bytes per `db` line, as the runner sends them (62 hex digits in an 80-character line)


class RunnerProtocolError(DeviceError):
    """The board answered a command with ``e-[...]``, or not at all."""


@dataclass(frozen=True)
class Inference:
    """An ``infer N W`` reply: the outputs of the last inference, and the two timestamps (µs of
    the board's timer) around the N timed ones."""

    results: np.ndarray
    start_us: int
    end_us: int
    runs: int


class RunnerLink:
    """Commands to a board over ``port`` (an open pyserial port)."""

    def __init__(self, port: serial.SerialBase, timeout: float = 30.0) -> None:
        self.port, self.timeout, self._buf = port, timeout, b""

    def _line(self, deadline: float) -> str:
        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                raise RunnerProtocolError(f"no complete reply line within {self.timeout} s "
                                          f"(got {self._buf[-80:]!r})")
            try:
                self._buf += self.port.read(max(1, self.port.in_waiting))
            except (serial.SerialException, OSError) as e:
                raise RunnerProtocolError(f"the link closed while a reply was due ({e})") from None
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace").strip("\r\0")

    def ready(self) -> list[str]:
        """The lines up to the next ``m-ready`` (the boot banner, or a command's reply)."""
        deadline, lines = time.monotonic() + self.timeout, []
        while (line := self._line(deadline)) != READY:
            lines.append(line)
        return lines

    def send(self, command: str, check: bool = True) -> list[str]:
        """``command`` sent with its ``%``; its reply lines. ``check``: an ``e-[...]`` line raises."""
        try:
            self.port.write(command.encode() + b"%")
        except (serial.SerialException, OSError) as e:
            raise RunnerProtocolError(f"{command!r}: the link closed ({e})") from None
        lines = self.ready()
        errors = [ln for ln in lines if ln.startswith("e-[")]
        if check and errors:
            raise RunnerProtocolError(f"{command!r}: the board answered {errors[0]}")
        return lines

    def _field(self, command: str, pattern: str) -> str:
        for line in self.send(command):
            if m := re.fullmatch(pattern, line):
                return m[1]
        raise RunnerProtocolError(f"{command!r}: no line matching {pattern}")

    def name(self) -> str:
        return self._field("name", r"m-name-dut-\[(.*)\]")

    def model(self) -> str:
        return self._field("profile", r"m-model-\[(.*)\]")

    def load(self, data: bytes) -> None:
        """The input bytes, as the runner sends them: ``db load N``, then hex lines."""
        self.send(f"db load {len(data)}")
        done = []
        for i in range(0, len(data), DB_CHUNK):
            done = self.send("db " + data[i:i + DB_CHUNK].hex())
        if "m-load-done" not in done:
            raise RunnerProtocolError(f"the board did not say m-load-done after {len(data)} bytes")

    def infer(self, runs: int, warmups: int) -> Inference:
        lines = self.send(f"infer {runs} {warmups}")
        laps = [int(m[1]) for ln in lines if (m := re.fullmatch(r"m-lap-us-(\d+)", ln))]
        results = [m[1] for ln in lines if (m := re.fullmatch(r"m-results-\[(.*)\]", ln))]
        if len(laps) != 2 or len(results) != 1:
            raise RunnerProtocolError(f"infer {runs} {warmups}: expected two m-lap-us lines and one "
                                      f"m-results, got {lines}")
        values = np.array([float(v) for v in results[0].split(",")], dtype=np.float64)
        return Inference(values, laps[0], laps[1], runs)
