"""The host side of MLCommons' runner protocol (tbn.device.runner_protocol) against a local
peer: a link that closes mid-reply, or never answers, is a named error, never a hang."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import serial

from tbn.device.runner_protocol import RunnerLink, RunnerProtocolError


def _peer(reply: bytes, close: bool) -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        conn.recv(100)
        conn.sendall(reply)
        if close:
            conn.close()
        else:
            time.sleep(2)  # holds the connection open, saying nothing more
        srv.close()
    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


@pytest.mark.parametrize(("reply", "close", "message"), [
    (b"m-name-dut-[x", True, "closed"),  # the connection drops part-way through the line
    (b"m-name-dut-[x]\r\n", False, "no complete reply line within 0.5 s"),  # no m-ready ever
])
def test_a_dropped_or_silent_link_is_a_named_error(reply: bytes, close: bool, message: str) -> None:
    port = serial.serial_for_url(f"socket://127.0.0.1:{_peer(reply, close)}", timeout=0.05)
    with pytest.raises(RunnerProtocolError, match=message):
        RunnerLink(port, timeout=0.5).name()
