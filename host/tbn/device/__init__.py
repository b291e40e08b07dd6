"""Devices: board descriptions, firmware builds, emulators and the serial protocol.

``tbn-flash`` builds and boots or flashes; :class:`DeviceLink` talks to the firmware.
"""

from tbn.device.boards import Board, BoardError, list_boards, load_board
from tbn.device.link import DeviceError, DeviceLink, LinkError

__all__ = ["Board", "BoardError", "DeviceError", "DeviceLink", "LinkError", "list_boards", "load_board"]
