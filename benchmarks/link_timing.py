"""How long the serial link takes, per emulated board: the reply to a frame that stops
part-way (the device's inter-byte timeout, noticed at its next wake), an INFO round trip,
and upload speed. Each board is built and booted as the HIL tests do. Prints a table;
--json writes it.

    python benchmarks/link_timing.py --board netduinoplus2 --board mps2_an500
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table, write_json
from tbn.device.protocol import Command, Status, encode
from tbn.device.session import open_device
from tbn.paths import root

ROOT = root()
MODEL = ROOT / "tests" / "vectors" / "convnet_f32.tbn"


def measure(board: str, frames: int, round_trips: int) -> dict:
    with open_device(board) as link:
        info = link.device
        stalls = []
        for i in range(frames):
            start = time.monotonic()
            reply = link.raw_exchange(encode(Command.INFER, i, bytes(64))[:20])
            if reply is None or reply.status != Status.ERR_TIMEOUT:
                raise SystemExit(f"{board}: a truncated frame got {reply} instead of ERR_TIMEOUT")
            stalls.append(time.monotonic() - start)
        start = time.monotonic()
        for _ in range(round_trips):
            link.info()
        info_ms = (time.monotonic() - start) / round_trips * 1000
        model = MODEL.read_bytes()
        start = time.monotonic()
        link.load(model)
        upload = len(model) / (time.monotonic() - start) / 1024
    return {"board": board, "frame_timeout_ms": info.frame_timeout_ms, "wake_ms": info.wake_ms,
            "stall_bound_s": info.stall_s, "stall_min_s": min(stalls), "stall_max_s": max(stalls),
            "info_round_trip_ms": info_ms, "upload_kib_s": upload}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", action="append", required=True, help="an emulated board (repeatable)")
    ap.add_argument("--frames", type=int, default=5, help="truncated frames per board")
    ap.add_argument("--round-trips", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = [measure(b, args.frames, args.round_trips) for b in args.board]
    print_table(rows, [("board", "board"), ("frame_timeout_ms", "frame timeout ms"), ("wake_ms", "wake ms"),
                       ("stall_min_s", "stall reply min s"), ("stall_max_s", "max s"),
                       ("stall_bound_s", "bound s"), ("info_round_trip_ms", "INFO round trip ms"),
                       ("upload_kib_s", "upload KiB/s")])
    late = [r["board"] for r in rows if r["stall_max_s"] > r["stall_bound_s"] + 0.5]
    print("every stalled frame answered within its bound (+0.5 s host slack)" if not late
          else f"late on: {', '.join(late)}")
    write_json(args.json, {"rows": rows})
    return 1 if late else 0


if __name__ == "__main__":
    sys.exit(main())
