"""Boot an emulated board in QEMU with its UART on a local TCP port.

QEMU listens with ``wait=on``, so no byte the firmware sends is lost before the host
connects; the board runs under ``-icount shift=0``, which makes instruction counts exact
and repeatable (see docs/protocol.md, "Cost").
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import serial

from tbn.boards import EmulatorSpec
from tbn.device import simavr
from tbn.errors import DeviceError

# the Debian package behind each emulator a board description names
QEMU_PACKAGES = {"qemu-system-arm": "qemu-system-arm", "qemu-system-riscv32": "qemu-system-misc"}


class EmulatorError(DeviceError):
    """QEMU is missing, did not start, or exited."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_port_free(port: int) -> None:
    """Refuse a TCP port that QEMU could not listen on, before QEMU fails on it quietly."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise EmulatorError(f"TCP port {port} on 127.0.0.1 cannot be listened on ({e.strerror}): "
                                "choose another --serial-port, or leave it out for a free one") from e


class Emulator:
    """A running emulator booted with ``elf``, as ``spec`` describes it (``board.emulation``;
    ``values`` fills the command's other placeholders); a context manager that always kills it."""

    def __init__(self, spec: EmulatorSpec, elf: str | Path, port: int | None = None, log: Path | None = None,
                 values: dict[str, object] | None = None) -> None:
        self.spec = spec
        self.values = dict(values or {})
        self.elf = Path(elf)
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        serial = f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on"
        cmd = [a.format(**self.values, elf=self.elf, serial=serial) for a in self.spec.command]
        return simavr.command(cmd, self.elf) if cmd[0] == simavr.NAME else cmd  # tbn's own (firmware/sim)

    def start(self, detach: bool = False) -> Emulator:
        """Boot QEMU; ``detach`` puts it in its own session, so it outlives the terminal."""
        cmd = self.command()
        if shutil.which(cmd[0]) is None:
            raise EmulatorError(
                f"{cmd[0]} not found: install Debian's {QEMU_PACKAGES.get(cmd[0], 'qemu-system')} "
                "(`make deps` does, as root)"
            )
        if not self.elf.is_file():
            raise EmulatorError(f"firmware {self.elf} not built (tbn-flash --board {self.spec.board})")
        check_port_free(self.port)
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=detach)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own descriptor
        return self

    def exited(self, wait: float = 0.0) -> bool:
        """Whether QEMU has exited, waiting up to ``wait`` seconds (a closed socket comes a
        moment before the exit status)."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def exit_error(self, when: str) -> EmulatorError:
        """The error for an emulator that has exited: its status and the end of its log."""
        code = None if self.proc is None else self.proc.returncode
        log = self.log.read_text(errors="replace")[-2000:].strip() if self.log and self.log.exists() else ""
        hint = f"; its output: {log}" if log else ("" if self.log else "; pass --log FILE to keep its output")
        return EmulatorError(f"{self.spec.program} ({self.spec.board}) exited with status {code} "
                             f"{when}{hint}")

    def _check_alive(self) -> None:
        if self.exited():
            raise self.exit_error("before its serial port opened")

    def connect(self, timeout: float = 10.0) -> serial.SerialBase:
        """Open the board's serial port (QEMU boots the board when this connects)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                return serial.serial_for_url(self.url, timeout=0.05)
            except serial.SerialException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmulatorError(f"QEMU did not open {self.url} within {timeout} s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
