"""Devices: board descriptions, firmware builds, emulators and the serial protocol.

``tbn-flash`` builds and boots or flashes; :class:`DeviceLink` talks to the firmware.
"""

from tbn.boards import Board, BoardError, list_boards, load_board
from tbn.device.link import CommandError, DeviceLink, LinkError
from tbn.errors import DeviceError

__all__ = [
    "Board", "BoardError", "CommandError", "DeviceError", "DeviceLink", "LinkError",
    "list_boards", "load_board",
]
