"""The ``.tbn`` bytecode: layout constants, the program model, writer, reader, C header.

Everything here needs numpy only.
"""

from tbn.format.program import Operation, Program, TbnFormatError, Tensor, Tile, Vector
from tbn.format.reader import load, read
from tbn.format.spec import VERSION_MAJOR, VERSION_MINOR, Act, DType, Flag, Op
from tbn.format.validate import validate
from tbn.format.writer import serialize

__all__ = [
    "VERSION_MAJOR",
    "VERSION_MINOR",
    "Act",
    "DType",
    "Flag",
    "Op",
    "Operation",
    "Program",
    "TbnFormatError",
    "Tensor",
    "Tile",
    "Vector",
    "load",
    "read",
    "serialize",
    "validate",
]
