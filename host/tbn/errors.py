"""The one base of every error tbn raises about what it was given or where it runs.

A :class:`TbnError` is the user's to fix (a corrupt file, a bad option, a model too large
for a board, a device that does not answer); its message names the problem, carries the
numbers and says what to do. The CLI prints it and exits 2. Any other exception is a bug
in tbn and keeps its traceback.

Each subclass also derives from the builtin it refines (``ValueError`` for bad values,
``RuntimeError`` for a failed operation), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class TbnError(Exception):
    """Base of tbn's errors about input and environment."""


class UsageError(TbnError, ValueError):
    """A bad argument or option: an unknown name, a value out of range, a wrong shape."""


class DeviceError(TbnError, RuntimeError):
    """Something went wrong with a device: it refused a request, its link failed, or its
    emulator is missing or exited. The message names the port or board."""


class MissingExtraError(TbnError, ImportError):
    """An optional part of tbn needs packages that are not installed; the message names the
    extra that brings them (``pip install 'tbn[tf]'``)."""
