"""The TFLite int8 baseline: a Keras model as a full-integer TFLite flatbuffer, run by the
TFLite Micro Python interpreter (``pip install 'tbn[tf]'`` brings both)."""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

import keras
import numpy as np

from tbn.errors import MissingExtraError
from tbn.files import read_bounded
from tbn.runtime.interpreter import quantize

MAX_TFLITE_BYTES = 1 << 31  # a flatbuffer's offsets are 32-bit


def to_tflite_int8(model: keras.Model, representative: np.ndarray) -> bytes:
    """Full-integer TFLite (int8 weights, activations, input and output), calibrated on the
    channels-last batch ``representative``, as TFLite's converter makes it."""
    import tensorflow as tf

    def samples() -> Iterator[list[np.ndarray]]:
        for x in representative:
            yield [x[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = samples
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    # the converter prints where it saved the model and warns that int8 inputs come without
    # statistics (tbn quantises them itself, with the model's own parameters): neither is news
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(conv.convert())


class TflmModel:
    """A full-integer TFLite flatbuffer in the TFLite Micro interpreter (the ``tflm`` engine of
    :mod:`tbn.engines`): channels-last float inputs, quantised with the model's own parameters;
    int8 outputs (``run``) or dequantised ones (``run_float``); and its arena figure."""

    name = "tflm"

    @classmethod
    def open(cls, model: bytes | str | os.PathLike) -> TflmModel:
        """The engine interface's constructor: a flatbuffer, or a path to one."""
        if not isinstance(model, bytes | bytearray):
            model = read_bounded(model, MAX_TFLITE_BYTES, "a .tflite model")
        return cls(bytes(model))

    def __init__(self, flatbuffer: bytes) -> None:
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as e:
            raise MissingExtraError(f"the TFLite Micro interpreter is not installed ({e}): "
                                    "pip install 'tbn[tf]'") from None
        self.flatbuffer = flatbuffer
        self.interpreter = runtime.Interpreter.from_bytes(flatbuffer)
        self.input = self.interpreter.get_input_details(0)
        self.output = self.interpreter.get_output_details(0)

    @staticmethod
    def _quant(details: dict) -> tuple[float, int]:
        q = details["quantization_parameters"]
        return float(q["scales"][0]), int(q["zero_points"][0])

    def run(self, x: np.ndarray) -> np.ndarray:
        """The int8 outputs (flattened per sample) of a channels-last float batch, one invoke
        per sample."""
        s_in, z_in = self._quant(self.input)
        outs = []
        for xi in np.asarray(x, dtype=np.float32):
            self.interpreter.set_input(quantize(xi, s_in, z_in)[None], 0)
            self.interpreter.invoke()
            outs.append(self.interpreter.get_output(0).reshape(-1).copy())
        return np.stack(outs)

    def run_float(self, x: np.ndarray) -> np.ndarray:
        """Like :meth:`run`, the outputs dequantised."""
        s_out, z_out = self._quant(self.output)
        return s_out * (self.run(x).astype(np.float32) - z_out)

    def close(self) -> None:
        """Nothing to release: the interpreter goes with the object."""

    def arena_bytes(self) -> int:
        """TFLite Micro's own arena figure ("Arena allocation total"), which its recording
        allocator prints to the process's stderr: read through a file descriptor swap."""
        libc = ctypes.CDLL(None)
        sys.stderr.flush()
        with tempfile.TemporaryFile(mode="w+b") as tmp:
            saved = os.dup(2)
            try:
                os.dup2(tmp.fileno(), 2)
                self.interpreter.print_allocations()
                libc.fflush(None)  # C's buffers, before the descriptor goes back
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
        m = re.search(r"Arena allocation total (\d+) bytes", text)
        if m is None:
            raise RuntimeError(f"TFLite Micro printed no arena total: {text[:300]!r}")
        return int(m[1])
