"""Echo server on evbuffer: socket bufferevents from a :class:`evbuffer.Listener`.

Each accepted connection becomes ``Bufferevent.socket(base, sock, BEV_OPT.CLOSE_ON_FREE)``
with ``TCP_NODELAY``; its read callback echoes by moving the input buffer's chunks onto the
output buffer (``bev.output.add_buffer(bev.input)``: no bytes copied in Python, the way users
should echo), and the eager write sends them when the callback returns.  EOF or an error frees
the bufferevent.  The loop is evcore's default base (epoll on Linux), locking on: the
configuration users get.  See ``_common.py`` for the command line.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

import evcore
from evbuffer import BEV_EVENT, BEV_OPT, LEV_OPT, Bufferevent, Listener

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common


def _readcb(bev: Bufferevent, arg: Any) -> None:
    bev.output.add_buffer(bev.input)


def _eventcb(bev: Bufferevent, events: int, arg: Any) -> None:
    if events & (BEV_EVENT.EOF | BEV_EVENT.ERROR):
        bev.free()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT."""
    ns = _common.parse_args(argv, "evbuffer echo server")
    _common.prepare(ns)
    base = evcore.EventBase()
    rw = evcore.EV_READ | evcore.EV_WRITE

    def on_accept(listener: Listener, sock: socket.socket, address: Any, arg: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        bev = Bufferevent.socket(base, sock, BEV_OPT.CLOSE_ON_FREE)
        bev.setcb(_readcb, None, _eventcb)
        bev.enable(rw)

    lev = Listener(base, on_accept, flags=LEV_OPT.REUSEABLE, address=("127.0.0.1", ns.port))
    _common.ready(lev.address[1])
    _common.serve(ns, base.dispatch)
    lev.free()


if __name__ == "__main__":
    main()
