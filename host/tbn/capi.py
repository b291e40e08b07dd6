"""ctypes binding to the C runtime (``firmware/lib/tbn``) built for the host.

The library is ``$TBN_LIBTBN`` or ``build/host/libtbn.so`` in the source checkout
(``make lib`` builds it). Used by the tests and ``tbn run --engine c`` to run the very C
code the boards run and compare it with the reference interpreter.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from tbn.errors import TbnError
from tbn.format import Program, TbnFormatError, read
from tbn.paths import build_dir
from tbn.runtime import EngineBase, Interpreter
from tbn.runtime.kernels import NUMPY_OF

LIB_PATH = build_dir() / "host" / "libtbn.so"


class CRuntimeError(TbnError, RuntimeError):
    """The C runtime library is missing, or refused a run."""


class _Model(ctypes.Structure):
    """Mirror of ``tbn_model`` in tbn.h."""

    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("arena_size", ctypes.c_uint32)] + \
        [(n, ctypes.c_uint16) for n in ("n_tensors", "n_tiles", "n_scales", "n_biases", "n_dense",
                                        "n_ops", "output", "minor")] + \
        [(n, ctypes.c_uint32) for n in ("off_tensors", "off_arena", "off_quant", "off_tiles", "off_scales",
                                        "off_biases", "off_dense", "off_ops", "ops_size", "error_item")]


def load_library(path: str | os.PathLike | None = None) -> ctypes.CDLL:
    """Open the C runtime's shared library, with a clear message when it is not built."""
    lib_path = Path(path or os.environ.get("TBN_LIBTBN") or LIB_PATH)
    if not lib_path.is_file():
        raise CRuntimeError(f"the C runtime library {lib_path} is not built: run `make lib` "
                            f"(or point TBN_LIBTBN at a libtbn.so)")
    lib = ctypes.CDLL(str(lib_path))
    p = ctypes.POINTER(_Model)
    lib.tbn_model_init.argtypes = [p, ctypes.c_void_p, ctypes.c_size_t]
    lib.tbn_strerror.restype = ctypes.c_char_p
    lib.tbn_strerror.argtypes = [ctypes.c_int]
    for name in ("tbn_arena_size", "tbn_input_size", "tbn_output_size"):
        getattr(lib, name).restype = ctypes.c_uint32
        getattr(lib, name).argtypes = [p]
    lib.tbn_run.argtypes = [p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                            ctypes.c_void_p, ctypes.c_size_t]
    lib.tbn_op_count.restype = ctypes.c_uint32
    lib.tbn_op_count.argtypes = [p]
    lib.tbn_invoke_ops.argtypes = [p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint32, ctypes.c_uint32]
    for name in ("tbn_input_ptr", "tbn_output_ptr"):
        getattr(lib, name).restype = ctypes.c_void_p
        getattr(lib, name).argtypes = [p, ctypes.c_void_p]
    return lib


class CRuntime(EngineBase):
    """Runs ``.tbn`` bytes (the file's own, as a device would) through the C runtime; same
    inputs and outputs as :class:`tbn.runtime.Interpreter` (the ``c`` engine of
    :mod:`tbn.engines`)."""

    name = "c"

    def __init__(self, data: bytes, lib: ctypes.CDLL | None = None) -> None:
        self._lib = lib or load_library()
        self._ref = Interpreter(read(data))  # shapes, dtypes and input quantisation
        # the model must stay alive and 4-byte aligned: keep it in a uint32 array
        self._buf = np.zeros((len(data) + 3) // 4, dtype=np.uint32)
        self._buf.view(np.uint8)[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        self._model = _Model()
        status = self._lib.tbn_model_init(ctypes.byref(self._model), self._buf.ctypes.data, len(data))
        if status != 0:
            raise TbnFormatError(f"C runtime: {self._lib.tbn_strerror(status).decode()} "
                                 f"(item {self._model.error_item})")
        self._arena = np.zeros((self._lib.tbn_arena_size(ctypes.byref(self._model)) + 3) // 4 + 1,
                               dtype=np.uint32)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run one input or a batch; returns the output tensor as stored."""
        xs, batched = self._ref.prepare(x)
        out_t = self._ref.output
        ys = np.zeros((len(xs), *out_t.shape), dtype=NUMPY_OF[out_t.dtype])
        for i, xi in enumerate(xs):
            xi = np.ascontiguousarray(xi)
            yi = ys[i]
            status = self._lib.tbn_run(ctypes.byref(self._model), self._arena.ctypes.data, self._arena.nbytes,
                                       xi.ctypes.data, xi.nbytes, yi.ctypes.data, yi.nbytes)
            if status != 0:
                raise CRuntimeError(f"C runtime: {self._lib.tbn_strerror(status).decode()}")
        return ys if batched else ys[0]

    @property
    def program(self) -> Program:
        return self._ref.program
