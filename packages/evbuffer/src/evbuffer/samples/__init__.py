"""libevent's sample programs, rebuilt on evbuffer: short, commented, runnable.

Each sample is a module with a ``main(argv=None) -> int`` and runs with ``python -m``:

* :mod:`evbuffer.samples.le_proxy` -- ``sample/le-proxy.c``: a TCP proxy that relays
  both ways between two socket bufferevents and keeps its memory bounded with write
  watermarks (the flow-control pattern every bufferevent program needs).
  ``python -m evbuffer.samples.le_proxy 127.0.0.1:8888 127.0.0.1:80``
* :mod:`evbuffer.samples.becat` -- netcat on bufferevents: stdin to a socket, the socket
  to stdout, with half-close. ``python -m evbuffer.samples.becat [-l] HOST PORT``

They import only ``evcore`` and ``evbuffer`` (the event backend is whichever
``evcore.EventBase()`` picks, or the one ``--method`` names).

>>> import evbuffer.samples
>>> evbuffer.samples.SAMPLES
('le_proxy', 'becat')
"""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLES", "format_sockaddr"]

#: The sample modules, each runnable as ``python -m evbuffer.samples.NAME``.
SAMPLES = ("le_proxy", "becat")


def format_sockaddr(address: Any) -> str:
    """A socket address as people write it: ``host:port``, ``[v6host]:port``, or a path.

    >>> format_sockaddr(("127.0.0.1", 8888)), format_sockaddr(("::1", 53, 0, 0))
    ('127.0.0.1:8888', '[::1]:53')
    >>> format_sockaddr("/tmp/sock")
    '/tmp/sock'
    """
    if isinstance(address, str):
        return address
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
