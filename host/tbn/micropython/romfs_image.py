"""ROMFS images whose file data is aligned, so a .tbn in /rom can be read in place: MicroPython's
ROMFS is a tree of length-prefixed records (the format of mpremote's ``romfs build``); this
writer puts a PADDING record before each file so that its bytes start on an ``align`` boundary
of the image (which the port maps at an aligned address)."""

from __future__ import annotations

HEADER = b"\xd2\xcd\x31"
SIZE_WIDTH = 4  # bytes of the image's length field: images up to 256 MiB
PADDING, DATA, FILE = 1, 2, 5


def _uint(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.insert(0, 0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out)


def _record(kind: int, payload: bytes) -> bytes:
    return _uint(kind) + _uint(len(payload)) + payload


def _file(name: str, data: bytes) -> tuple[bytes, int]:
    """A FILE record and where its data starts inside it."""
    payload = _uint(len(name)) + name.encode() + _uint(DATA) + _uint(len(data))
    head = _uint(FILE) + _uint(len(payload) + len(data))
    return head + payload + data, len(head) + len(payload)


def _padding(size: int) -> bytes:
    """A PADDING record of exactly ``size`` bytes (0, or 2 and more)."""
    if size == 0:
        return b""
    n = size - 2
    while len(_uint(PADDING)) + len(_uint(n)) + n != size:
        n -= 1
    return _record(PADDING, bytes(n))


def _body(files: dict[str, bytes], start: int, align: int) -> bytes:
    body = bytearray()
    for name in sorted(files):
        rec, at = _file(name, files[name])
        gap = -(start + len(body) + at) % align
        if gap == 1:  # no record is one byte long
            gap += align
        body += _padding(gap) + rec
    return bytes(body)


def build(files: dict[str, bytes], align: int = 16) -> bytes:
    """The image of a flat ``/rom`` holding ``files``, each file's bytes ``align``-aligned.

    The image's length field has a fixed width (leading 0x80 bytes add nothing to the number,
    as mpremote's writer uses them too), so the body can be laid out knowing where it starts."""
    start = len(HEADER) + SIZE_WIDTH
    body = _body(files, start, align)
    if (start + len(body)) % 2:  # an even length, as MicroPython's own writer makes them
        body += _padding(3)
    size = _uint(len(body))
    if len(size) > SIZE_WIDTH:
        raise ValueError(f"a ROMFS image of {len(body)} bytes is too large")
    return HEADER + b"\x80" * (SIZE_WIDTH - len(size)) + size + body
