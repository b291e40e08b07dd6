"""``tbn inspect``: ops, shapes, bytes per section and bits per weight of a ``.tbn`` file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tbn.format import load
from tbn.format.inspect import render, summarize


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="describe a .tbn file", description=__doc__)
    p.add_argument("model", help="a .tbn file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = summarize(load(args.model), Path(args.model).stat().st_size)
    print(json.dumps(summary, indent=2, default=list) if args.json else render(summary))
    return 0
