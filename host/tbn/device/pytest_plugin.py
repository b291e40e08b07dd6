"""pytest plugin for hardware-in-the-loop tests: ``pytest --board X [--port URL]``.

Registered through the ``pytest11`` entry point. Tests marked ``hil`` are skipped, with
the reason, unless ``--board`` or ``--port`` is given; the ``tbn_device`` fixture then
yields a :class:`~tbn.device.DeviceLink` to the board (emulated boards are built and
booted once per session; real ones flashed, or reached at ``--port``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tbn.boards import Board, Target, is_target, load_board, load_target
from tbn.device.link import DeviceLink


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tbn", "tbn hardware-in-the-loop")
    group.addoption("--board", help="run the hil tests on this board (see tbn-flash --list)")
    group.addoption("--port", help="serial port or pyserial URL of a device already running the tbn firmware")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: runs on a device (pytest --board X [--port URL])")
    config.addinivalue_line("markers", "micropython: runs on a MicroPython target (pytest --board mpy_an500)")


def _micropython_board(config: pytest.Config) -> bool:
    return is_target(config.getoption("--board") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--board") or config.getoption("--port"):
        # A MicroPython target runs the tests marked micropython, a tbn-firmware board the
        # others. The rest are deselected, not skipped: they cannot run on this kind of target
        # by design, and a skip should mean something is missing (a GPU, a tool, a board).
        mpy = _micropython_board(config)
        other = [i for i in items if "hil" in i.keywords and ("micropython" in i.keywords) != mpy]
        if other:
            config.hook.pytest_deselected(items=other)
            drop = set(map(id, other))
            items[:] = [i for i in items if id(i) not in drop]
        return
    skip = pytest.mark.skip(reason="hardware-in-the-loop: run with pytest --board X [--port URL]")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tbn_board(pytestconfig: pytest.Config) -> Board | None:
    name = pytestconfig.getoption("--board")
    return load_board(name) if name and not _micropython_board(pytestconfig) else None


@pytest.fixture(scope="session")
def mpy_target(pytestconfig: pytest.Config) -> Target:
    """The MicroPython target ``--board`` names (mpy_an385, mpy_an500, mpy_unix)."""
    return load_target(pytestconfig.getoption("--board"))


class EmulatedDevice:
    """An emulated board whose ``load`` takes any model the board can run: uploaded into its
    RAM slot where it fits there, else built into the firmware (with only the model's ops on a
    board that runs one model, the Uno) and booted again; a model that does not fit the board
    at all skips the test, with the numbers. Everything else is the running
    :class:`DeviceLink`'s. A board without a slot boots with a small golden vector, so INFO
    answers before any load."""

    BOOT_MODEL = "conv1d_argmax_int8"

    def __init__(self, board: Board, folder: Path) -> None:
        self.board, self.folder = board, folder
        self.stack = ExitStack()
        self.link: DeviceLink | None = None
        self.embedded = False  # the running firmware holds a model (perhaps only its ops)

    def load(self, data: bytes, progress: Any = None) -> Any:
        from tbn.device.build import FitError
        from tbn.device.session import flash

        if 0 < len(data) <= self.board.slot_bytes:
            if self.embedded:
                self._boot(None)
            assert self.link is not None
            return self.link.load(data, progress)
        path = self.folder / "model.tbn"
        path.write_bytes(data)
        try:  # built first: a model that does not fit leaves the running one up
            flash(self.board, path)
        except FitError as e:
            pytest.skip(str(e))
        self._boot(path)
        assert self.link is not None
        return self.link.info().model

    def _boot(self, model: Path | None) -> None:
        from tbn.device.session import open_device

        self.close()
        self.link = self.stack.enter_context(open_device(self.board.name, model=model,
                                                         log=self.folder / "emulator.log"))
        self.embedded = model is not None

    def boot(self) -> EmulatedDevice:
        from tbn.vectors import build_case

        if self.board.slot_bytes:
            self._boot(None)
        else:
            self.load(build_case(self.BOOT_MODEL)[1])
        return self

    def close(self) -> None:
        self.stack.close()
        self.link = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.link, name)


@pytest.fixture(scope="session")
def tbn_device(
    pytestconfig: pytest.Config, tbn_board: Board | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DeviceLink]:
    from tbn.device.session import open_device
    from tbn.device.upload import UploadToolMissing

    log = tmp_path_factory.mktemp("device") / "emulator.log"
    port = pytestconfig.getoption("--port")
    if tbn_board is not None and tbn_board.emulated and port is None:
        device = EmulatedDevice(tbn_board, log.parent).boot()
        try:
            yield device  # type: ignore[misc]  # a DeviceLink whose load() may rebuild the firmware
        finally:
            device.close()
        return
    try:
        with open_device(tbn_board.name if tbn_board else None, port, log=log) as link:
            yield link
    except UploadToolMissing as e:  # a real board, and nothing here could flash one
        pytest.skip(str(e))
