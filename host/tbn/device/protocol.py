"""The framed serial protocol of docs/protocol.md: frame encoding and reply layouts.

Pure bytes in, bytes out; no I/O. :class:`tbn.device.link.DeviceLink` does the talking.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<BBH")  # cmd, seq, len (after the two sync bytes)
CRC = struct.Struct("<I")
PROTOCOL_VERSION = 1
REPLY = 0x80


class Command(enum.IntEnum):
    INFO = 0x01
    LOAD_BEGIN = 0x02
    LOAD_CHUNK = 0x03
    LOAD_END = 0x04
    INFER = 0x05
    BENCH = 0x06
    ERROR = 0x7F  # the device could not read a frame


class Status(enum.IntEnum):
    OK = 0
    ERR_CRC = 1
    ERR_LENGTH = 2
    ERR_TIMEOUT = 3
    ERR_COMMAND = 4
    ERR_ARGS = 5
    ERR_NO_MODEL = 6
    ERR_MODEL = 7
    ERR_TOO_LARGE = 8
    ERR_LOAD_ORDER = 9
    ERR_LOAD_CRC = 10


STATUS_TEXT = {
    Status.ERR_CRC: "the device received a frame whose CRC did not match",
    Status.ERR_LENGTH: "the frame's length exceeds the device's maximum payload",
    Status.ERR_TIMEOUT: "the frame stopped arriving part-way",
    Status.ERR_COMMAND: "unknown command",
    Status.ERR_ARGS: "wrong payload size for the command (input tensor of the wrong size?)",
    Status.ERR_NO_MODEL: "no model is loaded on the device",
    Status.ERR_MODEL: "the runtime refused the model",
    Status.ERR_TOO_LARGE: "the model does not fit the device's model slot or arena",
    Status.ERR_LOAD_ORDER: "LOAD chunks out of order, or LOAD_END before the whole file",
    Status.ERR_LOAD_CRC: "the uploaded file's CRC32 does not match",
}

# tbn_status of firmware/lib/tbn/include/tbn.h, carried in the detail byte of ERR_MODEL
RUNTIME_STATUS = (
    "TBN_OK",
    "TBN_ERR_ARG",
    "TBN_ERR_TRUNCATED",
    "TBN_ERR_MAGIC",
    "TBN_ERR_VERSION",
    "TBN_ERR_CRC",
    "TBN_ERR_FLAGS",
    "TBN_ERR_TENSOR",
    "TBN_ERR_ARENA_PLAN",
    "TBN_ERR_QUANT",
    "TBN_ERR_CONST",
    "TBN_ERR_OPCODE",
    "TBN_ERR_OPERAND",
    "TBN_ERR_SHAPE",
    "TBN_ERR_ARENA_SIZE",
    "TBN_ERR_IO_SIZE",
)

# Errors about the frame itself: the request never reached its command, so it is retried.
LINK_ERRORS = frozenset({Status.ERR_CRC, Status.ERR_LENGTH, Status.ERR_TIMEOUT})


class CostUnit(enum.IntEnum):
    CYCLES = 0
    INSTRUCTIONS = 1


def encode(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame: sync, header, payload, CRC32 over header and payload."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the 65535-byte frame limit")
    body = HEADER.pack(cmd, seq & 0xFF, len(payload)) + payload
    return SYNC + body + CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes

    @property
    def status(self) -> Status | int:
        code = self.payload[0] if self.payload else -1
        try:
            return Status(code)
        except ValueError:
            return code

    @property
    def detail(self) -> int:
        return self.payload[1] if len(self.payload) > 1 else 0


class FrameDecoder:
    """Incremental decoder: feed bytes, get whole frames with a good CRC.

    Bytes before a sync pair and frames with a bad CRC or an oversized length are
    dropped (counted in ``dropped``), so a corrupted stream resynchronises by itself.
    """

    def __init__(self, max_payload: int = 0xFFFF) -> None:
        self.max_payload = max_payload
        self.buffer = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                del self.buffer[: max(0, len(self.buffer) - 1)]
                return frames
            del self.buffer[:start]
            if len(self.buffer) < 2 + HEADER.size:
                return frames
            cmd, seq, length = HEADER.unpack_from(self.buffer, 2)
            if length > self.max_payload:
                self.dropped += 1
                del self.buffer[:2]
                continue
            end = 2 + HEADER.size + length + CRC.size
            if len(self.buffer) < end:
                return frames
            body = bytes(self.buffer[2 : end - CRC.size])
            (crc,) = CRC.unpack_from(self.buffer, end - CRC.size)
            if zlib.crc32(body) != crc:
                self.dropped += 1
                del self.buffer[:2]
                continue
            frames.append(Frame(cmd, seq, body[HEADER.size :]))
            del self.buffer[:end]


INFO = struct.Struct("<8B6I")  # then MODEL_INFO at 32, 3 reserved bytes, the name at 52
INFO_NAME_OFFSET = 52


@dataclass(frozen=True)
class ModelInfo:
    model_bytes: int
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    int8: bool


MODEL_INFO = struct.Struct("<4IB")
MODEL_SOURCES = ("none", "embedded", "loaded")


@dataclass(frozen=True)
class DeviceInfo:
    """What INFO reports."""

    board: str
    protocol: int
    format_version: tuple[int, int]
    firmware_version: str
    cost_unit: CostUnit
    cost_resolution: int
    clock_hz: int
    arena_bytes: int
    slot_bytes: int
    max_payload: int
    model_source: str
    model: ModelInfo | None

    @classmethod
    def parse(cls, payload: bytes) -> DeviceInfo:
        if len(payload) < INFO_NAME_OFFSET:
            raise ValueError(f"INFO reply of {len(payload)} bytes, expected at least {INFO_NAME_OFFSET}")
        (
            _,
            proto,
            major,
            minor,
            unit,
            source,
            _,
            name_len,
            fw,
            clock,
            arena,
            slot,
            max_payload,
            resolution,
        ) = INFO.unpack_from(payload)
        model = ModelInfo(*MODEL_INFO.unpack_from(payload, INFO.size)[:4], bool(payload[INFO.size + 16]))
        name = payload[INFO_NAME_OFFSET : INFO_NAME_OFFSET + name_len].decode("ascii", "replace")
        return cls(
            board=name,
            protocol=proto,
            format_version=(major, minor),
            firmware_version=f"{fw >> 16}.{(fw >> 8) & 0xFF}.{fw & 0xFF}",
            cost_unit=CostUnit(unit),
            cost_resolution=resolution,
            clock_hz=clock,
            arena_bytes=arena,
            slot_bytes=slot,
            max_payload=max_payload,
            model_source=MODEL_SOURCES[source] if source < 3 else str(source),
            model=model if source else None,
        )
