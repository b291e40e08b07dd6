"""Talking to a device over any pyserial port: requests, retries, LOAD/INFER/BENCH.

Every request is retried until it gets its own reply: on a timeout, on an error frame
(the device could not read ours), or on a reply whose CRC fails. All commands are
idempotent (LOAD_CHUNK names its offset), so a retry never changes the outcome.
"""

from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
import serial

from tbn.device.build import FitError
from tbn.device.protocol import (
    BAUDRATE,
    BENCH_REPLY,
    BENCH_REQUEST,
    INFER_REPLY,
    LINK_ERRORS,
    LOAD_BEGIN_REQUEST,
    LOAD_CHUNK_REPLY,
    LOAD_CHUNK_REQUEST,
    LOAD_END_REPLY,
    MAX_BENCH_RUNS,
    PROFILE_COST,
    PROFILE_REPLY,
    REPLY,
    RUNTIME_STATUS,
    STATUS_TEXT,
    STREAMED,
    Command,
    DeviceInfo,
    Frame,
    FrameDecoder,
    ModelInfo,
    Status,
    encode,
)
from tbn.errors import DeviceError, UsageError

# What a port raises when the other end goes away: pyserial wraps most of it, but a real
# serial port that is unplugged can raise a bare OSError (EIO) from termios or select.
PORT_ERRORS = (serial.SerialException, OSError, ValueError)


class CommandError(DeviceError):
    """The device answered, and the answer is an error (not a link fault)."""

    def __init__(self, command: Command, status: Status | int, detail: int = 0) -> None:
        text = STATUS_TEXT.get(status, f"status {status}")  # type: ignore[call-overload]
        if status == Status.ERR_MODEL:
            text += f": {RUNTIME_STATUS[detail] if detail < len(RUNTIME_STATUS) else detail}"
        super().__init__(f"{command.name}: {text}")
        self.status = status
        self.detail = detail


class LinkError(DeviceError):
    """The port does not open, or gives no valid reply after every retry: the link or the
    device is down."""


@dataclass
class LinkStats:
    """What the link went through: requests, retries and why."""

    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    device_rejected: int = 0  # error frames: the device detected a corrupted request
    bad_replies: int = 0  # reply frames dropped for a bad CRC or a stray byte
    received: int = 0  # bytes read from the port
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Inference:
    output: bytes
    cost: int


@dataclass(frozen=True)
class Bench:
    runs: int
    total: int
    min: int
    max: int

    @property
    def mean(self) -> float:
        return self.total / self.runs


