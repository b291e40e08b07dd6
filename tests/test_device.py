"""Host side of the device link without a device: framing, board descriptions, fit checks
and tbn-flash's refusals. (The device itself is tested in tests/hil with --board.)"""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tbn.cli.flash import main as flash_main
from tbn.device import BoardError, DeviceLink, LinkError, list_boards, load_board
from tbn.device.build import FitError, check_fit
from tbn.device.cheader import HEADER_PATH as PROTOCOL_HEADER
from tbn.device.cheader import generate as generate_protocol_header
from tbn.device.protocol import INFO_REPLY, PROTOCOL_VERSION, DeviceInfo, FrameDecoder, ProtocolError, encode
from tbn.format.spec import VERSION_MAJOR

frames = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=300))


@given(st.lists(frames, max_size=5), st.binary(max_size=50))
def test_decoder_returns_exactly_the_frames_sent(sent: list, junk: bytes) -> None:
    stream = junk.replace(b"\xa5", b"") + b"".join(encode(c, s, p) for c, s, p in sent)
    got = FrameDecoder().feed(stream)
    assert [(f.cmd, f.seq, f.payload) for f in got] == sent


@settings(max_examples=300)
@given(frames, frames, st.integers(0, 10_000), st.integers(0, 7))
def test_a_damaged_frame_is_dropped_and_the_next_one_still_read(a, b, where: int, bit: int) -> None:
    first = bytearray(encode(*a))
    first[where % len(first)] ^= 1 << bit
    decoder = FrameDecoder(max_payload=300)
    good = encode(*b)
    copies = 2 + (300 + 10) // len(good)
    got = decoder.feed(bytes(first)) + decoder.feed(good * copies)
    # the damaged frame never comes out; intact ones do, even when the damage turned the
    # first frame's length into one that swallows the frames after it
    assert all((f.cmd, f.seq, f.payload) == b for f in got)
    assert len(got) >= 1


def test_decoder_survives_byte_by_byte_feeding() -> None:
    decoder = FrameDecoder()
    data = encode(5, 1, b"abc") + encode(6, 2, b"")
    got = [f for byte in data for f in decoder.feed(bytes([byte]))]
    assert [(f.cmd, f.seq, f.payload) for f in got] == [(5, 1, b"abc"), (6, 2, b"")]


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="65535"):
        encode(1, 0, bytes(70_000))


def test_short_info_reply_is_refused() -> None:
    with pytest.raises(ProtocolError, match=f"INFO reply of 10 bytes, expected at least {INFO_REPLY.size}"):
        DeviceInfo.parse(bytes([0, PROTOCOL_VERSION]) + bytes(8))


def test_a_device_speaking_another_protocol_is_named() -> None:
    old = bytes([0, 2]) + bytes(60)  # version 2's INFO: the model info lacks its CRC32
    with pytest.raises(ProtocolError, match=rf"protocol version 2, this tbn speaks {PROTOCOL_VERSION}: "):
        DeviceInfo.parse(old)


def _info_reply(**fields: int) -> bytes:
    values = dict.fromkeys(INFO_REPLY.fields, 0) | {"protocol": PROTOCOL_VERSION, "cost_unit": 1} | fields
    return INFO_REPLY.pack(**values)


def test_a_device_reading_another_bytecode_major_is_named() -> None:
    info = DeviceInfo.parse(
        _info_reply(format_major=VERSION_MAJOR + 1, frame_timeout_ms=20, wake_ms=100, max_payload=8192)
    )
    assert info.stall_s == pytest.approx(0.12)
    with pytest.raises(ProtocolError, match=rf"reads bytecode {VERSION_MAJOR + 1}.x, this tbn writes"):
        info.check_bytecode()
    DeviceInfo.parse(_info_reply(format_major=VERSION_MAJOR, max_payload=8192)).check_bytecode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cost_unit": 9, "max_payload": 8192}, "cost unit 9"),
        ({"max_payload": 4}, "maximum payload of 4 bytes"),
    ],
)
def test_an_info_reply_the_host_cannot_use_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        DeviceInfo.parse(_info_reply(**fields))


def test_firmware_protocol_header_is_generated_from_the_host_definition() -> None:
    assert PROTOCOL_HEADER.read_text() == generate_protocol_header(), "run: python -m tbn.device.cheader"


def test_the_required_boards_are_described() -> None:
    names = list_boards()
    for name in ("mps2_an500", "mps2_an386", "netduinoplus2", "nucleo_f767zi", "sifive_e", "uno"):
        assert name in names
    for name in names:
        b = load_board(name)
        assert b.slot_bytes + b.arena_bytes < b.ram_bytes
        assert b.emulated == (name != "nucleo_f767zi")


def test_board_descriptions_are_platformio_manifests_and_match_platformio_ini() -> None:
    root = Path(__file__).resolve().parents[1]
    ini = (root / "firmware" / "platformio.ini").read_text()
    for path in (root / "boards").glob("*.json"):
        doc = json.loads(path.read_text())
        assert {"name", "build", "upload", "frameworks"} <= set(doc)
        assert f"[env:{path.stem}]" in ini and f"board = {path.stem}" in ini
        assert (root / "firmware" / "hal" / f"{doc['tbn']['hal']}.c").is_file()
        # the core's support: interrupts and sleep, timer and cost (and a linker script template,
        # except on AVR, whose toolchain has one per -mmcu)
        arch = root / "firmware" / "arch" / doc["tbn"]["arch"]
        assert (arch / "arch.h").is_file() and (arch / "cost.c").is_file()
        assert (arch / "link.ld").is_file() or doc["tbn"]["arch"] == "avr"


