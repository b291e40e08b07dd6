"""tbn compare: a trained tbn model beside the TFLite int8 baseline of its architecture.

Compiles the tbn model to INT8 and its architecture in float to full-integer TFLite (with a
representative dataset), runs both on the same test images (tbn's reference interpreter,
the TFLite Micro Python interpreter) and prints model bytes, arena bytes (each runtime's own
figure) and accuracy side by side; with --board, tbn's instructions per inference there.
Needs pip install 'tbn[tf]'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tbn.cli.types import count


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="tbn beside the TFLite Micro int8 baseline (needs tbn[tf])",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="model.pt written by tbn train (a tiled model)")
    p.add_argument("--teacher", type=Path,
                   help="the float baseline: a model.pt from tbn train --float of the same recipe "
                        "(default: the tbn model's own latent weights)")
    p.add_argument("--tbn", type=Path, help="compare this .tbn instead of compiling the model")
    p.add_argument("--n", type=count, default=1000, metavar="N", help="test images (default 1000)")
    p.add_argument("--calibration", type=count, default=512, metavar="N",
                   help="training images for both INT8 calibrations (default 512)")
    p.add_argument("--board", help="also run tbn on this board (tbn-flash --list) and count instructions")
    p.add_argument("--data-dir", help="folder with the recipe's dataset")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing --json file that is not JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tbn.compare import compare, render
    from tbn.files import check_output, regular_file, write_atomic

    inputs = [p for p in (args.model, args.teacher, args.tbn) if p is not None]
    if args.tbn is not None:  # before minutes of work, not after
        regular_file(args.tbn, "a .tbn model")
    if args.json:
        check_output(args.json, inputs, "json", args.force)
    result = compare(args.model, args.tbn, args.teacher, args.n, args.calibration, args.board,
                     data_dir=args.data_dir)
    print(render(result))
    if args.json:
        write_atomic(args.json, (json.dumps(result, indent=1) + "\n").encode(), inputs)
        print(f"wrote {args.json}")
    return 0
