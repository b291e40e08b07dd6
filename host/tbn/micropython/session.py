"""Running MicroPython code on a target: the QEMU boards over their raw REPL (mpremote's
transport on the emulator's TCP serial port), the unix port as a subprocess. Files reach the
device in a ROMFS image mounted at /rom (read in place, no copy), or as host paths on unix."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tbn.boards import Target
from tbn.errors import DeviceError
from tbn.micropython.build import firmware, natmod, out_dir, romfs


class MicroPythonError(DeviceError):
    """MicroPython raised, or the target could not be reached."""


class Session:
    """Runs code on a target, returning what it printed; ``root`` is where its files are."""

    root: str

    def exec(self, code: str, timeout: float = 120) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else text.strip()


class ReplSession(Session):
    """A device's raw REPL at ``url`` (a serial port or socket://host:port)."""

    def __init__(self, url: str, root: str = "/rom", timeout: float = 10.0) -> None:
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.root = root
        self._error = TransportError
        deadline = time.monotonic() + timeout
        while True:  # an emulator opens its port a moment after it starts
            try:
                self._t = SerialTransport(url, baudrate=115200)
                break
            except (TransportError, OSError) as e:
                if time.monotonic() > deadline:
                    raise MicroPythonError(f"{url}: cannot open ({e})") from None
                time.sleep(0.1)
        try:
            self._t.enter_raw_repl(soft_reset=False, timeout_overall=timeout)
        except (TransportError, OSError) as e:
            self._t.close()
            raise MicroPythonError(f"{url}: no MicroPython raw REPL ({e})") from None

    def exec(self, code: str, timeout: float = 120) -> str:
        from mpremote.transport import TransportExecError

        try:
            out, err = self._t.exec_raw(code, timeout=timeout)
        except TransportExecError as e:
            raise MicroPythonError(_last_line(e.error_output)) from None
        except (self._error, OSError) as e:
            raise MicroPythonError(f"the device stopped answering ({e})") from None
        if err:
            raise MicroPythonError(_last_line(err.decode(errors="replace")))
        return out.decode(errors="replace")

    def write_file(self, dest: str, data: bytes) -> None:
        """Write ``data`` to ``dest`` on the device's filesystem (mpremote's cp)."""
        try:
            self._t.fs_writefile(dest, data)
        except (self._error, OSError) as e:
            raise MicroPythonError(f"cannot write {dest} on the device ({e})") from None

    def close(self) -> None:
        try:
            self._t.close()
        except OSError:
            pass


class UnixSession(Session):
    """MicroPython's unix port: each exec runs one process (``-c``)."""

    def __init__(self, exe: Path, root: str, mpy_path: str | None = None) -> None:
        self.exe, self.root = exe, root
        self.env = {**os.environ, "MICROPYPATH": mpy_path} if mpy_path else dict(os.environ)

    def exec(self, code: str, timeout: float = 120) -> str:
        try:
            r = subprocess.run([str(self.exe), "-X", "heapsize=8M", "-c", code], capture_output=True,
                               text=True, timeout=timeout, env=self.env, cwd=self.root)
        except subprocess.TimeoutExpired:
            raise MicroPythonError(f"MicroPython (unix) ran past {timeout} s") from None
        if r.returncode != 0:
            raise MicroPythonError(_last_line(r.stderr or r.stdout))
        return r.stdout


@contextmanager
def open_target(t: Target, files: dict[str, Path | bytes], with_module: bool = True,
                log: Path | None = None, mpy_arch: str | None = None) -> Iterator[Session]:
    """Boot ``t`` (or prepare the unix port) with ``files`` reachable under ``session.root``; the
    tbn module is built into the firmware, or (``with_module=False``) a stock firmware imports
    the native tbn.mpy for the target's architecture (or for ``mpy_arch``)."""
    files = dict(files)
    if not with_module:
        files["tbn.mpy"] = natmod(mpy_arch or t.arch)
    exe = firmware(t, with_module)
    if t.port == "unix":
        with tempfile.TemporaryDirectory() as d:
            for name, content in files.items():
                data = content if isinstance(content, bytes) else Path(content).read_bytes()
                (Path(d) / name).write_bytes(data)
            yield UnixSession(exe, d, mpy_path=d if not with_module else None)
        return
    from tbn.device.emulator import Emulator

    image = romfs(files, out_dir() / f"{t.name}-romfs.img")
    # its description (boards/micropython/) loads the ROMFS image where the port mounts /rom
    with Emulator(t.emulation, exe, log=log, values={"romfs": image}) as emu:
        session = ReplSession(emu.url)
        try:
            if not with_module:  # /rom holds tbn.mpy
                session.exec("import sys\nsys.path.insert(0, '/rom')")
            yield session
        finally:
            session.close()
