"""The reference interpreter of ``.tbn`` bytecode (numpy only): the golden model."""

from tbn.runtime.interpreter import EngineBase, Interpreter, dequantize, output_as_float, quantize

__all__ = ["EngineBase", "Interpreter", "dequantize", "output_as_float", "quantize"]
