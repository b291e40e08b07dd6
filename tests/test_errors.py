"""One error base: every error tbn raises about its input derives from tbn.TbnError, and the
CLI turns exactly those into a message and exit status 2."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import tbn
from tbn.cli import inspect as inspect_cmd
from tbn.cli.main import main
from tbn.errors import TbnError


def _tbn_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(tbn.__path__, "tbn."):
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency (CuPy) is missing here
            continue
        names.append(info.name)
    return names


def test_every_tbn_exception_derives_from_tbn_error() -> None:
    classes = {
        cls
        for name in _tbn_modules()
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass)
        # warnings are Exceptions too, but they are not raised: they say, and the run goes on
        if issubclass(cls, BaseException) and not issubclass(cls, Warning)
        and cls.__module__.startswith("tbn.")
    }
    assert len(classes) >= 15, sorted(c.__name__ for c in classes)
    strays = sorted(c.__name__ for c in classes if not issubclass(c, TbnError))
    assert not strays, f"exceptions outside the TbnError family: {strays}"


def test_tbn_error_is_importable_from_the_package() -> None:
    assert tbn.TbnError is TbnError


def test_cli_prints_a_tbn_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.tbn"
    bad.write_bytes(b"not a model")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tbn inspect: error: ") and "Traceback" not in err


def test_cli_debug_flag_adds_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.tbn"
    bad.write_bytes(b"not a model")
    assert main(["--debug", "inspect", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "tbn inspect: error: " in err


def test_cli_lets_a_bug_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(args: object) -> int:
        raise ZeroDivisionError("a bug, not bad input")

    monkeypatch.setattr(inspect_cmd, "run", broken)
    with pytest.raises(ZeroDivisionError):
        main(["inspect", "whatever.tbn"])


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    """`tbn inspect m.tbn | head`: the pipe closes under a command that still writes; it stops
    quietly with 141, no traceback (a command writing 1 MB through the CLI's own runner)."""
    import subprocess
    import sys

    code = ("import sys; from tbn.cli.exits import run_reporting; "
            "sys.exit(run_reporting('tbn x', lambda: [print('y' * 999) for _ in range(1000)]))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "Error" not in err, err