@pytest.mark.parametrize(("typed", "board"), [
    ("nucleo_f767", "nucleo_f767zi"), ("NUCLEO-F767ZI", "nucleo_f767zi"), ("an5", "mps2_an500"),
    ("mps2-an386", "mps2_an386"), ("netduino", "netduinoplus2"), ("mps2_an500", "mps2_an500"),
    ("hifive1", "sifive_e"), ("sifive-e", "sifive_e"), ("fe3", "sifive_e"),
    ("uno", "uno"), ("Arduino-Uno", "uno"), ("atmega328p", "uno"),
])
def test_boards_answer_to_the_names_users_type(typed: str, board: str) -> None:
    assert load_board(typed).name == board


@pytest.mark.parametrize(("typed", "message"), [
    ("mps2", "board 'mps2' is ambiguous: it could be mps2_an386, mps2_an500"),
    ("nucleo_f776", "unknown board 'nucleo_f776'; did you mean nucleo_f767zi?"),
    ("../boards/mps2_an500", "unknown board '../boards/mps2_an500'"),  # names, never paths
])
def test_a_name_that_is_not_one_board_says_what_it_could_be(typed: str, message: str) -> None:
    with pytest.raises(BoardError, match=re.escape(message)):
        load_board(typed)


def test_unknown_board_names_the_known_ones() -> None:
    with pytest.raises(BoardError, match=r"unknown board 'nope'.*mps2_an500"):
        load_board("nope")


def test_fit_check_refuses_with_the_numbers() -> None:
    board = load_board("netduinoplus2")
    limits = {"arena_limit": board.arena_bytes, "slot_limit": board.slot_bytes}
    check_fit(board.name, 40_000, 30_000, **limits)
    with pytest.raises(FitError, match=r"needs 40000 bytes of arena, the firmware has 32768"):
        check_fit(board.name, 1000, 40_000, **limits)
    with pytest.raises(FitError, match=r"is 60000 bytes, the RAM model slot holds 49152"):
        check_fit(board.name, 60_000, 1000, **limits)


def test_flash_lists_boards(capsys: pytest.CaptureFixture[str]) -> None:
    assert flash_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "mps2_an500" in out and "real: upload with PlatformIO, openocd, pyOCD" in out


def test_flash_refuses_a_corrupt_model_before_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.tbn"
    bad.write_bytes(b"TBNB" + bytes(60))
    assert flash_main(["--board", "mps2_an500", "--model", str(bad)]) == 2
    assert "tbn-flash: error:" in capsys.readouterr().err
    assert flash_main(["--board", "no_such_board"]) == 2


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc (make deps)")
def test_flash_refuses_a_model_too_large_for_the_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real model whose activations outgrow netduinoplus2's 32 KiB arena: refused with the
    numbers after the model-less build, before a firmware with it is built or booted."""
    import torch

    import tbn

    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(784, 9000), torch.nn.ReLU(), torch.nn.Linear(9000, 10)
    )
    tbn.tile_model(model, p=16, min_params=1)
    path = tmp_path / "wide.tbn"
    path.write_bytes(tbn.compile_model(model.eval(), torch.zeros(1, 1, 28, 28)))
    assert flash_main(["--board", "netduinoplus2", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model does not fit" in err and "bytes of arena, the firmware has 32768" in err


def test_a_port_that_cannot_be_opened_is_a_link_error() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LinkError, match=f"cannot open the serial port socket://127.0.0.1:{port}"):
        DeviceLink(f"socket://127.0.0.1:{port}")


def test_a_device_that_goes_away_is_a_link_error() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        link = DeviceLink(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.5, retries=1)
        conn, _ = server.accept()
        conn.close()  # as QEMU does when it exits
        with pytest.raises(LinkError, match="the serial link to the device closed"):
            link.info()
        link.close()


def test_a_device_that_rejects_every_request_says_how() -> None:
    """A device answering each request with a link error (here ERR_TIMEOUT: the frame stopped
    part-way for it) is not silent: the error counts its answers, which point at the cause."""
    from tbn.device.protocol import REPLY, Command, Status

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        link = DeviceLink(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.5, retries=3)
        conn, _ = server.accept()

        def answer() -> None:
            for _ in range(3):
                conn.recv(4096)
                conn.sendall(encode(Command.ERROR | REPLY, 1, bytes([Status.ERR_TIMEOUT, 0])))

        thread = threading.Thread(target=answer)
        thread.start()
        with pytest.raises(LinkError, match=r"0 timeouts; .* rejected as damaged: ERR_TIMEOUT x3\)"):
            link.info()
        thread.join()
        conn.close()
        link.close()


def test_runtime_status_names_match_tbn_h() -> None:
    """ERR_MODEL's detail byte is the runtime's tbn_status; the host names it from tbn.h's enum."""
    import re

    from tbn.device.protocol import RUNTIME_STATUS

    header = (Path(__file__).resolve().parents[1] / "firmware/lib/tbn/include/tbn.h").read_text()
    enum = header[header.index("TBN_OK = 0") : header.index("TBN_ERR_COUNT_")]
    assert tuple(re.findall(r"\b(TBN_(?:OK|ERR_\w+))\b", enum)) == RUNTIME_STATUS


def test_a_board_that_runs_one_model_says_so_before_building(tmp_path: Path) -> None:
    """The Uno builds its model in with only its ops, and runs int8 only: both are refused,
    named, before any build."""
    from tbn.device.session import flash
    from tbn.errors import UsageError

    uno = load_board("uno")
    assert uno.model_ops and uno.slot_bytes == 0 and uno.activations == ("int8",)
    with pytest.raises(UsageError, match="uno runs one model, built in with only its ops: give the model"):
        flash(uno)
    f32 = Path(__file__).parent / "vectors" / "mlp_f32.tbn"
    with pytest.raises(FitError, match="it has f32 activations, the board runs int8 only"):
        flash(uno, f32)
