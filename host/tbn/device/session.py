"""From a board name (or a port) and a model to a running device with that model active.

``flash`` builds (and uploads to a real board), ``boot`` starts an emulated board and waits
for its firmware to answer: ``tbn-flash`` is the two; ``open_device``, what ``tbn monitor``,
``tbn infer``, the device engine and the hardware-in-the-loop tests use, is them and a link.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tbn.boards import Board, load_board
from tbn.device.build import Firmware, FitError, build, check_fit
from tbn.device.emulator import Emulator
from tbn.device.link import DeviceLink, LinkError
from tbn.device.upload import Upload, UploadToolMissing, upload, upload_command
from tbn.errors import UsageError
from tbn.files import read_bounded
from tbn.format import load, read
from tbn.format.spec import MAX_FILE_BYTES


@dataclass(frozen=True)
class Flashed:
    firmware: Firmware
    base: Firmware  # the same firmware without a model: the runtime's own footprint
    upload: Upload | None = None  # a real board's upload command (run unless a dry run)

    @property
    def runtime_flash(self) -> int:
        """Flash for the runtime and app: the build less its model (a build for one model's ops
        has no model-less twin of the same size)."""
        fw = self.firmware
        return fw.flash_bytes - fw.model_bytes if fw.model_bytes else self.base.flash_bytes


def flash(board: Board, model: Path | None = None, verbose: bool = False,
          backend: Path | None = None, dry_run: bool = False, model_ops: bool = False,
          mlperf: str | None = None, energy: bool = False) -> Flashed:
    """Build for ``board`` (embedding ``model``), refuse what does not fit, and upload to a real
    board (``dry_run``: only say how). ``model_ops``: build the runtime with the model's ops and
    activation type only (smaller; other models are refused). ``mlperf``: the firmware answers
    MLCommons' runner as that MLPerf Tiny model (docs/mlperf.md), in its energy mode with
    ``energy``. Emulated boards are booted
    separately (:class:`Emulator`) from ``firmware.elf``."""
    model_ops = model_ops or board.model_ops
    if mlperf is not None and model is None:
        raise UsageError("the MLPerf runner protocol has no upload: give the model to build in "
                         "(--model m.tbn)")
    if energy and mlperf is None:
        raise UsageError("energy mode is MLPerf Tiny's: it goes with the runner protocol (--protocol mlperf)")
    if mlperf is not None and board.arch == "avr":
        raise UsageError(f"{board.name}: the MLPerf runner protocol's app runs on 32-bit cores (Arm, "
                         "RISC-V), not on AVR")
    if model_ops and model is None:
        why = f"{board.name} runs one model, built in with only its ops" if board.model_ops else \
            "building with the model's ops only needs a model"
        raise UsageError(f"{why}: give the model (--model m.tbn)")
    if not board.emulated and not dry_run:  # a machine that cannot flash it says so before building
        upload_command(board, Path("firmware.elf"))
    arena = 0
    model_bytes = 0
    program = None
    if model is not None:
        program = load(model)  # a corrupt or foreign file stops here, with the reason
        arena, model_bytes = program.arena_size, Path(model).stat().st_size
        acts = "int8" if program.int8 else "f32"
        if acts not in board.activations:
            raise FitError(f"{board.name}: model does not fit: it has {acts} activations, the board runs "
                           f"{' and '.join(board.activations)} only (compile it with --activations "
                           f"{board.activations[0]})")
        # what needs no build is refused before one (and where a real board's cannot be made)
        check_fit(board.name, model_bytes, arena, arena_limit=board.arena_bytes,
                  flash_limit=board.flash_bytes)
    ops_of = program if model_ops else None
    base = build(board, verbose=verbose, backend=backend, ops_of=ops_of)
    check_fit(
        board.name,
        model_bytes,
        arena,
        arena_limit=board.arena_bytes,
        flash_limit=board.flash_bytes,
        runtime_flash=base.flash_bytes,
    )
    firmware = base if model is None else build(board, model, verbose=verbose, backend=backend, ops_of=ops_of,
                                                mlperf=mlperf, energy=energy)
    if board.emulated:
        return Flashed(firmware, base)
    try:
        cmd = upload_command(board, firmware.elf, model)
    except UploadToolMissing:
        if not dry_run:
            raise
        cmd = None
    if not dry_run:
        upload(cmd)
    return Flashed(firmware, base, cmd)


def find_port(board: Board) -> str:
    """The serial port of a connected real board (an ST-LINK virtual COM port)."""
    from serial.tools import list_ports

    ports = [p.device for p in list_ports.comports() if p.vid == 0x0483]
    if len(ports) != 1:
        found = ", ".join(ports) or "none"
        raise LinkError(
            f"{board.name}: need exactly one ST-LINK serial port to talk to, found {found}; "
            "name it with --port"
        )
    return ports[0]


def boot(board: Board, elf: Path, port: int | None = None, log: Path | None = None,
         detach: bool = False) -> tuple[Emulator, DeviceLink]:
    """Start ``board``'s emulator with ``elf`` (``detach``: in its own session, to outlive the
    terminal) and open its link once the firmware answers INFO; the caller closes the link
    and stops the emulator. A link that fails because the emulator exited says so, with its
    exit status."""
    emulator = Emulator(board.emulation, elf, port=port, log=log).start(detach=detach)
    try:
        link = DeviceLink(emulator.connect())
        try:
            link.sync()
        except BaseException:
            link.close()
            raise
    except LinkError as e:
        exited = emulator.exited(wait=1.0)
        emulator.stop()
        if exited:
            raise emulator.exit_error(f"before it answered INFO ({e})") from e
        raise
    except BaseException:
        emulator.stop()
        raise
    return emulator, link


def _activate(link: DeviceLink, model: Path, upload: bool) -> None:
    """Make ``model`` the device's active model: upload it with LOAD when ``upload`` is set or
    when the device does not already hold it (same size and CRC32)."""
    data = read_bounded(model, MAX_FILE_BYTES, "a .tbn model")
    info = link.info()  # the running firmware's own limits and its resident model
    if not upload and info.model is not None and info.model.holds(data):
        return
    try:
        check_fit(info.board, len(data), read(data).arena_size,
                  arena_limit=info.arena_bytes, slot_limit=info.slot_bytes)
    except FitError as e:
        if upload:
            raise
        held = (f"it holds another model ({info.model.model_bytes} bytes, CRC32 {info.model.crc32:08x})"
                if info.model is not None else "it holds no model")
        raise FitError(f"{link.name}: {model} is not the model on the device ({held}) and cannot be "
                       f"uploaded: {e}; build it into the firmware with `tbn-flash --board {info.board} "
                       f"--model {model}`") from e
    link.load(data)


@contextmanager
def open_device(
    board: str | None = None,
    port: str | None = None,
    model: Path | None = None,
    embed: bool = True,
    log: Path | None = None,
    verbose: bool = False,
    backend: Path | None = None,
    model_ops: bool = False,
) -> Iterator[DeviceLink]:
    """A link to a device running ``model``.

    With ``port``, talk to a device already running there: ``model``, if given, is uploaded
    with LOAD unless the device already holds it (``embed=False`` uploads it always). With
    only ``board``, build and boot the emulator (or flash the real board), with ``model``
    embedded in the firmware (``embed``) or uploaded over the link. A link that fails because
    the emulator exited is reported as that (:class:`EmulatorError`, with its exit status).
    ``backend``: see :func:`tbn.device.build.build`; ``model_ops``: see :func:`flash`.
    """
    if board is None and port is None:
        raise UsageError("name a --board or a --port")
    b = load_board(board) if board else None
    emulator = None
    try:
        if port is None:
            assert b is not None
            flashed = flash(b, model if embed else None, verbose=verbose, backend=backend,
                            model_ops=model_ops and embed)
            if b.emulated:
                emulator, link = boot(b, flashed.firmware.elf, log=log)
            else:
                link = DeviceLink(find_port(b))
                link.sync()
        else:
            link = DeviceLink(port)
            link.sync()
        with link:
            if model is not None and (port is not None or not embed):
                _activate(link, Path(model), upload=not embed)
            yield link
    except LinkError as e:
        if emulator is not None and emulator.exited(wait=1.0):
            raise emulator.exit_error(f"during the session ({e})") from e
        raise
    finally:
        if emulator is not None:
            emulator.stop()
