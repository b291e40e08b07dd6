"""tbn report: plots (PNG) and one HTML page from training runs, a .tbn and device profiles.

Draws accuracy against bits per weight (tbn runs, float, binary, and the TFLite int8 point
of a tbn compare JSON), bytes per layer of a .tbn, and device cost per op (tbn infer
--profile --json). Writes OUT/report.json (the plotted numbers), one PNG per plot and
OUT/index.html. Needs matplotlib: pip install 'tbn[report]'.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tbn.errors import UsageError


def add_parser(sub: Any) -> None:
    p = sub.add_parser("report", help="plots and an HTML page: accuracy, bytes per layer, cost per op",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", type=Path, help="tbn train output folders (each with metrics.json)")
    p.add_argument("--compare", type=Path, metavar="JSON", help="a tbn compare --json file")
    p.add_argument("--model", type=Path, metavar="TBN", help="a .tbn whose bytes per layer to plot")
    p.add_argument("--profile", type=Path, metavar="JSON", help="a tbn infer --profile --json file")
    p.add_argument("-o", "--out", type=Path, default=Path("report"), help="output folder (default report/)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tbn.plots import compare_points, layer_bytes, op_costs, run_points, write_report

    if not (args.runs or args.compare or args.model or args.profile):
        raise UsageError("tbn report needs something to plot: run folders, --compare, --model or --profile")
    points = run_points(args.runs) + (compare_points(args.compare) if args.compare else [])
    data = {"accuracy_vs_bits": points,
            "bytes_per_layer": layer_bytes(args.model) if args.model else [],
            "cost_per_op": op_costs(args.profile) if args.profile else None}
    inputs = [*args.runs, *(p for p in (args.compare, args.model, args.profile) if p is not None)]
    figures = write_report(data, args.out, inputs)
    print(f"wrote {args.out / 'index.html'} ({', '.join(f'{n}.png' for n in figures)}, report.json)")
    return 0
