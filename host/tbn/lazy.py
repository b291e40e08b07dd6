"""Names a package exports but imports on first use (PEP 562), so that importing the package
stays cheap: ``tbn.nn`` and ``tbn.train`` keep torch out of the command line's start-up."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, home: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` finding each name of ``home`` (name -> its
    submodule) in ``package.<submodule>`` the first time it is asked for."""

    def __getattr__(name: str) -> Any:
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{home[name]}"), name)
        setattr(sys.modules[package], name, value)  # found once
        return value

    return __getattr__
