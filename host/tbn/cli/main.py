"""``tbn`` entry point: one subcommand per module in :mod:`tbn.cli`."""

from __future__ import annotations

import argparse
import sys

from tbn import __version__
from tbn.cli import compile as compile_cmd
from tbn.cli import infer as infer_cmd
from tbn.cli import inspect as inspect_cmd
from tbn.cli import monitor as monitor_cmd
from tbn.cli import run as run_cmd
from tbn.cli import train as train_cmd
from tbn.data import MnistError
from tbn.format import TbnFormatError

COMMANDS = (train_cmd, compile_cmd, inspect_cmd, run_cmd, infer_cmd, monitor_cmd)
# Every tbn error type derives from one of these (TbnFormatError, TbnCompileError,
# BudgetError, ModelFileError: ValueError; TrainError, MnistError: RuntimeError).
USER_ERRORS = (TbnFormatError, MnistError, ValueError, KeyError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tbn", description="Tiled Bit Networks for microcontrollers")
    parser.add_argument("--version", action="version", version=f"tbn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        cmd.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"tbn {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tbn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
