"""The .tbn format: round trips, the generated C header, and every kind of bad file."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbn.format import Op, TbnFormatError, read, serialize, spec
from tbn.format.cheader import HEADER_PATH, generate
from tbn.runtime import Interpreter

VECTORS = Path(__file__).parent / "vectors"
FILES = sorted(VECTORS.glob("*.tbn"))


def _fix_crc(data: bytes | bytearray) -> bytes:
    data = bytearray(data)
    data[12:16] = zlib.crc32(bytes(data[16:])).to_bytes(4, "little")
    return bytes(data)


def _set(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, value)
    return _fix_crc(b)


@pytest.fixture(scope="module")
def mlp() -> bytes:
    return (VECTORS / "mlp_f32.tbn").read_bytes()


def test_vectors_exist_and_round_trip() -> None:
    assert len(FILES) >= 9
    for f in FILES:
        data = f.read_bytes()
        assert serialize(read(data)) == data, f.name


def test_c_header_is_up_to_date() -> None:
    assert HEADER_PATH.read_text() == generate(), "run: python -m tbn.format.cheader"
    result = subprocess.run([sys.executable, "-m", "tbn.format.cheader", "--check"], capture_output=True)
    assert result.returncode == 0


def test_header_layout_is_aligned() -> None:
    assert spec.HEADER.size == 40
    for _, st_, _ in spec.TABLES:
        assert st_.size % spec.ALIGN == 0
    for layout in spec.OP_LAYOUTS.values():
        assert layout.size % spec.ALIGN == 0


def test_constants_are_aligned_for_in_place_reads(mlp: bytes) -> None:
    prog = read(mlp)
    assert len(mlp) % 4 == 0
    n = len(prog.tensors)
    tiles_at = 40 + n * 20
    for i in range(len(prog.tiles)):
        _, offset = spec.TILE.unpack_from(mlp, tiles_at + 8 * i)
        assert offset % 4 == 0


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d[:39], "shorter than the 40-byte header"),
    (lambda d: d[:-4], "truncated"),
    (lambda d: d + b"\0\0\0\0", "trailing bytes"),
    (lambda d: b"XXXX" + d[4:], "bad magic"),
    (lambda d: d[:100] + bytes([d[100] ^ 0xFF]) + d[101:], "CRC32 mismatch"),
    (lambda d: _set(d, 4, "<H", spec.VERSION_MAJOR + 1),
     f"major version {spec.VERSION_MAJOR + 1} is not supported"),
    (lambda d: _set(d, 16, "<I", 0x8), "unknown required feature flags 0x0008"),
    (lambda d: _set(_set(d, 16, "<I", 0x8), 6, "<H", spec.VERSION_MINOR + 1),
     f"format {spec.VERSION_MAJOR}.{spec.VERSION_MINOR + 1}; this reader knows "
     f"{spec.VERSION_MAJOR}.{spec.VERSION_MINOR}"),
    (lambda d: _set(d, 24, "<H", 0xFFFF), "section counts need"),
    (lambda d: _set(d, 34, "<H", 0), "needs tensors and ops"),
    (lambda d: _set(d, 20, "<I", 16), "beyond the arena"),
], ids=["short", "truncated", "trailing", "magic", "crc", "major", "flags", "newer-minor", "counts",
        "no-ops", "arena"])
def test_header_problems(mlp: bytes, mutate, message: str) -> None:
    with pytest.raises(TbnFormatError, match=message.replace("(", r"\(").replace(".", r"\.")):
        read(mutate(mlp))


def _op_offset(data: bytes) -> int:
    prog = read(data)
    n = len(prog.tensors)
    return 40 + n * (20 + (8 if prog.int8 else 0)) + 8 * (len(prog.tiles) + len(prog.scales)
                                                          + len(prog.biases) + len(prog.dense))


def test_op_problems(mlp: bytes) -> None:
    ops = _op_offset(mlp)
    assert mlp[ops] == Op.TILED_LINEAR
    with pytest.raises(TbnFormatError, match="unknown opcode 99"):
        read(_set(mlp, ops, "<B", 99))
    with pytest.raises(TbnFormatError, match="unknown fused activation 7"):
        read(_set(mlp, ops + 1, "<B", 7))
    with pytest.raises(TbnFormatError, match="tile id 40 out of range"):
        read(_set(mlp, ops + 6, "<H", 40))
    with pytest.raises(TbnFormatError, match="reads tensor 2 before any op writes it"):
        read(_set(mlp, ops + 2, "<H", 2))
    with pytest.raises(TbnFormatError, match="is written twice"):
        read(_set(mlp, ops + spec.OPS[Op.TILED_LINEAR].layout.size + 4, "<H", 1))
    with pytest.raises(TbnFormatError, match=r"bits do not tile|scale has"):
        read(_set(mlp, ops + 6, "<H", 1))  # the second layer's tile on the first layer


def test_table_problems(mlp: bytes) -> None:
    prog = read(mlp)
    n = len(prog.tensors)
    with pytest.raises(TbnFormatError, match="tensor 1: unknown dtype 9"):
        read(_set(mlp, 40 + 12, "<B", 9))
    with pytest.raises(TbnFormatError, match="malformed shape"):
        read(_set(mlp, 40 + 12 + 1, "<B", 5))
    with pytest.raises(TbnFormatError, match=r"arena size .* does not match"):
        read(_set(mlp, 40 + n * 12 + 4, "<I", 3))
    tiles = 40 + n * 20
    with pytest.raises(TbnFormatError, match=r"tile 0: data at offset .* outside"):
        read(_set(mlp, tiles + 4, "<I", len(mlp) - 2))
    with pytest.raises(TbnFormatError, match="tile 0: data at offset 8 "):
        read(_set(mlp, tiles + 4, "<I", 8))  # points into the header
    scales = tiles + 8 * len(prog.tiles)
    with pytest.raises(TbnFormatError, match="scale 0: dtype 3 is not allowed"):
        read(_set(mlp, scales + 6, "<B", 3))
    with pytest.raises(TbnFormatError, match="scale has 2 entries"):
        read(_set(mlp, scales + 4, "<H", 2))


def test_inconsistent_shapes_are_refused(mlp: bytes) -> None:
    # the first hidden tensor claims 31 features while the layer's weights produce 32
    b = bytearray(mlp)
    struct.pack_into("<H", b, 40 + 12 + 4, 31)
    n = len(read(mlp).tensors)
    struct.pack_into("<I", b, 40 + n * 12 + 8 + 4, 31 * 4)
    with pytest.raises(TbnFormatError, match=r"bits do not tile|scale has|bias must hold"):
        read(_fix_crc(b))


def test_interpreter_refuses_a_huge_arena(mlp: bytes) -> None:
    with pytest.raises(TbnFormatError, match="more than the 100 bytes allowed"):
        Interpreter(mlp, max_arena_bytes=100)


def _check_reader(data: bytes) -> None:
    """Reading either fails with TbnFormatError or gives a program the interpreter runs."""
    try:
        prog = read(data)
    except TbnFormatError:
        return
    try:
        interp = Interpreter(prog, max_arena_bytes=1 << 20)
    except TbnFormatError:
        return
    x = np.zeros(interp.input.shape, dtype=np.int8 if prog.int8 else np.float32)
    with np.errstate(all="ignore"):
        interp.run(x)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(FILES), flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)),
                                                    min_size=1, max_size=4),
       fix_crc=st.booleans())
def test_fuzz_mutated_files(case: Path, flips: list[tuple[int, int]], fix_crc: bool) -> None:
    data = bytearray(case.read_bytes())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    _check_reader(_fix_crc(data) if fix_crc else bytes(data))


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(FILES), cut=st.integers(0, 1 << 20))
def test_fuzz_truncated_files(case: Path, cut: int) -> None:
    data = case.read_bytes()
    _check_reader(_fix_crc(data[: cut % len(data)]) if cut % len(data) >= 16 else data[: cut % len(data)])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_reader(spec.MAGIC + data if data[:1] == b"\0" else data)


def test_an_older_major_version_is_refused_with_the_remedy(mlp: bytes) -> None:
    old = _set(mlp, 4, "<H", spec.VERSION_MAJOR - 1)
    with pytest.raises(TbnFormatError, match=r"compiled by an older tbn: compile the model again"):
        read(old)
