"""Echo server on asyncio: a ``Protocol`` whose ``data_received`` calls ``transport.write(data)``.

The default event loop (selector + epoll on Linux); asyncio's transports already set
``TCP_NODELAY``, it is set again in ``connection_made`` so every stack is alike.  See
``_common.py`` for the command line.  ``uvloop_server.py`` runs this same protocol on uvloop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common


class EchoProtocol(asyncio.Protocol):
    """Echo every byte back as it arrives.

    >>> EchoProtocol().transport is None
    True
    """

    def __init__(self) -> None:
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def run(ns: Any, new_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
    """Serve on a loop made by ``new_loop`` until SIGTERM/SIGINT."""
    _common.prepare(ns)
    loop = new_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(EchoProtocol, "127.0.0.1", ns.port, reuse_address=True)
    )
    _common.ready(server.sockets[0].getsockname()[1])
    try:
        _common.serve(ns, loop.run_forever)
    finally:
        server.close()
        loop.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT."""
    run(_common.parse_args(argv, "asyncio echo server"), asyncio.new_event_loop)


if __name__ == "__main__":
    main()
