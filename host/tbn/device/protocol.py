"""The framed serial protocol of docs/protocol.md: the one definition of it.

Commands, statuses, limits and every payload layout are defined here once;
``python -m tbn.device.cheader`` generates the firmware's ``firmware/app/tbn_protocol.h``
from them (a test fails when the committed header is stale). Pure bytes in, bytes out;
no I/O: :class:`tbn.device.link.DeviceLink` does the talking.
"""

from __future__ import annotations

import enum
import re
import struct
import zlib
from dataclasses import dataclass

from tbn import __version__
from tbn.errors import TbnError, UsageError
from tbn.format.spec import VERSION_MAJOR

# Version 3: model info carries the active model's CRC32, so a host can tell whether the
# device already holds a model before uploading it. Byte 1 of the INFO reply holds this
# number in every version, so a host can always tell which protocol a device speaks.
PROTOCOL_VERSION = 4  # 4: INFER and PROFILE inputs stream into the arena (STREAMED)
SYNC = b"\xa5\x5a"
HEADER = struct.Struct("<BBH")  # cmd, seq, len (after the two sync bytes)
CRC = struct.Struct("<I")
REPLY = 0x80  # OR-ed into the command code of every reply
MAX_PAYLOAD = 8192  # the device's frame buffer
BAUDRATE = 115200  # real UARTs, 8N1
MAX_BENCH_RUNS = 100_000
FIRMWARE_VERSION = tuple(int(x) for x in __version__.split(".")[:3])


class ProtocolError(TbnError, RuntimeError):
    """The device speaks another protocol or bytecode version, or sent a malformed reply."""


class Command(enum.IntEnum):
    INFO = 0x01
    LOAD_BEGIN = 0x02
    LOAD_CHUNK = 0x03
    LOAD_END = 0x04
    INFER = 0x05
    BENCH = 0x06
    PROFILE = 0x07  # the cost of each op of one inference
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
    "TBN_ERR_NOT_BUILT",
)

# Requests whose payload is the active model's input: a device takes it at that size even when
# it exceeds max_payload, receiving it straight into its arena (boards with little RAM).
STREAMED = frozenset({Command.INFER, Command.PROFILE})

# Errors about the frame itself: the request never reached its command, so it is retried.
LINK_ERRORS = frozenset({Status.ERR_CRC, Status.ERR_LENGTH, Status.ERR_TIMEOUT})


class CostUnit(enum.IntEnum):
    CYCLES = 0
    INSTRUCTIONS = 1


class ModelSource(enum.IntEnum):
    NONE = 0
    EMBEDDED = 1  # in flash, built in by tbn-flash --model
    LOADED = 2  # uploaded with LOAD_* into the RAM slot


@dataclass(frozen=True)
class Layout:
    """A payload layout: a little-endian struct with named fields (pad bytes ``x`` unnamed)."""

    name: str
    struct: struct.Struct
    fields: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.struct.size

    def unpack(self, payload: bytes, offset: int = 0) -> dict[str, int]:
        if len(payload) < offset + self.size:
            raise ProtocolError(
                f"{self.name} of {len(payload) - offset} bytes, expected at least {self.size}"
            )
        return dict(zip(self.fields, self.struct.unpack_from(payload, offset), strict=True))

    def pack(self, **values: int) -> bytes:
        return self.struct.pack(*(values[f] for f in self.fields))


def _layout(name: str, fmt: str, *fields: str) -> Layout:
    """``fmt`` as struct writes it; counts expand to one field each ("4I" is four fields), but
    pad bytes stay unnamed ("17x")."""
    expanded = re.sub(r"(\d+)([^x\d])", lambda m: m.group(2) * int(m.group(1)), fmt)
    return Layout(name, struct.Struct("<" + expanded), fields)