class DeviceLink:
    """A tbn device behind a pyserial port (``serial.serial_for_url`` URL or an open port).

    ``timeout`` bounds the wait for one reply beyond what the device itself may take (its
    INFO says how long it needs to notice a frame that stopped arriving: :meth:`sync` adds
    that); ``retries`` bounds the attempts per request.
    """

    def __init__(
        self,
        port: str | serial.SerialBase,
        *,
        baudrate: int = BAUDRATE,
        timeout: float = 2.0,
        retries: int = 8,
    ) -> None:
        if isinstance(port, str):
            try:
                port = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
            except PORT_ERRORS as e:  # pyserial's text repeats the port: keep only the reason
                reason = re.sub(r"^could not open port .*?: ", "", str(e), flags=re.IGNORECASE)
                raise LinkError(f"cannot open the serial port {port}: {reason}") from e
        self.port = port
        self.name = str(getattr(port, "port", None) or port)  # the URL or device path, for messages
        self.timeout = timeout
        self.retries = retries
        self.stats = LinkStats()
        self.decoder = FrameDecoder()
        self._seq = 0
        self._info: DeviceInfo | None = None
        self.stall_s = 0.0  # how long the device may take to give up on a broken frame

    def close(self) -> None:
        try:
            self.port.close()
        except PORT_ERRORS:
            pass  # already gone: nothing left to release

    def __enter__(self) -> DeviceLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the request loop -------------------------------------------------------------------
    def _read_frames(self, deadline: float) -> list[Frame]:
        while time.monotonic() < deadline:
            try:
                chunk = self.port.read(max(1, self.port.in_waiting))
            except PORT_ERRORS as e:  # the emulator exited, the cable came out
                raise self._closed(e) from e
            if chunk:
                self.stats.received += len(chunk)
                dropped = self.decoder.dropped
                frames = self.decoder.feed(chunk)
                self.stats.bad_replies += self.decoder.dropped - dropped
                if frames:
                    return frames
        return []

    def _send(self, data: bytes) -> None:
        """Drop what is still on the wire, then write ``data``."""
        try:
            self.port.reset_input_buffer()
            self.decoder.buffer.clear()
            self.port.write(data)
        except PORT_ERRORS as e:
            raise self._closed(e) from e

    def _closed(self, e: BaseException) -> LinkError:
        return LinkError(f"{self.name}: the serial link to the device closed ({e})")

    def request(self, cmd: Command, payload: bytes = b"", timeout: float | None = None) -> Frame:
        """Send one request and return its reply frame (status OK or a command error)."""
        if payload and len(payload) > self.device.max_payload and not self._streams(cmd, payload):
            raise UsageError(
                f"{cmd.name}: {len(payload)} bytes of payload, {self.device.board} takes at most "
                f"{self.device.max_payload} in one frame (an input tensor of the wrong size?)"
            )
        self.stats.requests += 1
        self._seq = (self._seq + 1) & 0xFF
        frame = encode(cmd, self._seq, payload)
        wait = (self.timeout if timeout is None else timeout) + self.stall_s
        for attempt in range(self.retries):
            if attempt:
                self.stats.retries += 1
            self._send(frame)
            deadline = time.monotonic() + wait
            reply = None
            while reply is None:
                frames = self._read_frames(deadline)
                if not frames:
                    self.stats.timeouts += 1
                    break
                for f in frames:
                    if f.cmd == Command.ERROR | REPLY and f.status in LINK_ERRORS:
                        self.stats.device_rejected += 1
                        name = Status(f.status).name
                        self.stats.by_status[name] = self.stats.by_status.get(name, 0) + 1
                        reply = False
                        break
                    if f.cmd == cmd | REPLY and f.seq == self._seq:
                        reply = f
                        break
            if reply:
                return reply
            # a device still inside a half-received frame gives up on it within stall_s
            time.sleep(min(self.stall_s, 0.05 * attempt))
        rejected = ", ".join(f"{n} x{k}" for n, k in sorted(self.stats.by_status.items()))
        raise LinkError(
            f"{self.name}: {cmd.name} got no valid reply after {self.retries} attempts "
            f"({self.stats.timeouts} timeouts; {self.stats.received} bytes received, "
            f"{self.stats.bad_replies} damaged frames; requests the device rejected as damaged: "
            f"{rejected or 'none'}); is the device running the tbn firmware?"
        )

    def sync(self, timeout: float = 10.0) -> DeviceInfo:
        """Wait until the device answers (a board that is still booting drops what it is sent),
        check that it speaks this protocol and reads this bytecode, and take its timing."""
        saved = self.timeout, self.retries
        self.timeout, self.retries = 0.2, max(1, int(timeout / 0.25))
        try:
            info = self.info()
        finally:
            self.timeout, self.retries = saved
        info.check_bytecode()
        self.stall_s = info.stall_s
        self.stats = LinkStats()
        return info

    def via(self, port: serial.SerialBase, *, timeout: float = 2.0, retries: int = 8) -> DeviceLink:
        """A link to the same device through another port object (a fault injector, say) that
        keeps what :meth:`sync` learned of the device."""
        link = DeviceLink(port, timeout=timeout, retries=retries)
        link.stall_s, link._info = self.stall_s, self._info
        return link

    def raw_exchange(self, data: bytes, timeout: float | None = None) -> Frame | None:
        """Write ``data`` as it is (no framing, no retry) and return the first frame that comes
        back, or None. For tests of how the device treats broken frames."""
        self._send(data)
        wait = (self.timeout if timeout is None else timeout) + self.stall_s
        frames = self._read_frames(time.monotonic() + wait)
        return frames[0] if frames else None

    def call(self, cmd: Command, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """request(), raising DeviceError unless the status is OK; returns the reply's payload."""
        reply = self.request(cmd, payload, timeout)
        if reply.status != Status.OK:
            raise CommandError(cmd, reply.status, reply.detail)
        return reply.payload

    # ---- commands ---------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        self._info = DeviceInfo.parse(self.call(Command.INFO))
        return self._info

    @property
    def device(self) -> DeviceInfo:
        return self._info if self._info is not None else self.info()

    def load(self, model: bytes, progress=None) -> ModelInfo:
        """Upload a .tbn into the device's RAM slot in acknowledged chunks and activate it."""
        info = self.device
        if len(model) > info.slot_bytes:
            raise FitError(
                f"the model is {len(model)} bytes, {info.board}'s model slot holds {info.slot_bytes}"
            )
        self.call(Command.LOAD_BEGIN, LOAD_BEGIN_REQUEST.pack(total=len(model), crc32=zlib.crc32(model)))
        chunk = info.max_payload - LOAD_CHUNK_REQUEST.size
        for offset in range(0, len(model), chunk):
            part = model[offset : offset + chunk]
            reply = self.call(Command.LOAD_CHUNK, LOAD_CHUNK_REQUEST.pack(offset=offset) + part)
            received = LOAD_CHUNK_REPLY.unpack(reply)["received"]
            if received != min(len(model), offset + chunk):
                raise LinkError(f"{self.name}: LOAD_CHUNK at {offset}: the device holds {received} bytes")
            if progress is not None:
                progress(min(len(model), offset + chunk))
        reply = self.call(Command.LOAD_END)
        self._info = None
        return ModelInfo.parse(reply, LOAD_END_REPLY.size)

    def _streams(self, cmd: Command, payload: bytes) -> bool:
        """Whether the device takes this payload, longer than a frame, into its arena."""
        model = self.device.model
        return cmd in STREAMED and model is not None and len(payload) == model.input_bytes

    def _cost_timeout(self, runs: int) -> float:
        return self.timeout + 5.0 * runs

    def infer(self, data: bytes | np.ndarray) -> Inference:
        """Run one inference on the active model: raw input bytes in, raw output bytes and cost out."""
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        reply = self.call(Command.INFER, raw, timeout=self._cost_timeout(1))
        return Inference(output=reply[INFER_REPLY.size :], cost=INFER_REPLY.unpack(reply)["cost"])

    def bench(self, data: bytes | np.ndarray, runs: int) -> Bench:
        if not 1 <= runs <= MAX_BENCH_RUNS:
            raise UsageError(f"BENCH runs must lie in 1..{MAX_BENCH_RUNS}, got {runs}")
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        request = BENCH_REQUEST.pack(runs=runs) + raw
        reply = self.call(Command.BENCH, request, timeout=self._cost_timeout(runs))
        b = BENCH_REPLY.unpack(reply)
        return Bench(b["runs"], b["total"], b["min"], b["max"])

    def profile(self, data: bytes | np.ndarray) -> list[int]:
        """One inference op by op: the cost of each op of the active model, in op order."""
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        try:
            reply = self.call(Command.PROFILE, raw, timeout=self._cost_timeout(1))
        except CommandError as e:
            if e.status == Status.ERR_COMMAND:
                raise UsageError("PROFILE: the device's firmware predates it; rebuild and flash it "
                                 "(tbn-flash) to profile per op") from e
            raise
        n = PROFILE_REPLY.unpack(reply)["ops"]
        body = reply[PROFILE_REPLY.size:]
        if len(body) != n * PROFILE_COST.size:
            raise LinkError(f"{self.name}: PROFILE: {len(body)} bytes of costs for {n} ops")
        return [PROFILE_COST.unpack(body, i * PROFILE_COST.size)["cost"] for i in range(n)]
