"""A ``.tflite`` flatbuffer as plain data: its tensors (shape, type, constant values already
dequantised, quantisation) and its operators (builtin name, inputs, outputs, options).

The flatbuffer is read with the TFLite schema's generated Python (the copy TFLite Micro's
package ships, ``pip install 'tbn[tf]'``), which only reads data: nothing in the file runs.
Every index the file holds (tensor, buffer, operator code) is checked before use, and a file
the schema cannot read is a :class:`~tbn.errors.UsageError` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tbn.errors import MissingExtraError, UsageError
from tbn.files import FileError, read_bounded

MAX_TFLITE_BYTES = 1 << 31  # the flatbuffer's offsets are 32-bit
SCHEMA_VERSION = 3

# TensorType -> numpy dtype of the types a model's constants and activations may have here
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}
_TYPE_NAMES = {0: "FLOAT32", 1: "FLOAT16", 2: "INT32", 3: "UINT8", 4: "INT64", 7: "INT16", 9: "INT8"}


@dataclass
class Tensor:
    """One tensor: ``value`` is the constant's float (dequantised) or integer value, or None
    for an activation; ``scale``/``zero_point`` are per tensor or per ``axis``."""

    index: int
    name: str
    shape: tuple[int, ...]
    type: str
    value: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    axis: int = 0

    @property
    def quantised(self) -> bool:
        return self.scale is not None and self.type in ("INT8", "UINT8", "INT16")


@dataclass
class Operator:
    index: int
    name: str  # the builtin operator's name, as TFLite spells it (CONV_2D, ...)
    inputs: list[int]  # tensor indices; -1 for an optional input left out
    outputs: list[int]
    options: Any = None  # the schema's options object (Conv2DOptionsT, ...), or None


@dataclass
class TFLiteModel:
    """The one subgraph of a ``.tflite`` file."""

    path: Path
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    quantised: bool = field(init=False)

    def __post_init__(self) -> None:  # int8 arithmetic: any activation stored as an integer
        self.quantised = any(t.quantised and t.value is None for t in self.tensors)


def _schema() -> Any:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError as e:
        raise MissingExtraError("reading a .tflite file needs the tf extra: pip install 'tbn[tf]'") from e
    return schema_py_generated


def read_tflite(path: str | Path) -> TFLiteModel:
    """The model in ``path``, checked: a TFLite flatbuffer of schema version 3 with one subgraph,
    every index in range, every constant's bytes matching its shape and type."""
    path = Path(path)
    try:  # a folder, a FIFO, a device or a runaway file is refused before it is read
        buf = read_bounded(path, MAX_TFLITE_BYTES, "a .tflite model")
    except FileError as e:
        raise UsageError(str(e)) from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UsageError(f"{path}: not a TFLite flatbuffer (its identifier is {bytes(buf[4:8])!r}, "
                         "not b'TFL3')")
    schema = _schema()
    try:
        raw = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as e:  # a corrupt flatbuffer fails anywhere in the generated reader
        raise UsageError(f"{path}: a corrupt TFLite flatbuffer ({type(e).__name__}: {e})") from None
    if raw.version != SCHEMA_VERSION:
        raise UsageError(f"{path}: TFLite schema version {raw.version}; tbn reads version {SCHEMA_VERSION}")
    if len(raw.subgraphs or []) != 1:
        raise UsageError(f"{path}: {len(raw.subgraphs or [])} subgraphs; tbn reads models of one "
                         "(control flow and signatures of several graphs do not convert)")
    try:
        return _model(path, schema, raw, buf)
    except (IndexError, ValueError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: a corrupt TFLite model ({e})") from None


def _model(path: Path, schema: Any, raw: Any, buf: bytes) -> TFLiteModel:
    sg = raw.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = []
    for c in raw.operatorCodes or []:
        code = max(c.builtinCode, c.deprecatedBuiltinCode)  # the small codes live in the deprecated field
        codes.append(f"CUSTOM:{_text(c.customCode)}" if code == schema.BuiltinOperator.CUSTOM
                     else names.get(code, f"builtin {code}"))
    tensors = [_tensor(path, i, t, raw.buffers or [], buf) for i, t in enumerate(sg.tensors or [])]
    ops = []
    for i, op in enumerate(sg.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            raise UsageError(f"{path}: operator {i} names operator code {op.opcodeIndex} of {len(codes)}")
        ins, outs = [int(j) for j in _ints(op.inputs)], [int(j) for j in _ints(op.outputs)]
        for j in ins + outs:
            if not -1 <= j < len(tensors):
                raise UsageError(f"{path}: operator {i} ({codes[op.opcodeIndex]}) names tensor {j} of "
                                 f"{len(tensors)}")
        ops.append(Operator(i, codes[op.opcodeIndex], ins, outs, op.builtinOptions))
    inputs, outputs = [int(j) for j in _ints(sg.inputs)], [int(j) for j in _ints(sg.outputs)]
    if any(not 0 <= j < len(tensors) for j in inputs + outputs):
        raise UsageError(f"{path}: the graph's inputs or outputs name a tensor past its {len(tensors)}")
    return TFLiteModel(path, tensors, ops, inputs, outputs, _text(raw.description))


def _ints(v: Any) -> list[int]:
    return [] if v is None else [int(x) for x in v]


def _text(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")


def _tensor(path: Path, i: int, t: Any, buffers: list[Any], buf: bytes) -> Tensor:
    name, shape = _text(t.name), tuple(_ints(t.shape))
    kind = _TYPE_NAMES.get(t.type, f"type {t.type}")
    q = t.quantization
    has_scale = q is not None and q.scale is not None and len(q.scale) > 0
    scale = np.asarray(q.scale, np.float32) if has_scale else None
    zp = np.asarray(q.zeroPoint, np.int64) if scale is not None and q.zeroPoint is not None else None
    out = Tensor(i, name, shape, kind, scale=scale, zero_point=zp, axis=int(q.quantizedDimension) if q else 0)
    if not 0 <= t.buffer < len(buffers):
        raise UsageError(f"{path}: tensor {i} ({name}) names buffer {t.buffer} of {len(buffers)}")
    data = _bytes(buffers[t.buffer], buf)
    if data is None:
        return out
    if t.type not in _DTYPES:
        raise UsageError(f"{path}: tensor {i} ({name}) is a constant of {kind}, which tbn does not read")
    value = np.frombuffer(data, dtype=np.dtype(_DTYPES[t.type]).newbyteorder("<"))
    if value.size != int(np.prod(shape, dtype=np.int64)):
        raise UsageError(f"{path}: tensor {i} ({name}) holds {len(data)} bytes, not the {shape} {kind} "
                         "its shape states")
    out.value = _dequantised(out, value.reshape(shape))
    return out


def _bytes(b: Any, buf: bytes) -> bytes | None:
    """A buffer's bytes, inline or (models past 2 GB) at an offset in the file; None when empty."""
    if b.data is not None and len(b.data):
        return bytes(np.asarray(b.data, np.uint8))
    if b.offset > 1 and b.size:
        if b.offset + b.size > len(buf):
            raise ValueError(f"a buffer at offset {b.offset} of {b.size} bytes runs past the file's "
                             f"{len(buf)}")
        return bytes(buf[b.offset:b.offset + b.size])
    return None


def _dequantised(t: Tensor, v: np.ndarray) -> np.ndarray:
    """A constant's real value: an integer one with a quantisation scale as (q - zero) * scale
    (per ``axis`` when there are several scales); other integers (shapes, axes) as they are."""
    if t.scale is None or t.type in ("FLOAT32", "FLOAT16") or t.type == "INT64":
        return v.astype(np.float32) if t.type == "FLOAT16" else v
    n = t.scale.size
    if n > 1 and (not 0 <= t.axis < v.ndim or v.shape[t.axis] != n):
        raise ValueError(f"tensor {t.index} ({t.name}) has {n} scales on axis {t.axis} of shape {v.shape}")
    where = [1] * v.ndim
    if n > 1:
        where[t.axis] = n
    zp = np.zeros(n, np.int64) if t.zero_point is None or not t.zero_point.size else t.zero_point
    return ((v.astype(np.float64) - zp.reshape(where)) * t.scale.reshape(where)).astype(np.float32)