# Every reply payload starts with status and detail (the runtime's tbn_status for ERR_MODEL).
STATUS_REPLY = _layout("status reply", "BB", "status", "detail")
MODEL_INFO = _layout(
    "model info", "5IB", "model_bytes", "crc32", "input_bytes", "output_bytes", "arena_bytes", "int8"
)
_INFO_HEAD = "8B6I"
INFO_MODEL_OFFSET = struct.calcsize("<" + _INFO_HEAD)  # MODEL_INFO sits inside INFO_REPLY here
INFO_REPLY = _layout(
    "INFO reply",
    f"{_INFO_HEAD}{MODEL_INFO.size}xxHH",
    "status", "protocol", "format_major", "format_minor", "cost_unit", "model_source", "reserved",
    "name_len", "firmware_version", "clock_hz", "arena_bytes", "slot_bytes", "max_payload",
    "cost_resolution", "frame_timeout_ms", "wake_ms",
)
INFO_NAME_OFFSET = INFO_REPLY.size  # then name_len ASCII bytes
LOAD_BEGIN_REQUEST = _layout("LOAD_BEGIN request", "II", "total", "crc32")
LOAD_BEGIN_REPLY = _layout("LOAD_BEGIN reply", "BBI", "status", "detail", "slot_bytes")
LOAD_CHUNK_REQUEST = _layout("LOAD_CHUNK request", "I", "offset")  # then the bytes
LOAD_CHUNK_REPLY = _layout("LOAD_CHUNK reply", "BBI", "status", "detail", "received")
LOAD_END_REPLY = _layout("LOAD_END reply", "BB", "status", "detail")  # then MODEL_INFO
INFER_REPLY = _layout("INFER reply", "BBxxQ", "status", "detail", "cost")  # then the output
BENCH_REQUEST = _layout("BENCH request", "I", "runs")  # then the input
BENCH_REPLY = _layout("BENCH reply", "BBxxIQQQ", "status", "detail", "runs", "total", "min", "max")
PROFILE_REPLY = _layout("PROFILE reply", "BBH", "status", "detail", "ops")  # then ops x cost u64
PROFILE_COST = _layout("PROFILE cost", "Q", "cost")
LAYOUTS = (STATUS_REPLY, MODEL_INFO, INFO_REPLY, LOAD_BEGIN_REQUEST, LOAD_BEGIN_REPLY,
           LOAD_CHUNK_REQUEST, LOAD_CHUNK_REPLY, LOAD_END_REPLY, INFER_REPLY, BENCH_REQUEST, BENCH_REPLY,
           PROFILE_REPLY, PROFILE_COST)


def encode(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame: sync, header, payload, CRC32 over header and payload."""
    if len(payload) > 0xFFFF:
        raise UsageError(f"payload of {len(payload)} bytes exceeds the 65535-byte frame limit")
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


@dataclass(frozen=True)
class ModelInfo:
    model_bytes: int
    crc32: int  # zlib.crc32 of the whole .tbn file
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    int8: bool

    @classmethod
    def parse(cls, payload: bytes, offset: int) -> ModelInfo:
        m = MODEL_INFO.unpack(payload, offset)
        return cls(m["model_bytes"], m["crc32"], m["input_bytes"], m["output_bytes"], m["arena_bytes"],
                   bool(m["int8"]))

    def holds(self, model: bytes) -> bool:
        """Whether this is the model in ``model`` (same size and CRC32)."""
        return self.model_bytes == len(model) and self.crc32 == zlib.crc32(model)


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
    frame_timeout_ms: int  # the longest gap between two bytes of one frame
    wake_ms: int  # the longest the device sleeps before it looks at its clock again

    @property
    def stall_s(self) -> float:
        """The longest the device takes to answer a frame that stopped arriving part-way."""
        return (self.frame_timeout_ms + self.wake_ms) / 1000

    def check_bytecode(self) -> None:
        """Raise :class:`ProtocolError` unless the device's runtime reads this tbn's bytecode."""
        if self.format_version[0] != VERSION_MAJOR:
            raise ProtocolError(
                f"{self.board}'s runtime reads bytecode {self.format_version[0]}.x, this tbn writes "
                f"{VERSION_MAJOR}.x: rebuild and flash its firmware from this checkout "
                "(tbn-flash --board NAME)"
            )

    @classmethod
    def parse(cls, payload: bytes) -> DeviceInfo:
        """Decode an INFO reply, first checking that the device speaks this protocol."""
        if len(payload) >= 2 and payload[1] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the device speaks protocol version {payload[1]}, this tbn speaks {PROTOCOL_VERSION}: "
                "rebuild and flash its firmware from this checkout (tbn-flash --board NAME)"
            )
        f = INFO_REPLY.unpack(payload)
        if f["cost_unit"] not in set(CostUnit):
            raise ProtocolError(f"INFO reports cost unit {f['cost_unit']}, not one this tbn knows")
        if f["max_payload"] <= LOAD_CHUNK_REQUEST.size:
            raise ProtocolError(
                f"INFO reports a maximum payload of {f['max_payload']} bytes, too small to LOAD a model"
            )
        source = f["model_source"]
        fw = f["firmware_version"]
        return cls(
            board=payload[INFO_NAME_OFFSET : INFO_NAME_OFFSET + f["name_len"]].decode("ascii", "replace"),
            protocol=f["protocol"],
            format_version=(f["format_major"], f["format_minor"]),
            firmware_version=f"{fw >> 16}.{(fw >> 8) & 0xFF}.{fw & 0xFF}",
            cost_unit=CostUnit(f["cost_unit"]),
            cost_resolution=f["cost_resolution"],
            clock_hz=f["clock_hz"],
            arena_bytes=f["arena_bytes"],
            slot_bytes=f["slot_bytes"],
            max_payload=f["max_payload"],
            model_source=ModelSource(source).name.lower() if source in set(ModelSource) else str(source),
            model=ModelInfo.parse(payload, INFO_MODEL_OFFSET) if source else None,
            frame_timeout_ms=f["frame_timeout_ms"],
            wake_ms=f["wake_ms"],
        )
