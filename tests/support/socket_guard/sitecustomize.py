"""Loaded by tests via PYTHONPATH: refuse and record every network socket a process tries to open.

The log file named by GREENLIGHT_SOCKET_LOG gets one line per attempt; the attempt raises OSError.
"""

import os
import socket

_LOG = os.environ.get("GREENLIGHT_SOCKET_LOG")


def _record(what, *args):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {args!r}\n")
    raise OSError(f"network access blocked by test guard: {what} {args!r}")


def _connect(self, address, *a):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _real_connect(self, address, *a)
    _record("connect", address)


def _getaddrinfo(host, *args, **kwargs):
    _record("getaddrinfo", host)


_real_connect = socket.socket.connect
socket.socket.connect = _connect
socket.socket.connect_ex = _connect
socket.getaddrinfo = _getaddrinfo
