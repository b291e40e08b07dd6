"""``tbn`` entry point: one subcommand per module in :mod:`tbn.cli`."""

from __future__ import annotations

import argparse
import sys

from tbn import __version__
from tbn.cli import compare as compare_cmd
from tbn.cli import compile as compile_cmd
from tbn.cli import infer as infer_cmd
from tbn.cli import inspect as inspect_cmd
from tbn.cli import micropython as micropython_cmd
from tbn.cli import monitor as monitor_cmd
from tbn.cli import report as report_cmd
from tbn.cli import run as run_cmd
from tbn.cli import train as train_cmd
from tbn.cli.exits import add_debug_flag, run_reporting

COMMANDS = (train_cmd, compile_cmd, inspect_cmd, run_cmd, infer_cmd, monitor_cmd, micropython_cmd,
            compare_cmd, report_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tbn", description="Tiled Bit Networks for microcontrollers")
    parser.add_argument("--version", action="version", version=f"tbn {__version__}")
    add_debug_flag(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_reporting(f"tbn {args.command}", lambda: args.func(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
