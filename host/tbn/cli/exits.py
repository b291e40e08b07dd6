"""How every tbn command ends: a :class:`~tbn.errors.TbnError` is the user's to fix, so it
prints its message and exits 2 (``--debug`` adds the traceback); any other exception is a
bug in tbn and propagates with its traceback."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from functools import partial

from tbn.errors import TbnError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as a shell reports a reader that stopped early


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error too")


def run_reporting(prog: str, command: Callable[[], int | None], debug: bool = False) -> int:
    """Run ``command`` and turn a TbnError or Ctrl-C into a message and an exit status; a
    warning is one line, ``PROG: warning: ...`` (its source line with ``--debug``)."""
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = partial(_one_line, prog)
            return int(command() or 0)
    except TbnError as e:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `tbn inspect m.tbn | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_PIPE_CLOSED


def _one_line(prog: str, message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    print(f"{prog}: warning: {message}", file=sys.stderr)
