"""Link faults on purpose, to show that tbn survives them or names them.

:class:`FaultyPort` damages request frames inside the host (soak tests). :class:`FaultProxy`
is a local TCP peer on 127.0.0.1 that sits between a host and a device (an emulator's UART)
and drops, corrupts and delays the bytes it carries, or closes the link; with no device
behind it, it is a peer that never answers, or only sends junk. It works with any program
that takes a ``socket://`` URL, so ``python -m tbn.device.faults`` can put it in front of a
running emulator for a manual test.
"""

from __future__ import annotations

import argparse
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass
class Faults:
    """What happens to the bytes going one way: each byte is lost with probability ``drop``
    or gets one bit flipped with probability ``corrupt``; each chunk the proxy reads (as the
    sender's writes arrive: a UART's bytes often one by one) is held ``delay_s`` seconds;
    after ``close_after`` bytes the proxy closes both ends (0: as soon as the host connects)."""

    drop: float = 0.0
    corrupt: float = 0.0
    delay_s: float = 0.0
    close_after: int | None = None


@dataclass
class Counts:
    """What the proxy did to one direction."""

    bytes: int = 0
    dropped: int = 0
    corrupted: int = 0


class FaultProxy:
    """A TCP peer on 127.0.0.1 (:attr:`url`) that forwards to ``upstream`` (``host:port`` or a
    ``socket://`` URL) with ``to_device`` and ``to_host`` faults applied; without ``upstream``
    it swallows what it gets and answers nothing, or random bytes with ``junk``. A context
    manager; serves one connection at a time until closed."""

    def __init__(self, upstream: str | None = None, *, to_device: Faults | None = None,
                 to_host: Faults | None = None, junk: bool = False, seed: int = 0) -> None:
        self.upstream = _address(upstream) if upstream else None
        self.to_device, self.to_host = to_device or Faults(), to_host or Faults()
        self.junk = junk
        self.rng = random.Random(seed)
        self.sent = {"to_device": Counts(), "to_host": Counts()}
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> FaultProxy:
        self._spawn(self._serve)
        return self

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        for t in self._threads:
            t.join(timeout=2)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _serve(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                host, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            try:
                device = socket.create_connection(self.upstream, timeout=5) if self.upstream else None
            except OSError:  # no device behind: the host sees its link close
                host.close()
                continue
            link = _Link(host, device)
            if self.to_host.close_after == 0:
                self._close(link)
                continue
            self._spawn(self._pump, link, host, device, self.to_device, "to_device")
            if device is not None:
                self._spawn(self._pump, link, device, host, self.to_host, "to_host")
            elif self.junk:
                self._spawn(self._babble, link, host)

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket | None, faults: Faults,
              way: str) -> None:
        src.settimeout(0.1)
        counts = self.sent[way]
        while not (self._stop.is_set() or link.closed):
            try:
                data = src.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            data = self._damage(bytearray(data), faults, counts)
            if faults.delay_s:
                time.sleep(faults.delay_s)
            if faults.close_after is not None and counts.bytes + len(data) >= faults.close_after:
                data = data[: max(0, faults.close_after - counts.bytes)]
                self._forward(dst, data, counts)
                break
            if not self._forward(dst, data, counts):
                break
        self._close(link)

    def _damage(self, data: bytearray, faults: Faults, counts: Counts) -> bytearray:
        if not (faults.drop or faults.corrupt):
            return data
        out = bytearray()
        with self._lock:  # one generator for both directions: a fixed seed gives one run
            for byte in data:
                r = self.rng.random()
                if r < faults.drop:
                    counts.dropped += 1
                elif r < faults.drop + faults.corrupt:
                    out.append(byte ^ (1 << self.rng.randrange(8)))
                    counts.corrupted += 1
                else:
                    out.append(byte)
        return out

    @staticmethod
    def _forward(dst: socket.socket | None, data: bytes, counts: Counts) -> bool:
        counts.bytes += len(data)
        if dst is None or not data:
            return True
        try:
            dst.sendall(data)
        except OSError:
            return False
        return True

    def _babble(self, link: _Link, host: socket.socket) -> None:
        while not (self._stop.is_set() or link.closed):
            with self._lock:
                noise = bytes(self.rng.randrange(256) for _ in range(64))
            if not self._forward(host, noise, self.sent["to_host"]):
                break
            time.sleep(0.01)

    def _close(self, link: _Link) -> None:
        with self._lock:
            if link.closed:
                return
            link.closed = True
        for s in (link.host, link.device):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


@dataclass
class _Link:
    host: socket.socket
    device: socket.socket | None
    closed: bool = False


def _address(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("socket://").rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tbn.device.faults", description=__doc__)
    p.add_argument("upstream", nargs="?", help="the device: socket://HOST:PORT (else no device)")
    p.add_argument("--drop", type=float, default=0.0, help="chance of losing each byte")
    p.add_argument("--corrupt", type=float, default=0.0, help="chance of a flipped bit in each byte")
    p.add_argument("--delay", type=float, default=0.0, help="seconds each chunk is held")
    p.add_argument("--close-after", type=int, help="close after this many bytes from the device")
    p.add_argument("--junk", action="store_true", help="with no device: send random bytes")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    both = {"drop": a.drop, "corrupt": a.corrupt, "delay_s": a.delay}
    with FaultProxy(a.upstream, to_device=Faults(**both), to_host=Faults(**both, close_after=a.close_after),
                    junk=a.junk, seed=a.seed) as proxy:
        print(f"faults on {proxy.url}; Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    print({k: vars(v) for k, v in proxy.sent.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
