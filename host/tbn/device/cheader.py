"""Generate ``firmware/app/tbn_protocol.h`` from :mod:`tbn.device.protocol`.

Run ``python -m tbn.device.cheader`` to rewrite it, ``--check`` to fail when the committed
header is out of date (``make header`` regenerates both generated headers).
"""

from __future__ import annotations

import sys

from tbn.device import protocol as proto
from tbn.device.build import FIRMWARE
from tbn.format.cheader import field_offsets, write_or_check

HEADER_PATH = FIRMWARE / "app" / "tbn_protocol.h"


def _macro(name: str) -> str:
    return name.upper().replace(" ", "_")


def generate() -> str:
    """The header's text."""
    major, minor, patch = proto.FIRMWARE_VERSION
    lines = [
        "/* tbn_protocol.h -- GENERATED from host/tbn/device/protocol.py by",
        " * `python -m tbn.device.cheader`. Do not edit: change the protocol module and regenerate.",
        " * The protocol is described in docs/protocol.md. All integers are little-endian. */",
        "#ifndef TBN_PROTOCOL_H",
        "#define TBN_PROTOCOL_H",
        "",
        f"#define TBN_PROTOCOL_VERSION {proto.PROTOCOL_VERSION}u",
        f"#define TBN_FIRMWARE_VERSION 0x{major:02X}{minor:02X}{patch:02X}u /* {major}.{minor}.{patch} */",
        f"#define TBN_LINK_SYNC0 0x{proto.SYNC[0]:02X}u",
        f"#define TBN_LINK_SYNC1 0x{proto.SYNC[1]:02X}u",
        f"#define TBN_LINK_HEADER_BYTES {len(proto.SYNC) + proto.HEADER.size}u",
        f"#define TBN_LINK_CRC_BYTES {proto.CRC.size}u",
        f"#define TBN_MAX_PAYLOAD {proto.MAX_PAYLOAD}u",
        f"#define TBN_BAUDRATE {proto.BAUDRATE}u",
        f"#define TBN_MAX_BENCH_RUNS {proto.MAX_BENCH_RUNS}u",
        f"#define TBN_CMD_REPLY 0x{proto.REPLY:02X}u",
    ]
    for enum, prefix in ((proto.Command, "TBN_CMD"), (proto.Status, "TBN_ST"),
                         (proto.ModelSource, "TBN_SOURCE"), (proto.CostUnit, "TBN_COST_UNIT")):
        lines += ["", f"/* {enum.__name__} */"]
        lines += [f"#define {prefix}_{m.name} {int(m)}u" for m in enum]
    lines += ["", "/* payload layouts: byte size and field offsets */"]
    for layout in proto.LAYOUTS:
        name = _macro(layout.name)
        lines.append(f"#define TBN_{name}_SIZE {layout.size}u")
        offsets = field_offsets(layout.struct, layout.fields)
        lines += [f"#define TBN_{name}_{field.upper()} {off}u" for field, off in offsets]
    lines += [f"#define TBN_INFO_REPLY_MODEL {proto.INFO_MODEL_OFFSET}u /* the model info block */",
              f"#define TBN_INFO_REPLY_NAME {proto.INFO_NAME_OFFSET}u /* then name_len ASCII bytes */"]
    lines += ["", "#endif /* TBN_PROTOCOL_H */", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return write_or_check(generate(), HEADER_PATH, "tbn.device.cheader", argv)


if __name__ == "__main__":
    sys.exit(main())
