"""The reference interpreter of ``.tbn`` bytecode (numpy only): the golden model."""

from tbn.runtime.interpreter import Interpreter, dequantize, quantize

__all__ = ["Interpreter", "dequantize", "quantize"]
