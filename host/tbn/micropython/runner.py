"""Run a .tbn on a MicroPython target, input by input, beside the reference interpreter: the
outputs (compared as the parity rules say), the heap that ``tbn.Model`` took, and on the
emulated boards the instructions per inference (QEMU -icount: one instruction a nanosecond, read
through ``time.ticks_us``)."""

from __future__ import annotations

import binascii
from dataclasses import dataclass

import numpy as np

from tbn.format import read
from tbn.format.spec import NUMPY_DTYPES
from tbn.micropython.session import MicroPythonError, Session
from tbn.parity import matches, output_error
from tbn.runtime import Interpreter

# Runs on the device. The model is read in place where the filesystem allows it (ROMFS); inputs
# are slices of one file, passed raw (bytes) or as array('f') for the device to quantise.
DEVICE_CODE = """
import gc, time, binascii, array, tbn
def _view(p):
    f = open(p, 'rb')
    try:
        return memoryview(f)
    except TypeError:
        return f.read()
def _run(model, inputs, n, size, floats, reps):
    buf = _view(model)
    gc.collect(); free = gc.mem_free()
    m = tbn.Model(buf)
    gc.collect(); print('H', free - gc.mem_free())
    xs = _view(inputs)
    out = None
    for i in range(n):
        x = xs[i * size:(i + 1) * size]
        if floats:
            x = array.array('f', bytes(x))
        y = m.predict(x)
        print('Y', binascii.hexlify(bytes(y)).decode())
        if reps:
            out = y
            t = time.ticks_us()
            for _ in range(reps):
                m.predict(x, out)
            print('T', time.ticks_diff(time.ticks_us(), t))
"""


@dataclass
class Run:
    outputs: list[np.ndarray]  # as the model's output dtype
    reference: list[np.ndarray]
    heap_bytes: int  # what tbn.Model took from the GC heap
    instructions: float | None  # per inference (emulated boards, with reps)

    @property
    def equal(self) -> int:
        return sum(matches(o, r) for o, r in zip(self.outputs, self.reference, strict=True))

    @property
    def worst(self) -> float:
        return max(output_error(o, r) for o, r in zip(self.outputs, self.reference, strict=True))


def _batch(data: bytes, x: np.ndarray, floats: bool) -> tuple[np.ndarray, np.ndarray]:
    """(what the device gets, what the reference runs): float32 inputs for the device to
    quantise when ``floats``, else the inputs exactly as the model takes them."""
    prepared, _ = Interpreter(read(data)).prepare(x)
    return (np.ascontiguousarray(x, np.float32).reshape(len(prepared), -1) if floats else prepared), prepared


def stage(name: str, data: bytes, x: np.ndarray, floats: bool = False) -> dict[str, bytes]:
    """The files a run of ``x`` through model ``name`` needs on the target (give them to
    :func:`~tbn.micropython.session.open_target`): the model and its inputs."""
    return {name: data, f"{name}.in": _batch(data, x, floats)[0].tobytes()}


def run_model(session: Session, name: str, data: bytes, x: np.ndarray, floats: bool = False,
              reps: int = 0) -> Run:
    """Run ``x`` through model ``name`` (staged with :func:`stage`, holding ``data``); ``reps``
    more calls per input time it (emulated boards)."""
    batch, prepared = _batch(data, x, floats)
    prog = read(data)
    root = session.root
    code = DEVICE_CODE + (f"_run({root + '/' + name!r}, {root + '/' + name + '.in'!r}, {len(batch)}, "
                          f"{batch[0].nbytes}, {floats}, {reps})")
    lines = session.exec(code, timeout=60 + 2 * len(batch) * (1 + reps)).splitlines()
    out_dtype = NUMPY_DTYPES[prog.tensors[prog.output].dtype]
    outputs = [np.frombuffer(binascii.unhexlify(ln[2:].strip()), out_dtype) for ln in lines
               if ln.startswith("Y ")]
    if len(outputs) != len(batch):
        raise MicroPythonError(f"the device returned {len(outputs)} of {len(batch)} outputs: {lines[-3:]}")
    heap = next(int(ln[2:]) for ln in lines if ln.startswith("H "))
    ticks = [int(ln[2:]) for ln in lines if ln.startswith("T ")]
    per = 1000.0 * sum(ticks) / (reps * len(ticks)) if ticks and reps else None
    ref = Interpreter(prog)
    reference = [np.asarray(ref.run(xi)).reshape(-1) for xi in prepared]
    return Run(outputs, reference, heap, per)
