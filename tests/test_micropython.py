"""The host side of tbn on MicroPython, without a device: ROMFS images with aligned files, where
MicroPython's sources come from, the architecture map, the mip package. The device side runs in
tests/hil/test_micropython.py (pytest tests/hil --board mpy_an500)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn import third_party
from tbn.cli.main import main as cli
from tbn.micropython import romfs_image, source
from tbn.micropython.targets import MPY_ARCH_CODES, targets


def _uint(data: bytes, i: int) -> tuple[int, int]:
    value = 0
    while True:
        value = (value << 7) | (data[i] & 0x7F)
        i += 1
        if not data[i - 1] & 0x80:
            return value, i


def _files(image: bytes) -> dict[str, tuple[int, bytes]]:
    """An independent reader of a flat ROMFS image: name -> (offset of its data, its data)."""
    assert image[:3] == romfs_image.HEADER and len(image) % 2 == 0
    size, i = _uint(image, 3)
    assert i + size == len(image)
    out = {}
    while i < len(image):
        kind, i = _uint(image, i)
        length, i = _uint(image, i)
        end = i + length
        if kind == romfs_image.FILE:
            name_len, j = _uint(image, i)
            name = image[j:j + name_len].decode()
            data_kind, j = _uint(image, j + name_len)
            data_len, j = _uint(image, j)
            assert data_kind == romfs_image.DATA and j + data_len == end
            out[name] = (j, image[j:end])
        else:
            assert kind == romfs_image.PADDING and not any(image[i:end])
        i = end
    return out


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdefgh._", min_size=1, max_size=12), st.binary(max_size=700), max_size=6))
def test_romfs_images_align_every_file(files: dict[str, bytes]) -> None:
    image = romfs_image.build(files)
    read = _files(image)
    assert {n: d for n, (_, d) in read.items()} == files
    assert all(offset % 16 == 0 for offset, _ in read.values())


def test_sources_are_named_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROPY_DIR", str(tmp_path))
    with pytest.raises(third_party.SourceNotFoundError, match="is not a MicroPython tree"):
        source.micropython_dir()
    monkeypatch.delenv("MICROPY_DIR")
    monkeypatch.setenv("TBN_OFFLINE", "1")
    monkeypatch.setattr(third_party, "shared_third_party", lambda: tmp_path / "none")
    monkeypatch.setattr(third_party, "build_dir", lambda: tmp_path / "build")
    with pytest.raises(third_party.SourceNotFoundError,
                       match=r"set MICROPY_DIR to a copy, put micropython-1c3c201\.tar\.xz in .*none, "
                             r"or go online; downloads are off"):
        source.micropython_dir()


def test_architectures_are_read_from_the_firmware() -> None:
    assert MPY_ARCH_CODES[2822 >> 10] == "x64"  # the unix port's sys.implementation._mpy
    assert {t.arch for t in targets().values()} <= set(MPY_ARCH_CODES.values())


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc (make deps)")
def test_a_mip_package_per_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["micropython", "build", "--arch", "armv7emsp", "--mip", str(tmp_path)]) == 0
    package = json.loads((tmp_path / "armv7emsp" / "package.json").read_text())
    assert package["urls"] == [["tbn.mpy", "tbn.mpy"]]
    mpy = (tmp_path / "armv7emsp" / "tbn.mpy").read_bytes()
    assert mpy[:2] == b"M\x06" and mpy[2] >> 2 == 7  # .mpy version 6, native arch armv7emsp
    assert "armv7emsp" in capsys.readouterr().out
