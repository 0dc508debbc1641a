"""Small socket helpers (libevent's ``evutil``).

>>> parse_sockaddr_port("127.0.0.1:8080")
('127.0.0.1', 8080)
>>> parse_sockaddr_port("[::1]:53")
('::1', 53, 0, 0)
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

__all__ = [
    "socketpair",
    "make_socket_nonblocking",
    "make_socket_closeonexec",
    "make_listen_socket_reuseable",
    "parse_sockaddr_port",
    "sockaddr_family",
]


def socketpair(
    family: int = socket.AF_UNIX, type: int = socket.SOCK_STREAM, nonblocking: bool = True
) -> tuple[socket.socket, socket.socket]:
    """A connected pair of sockets, non-blocking by default (``evutil_socketpair``).

    >>> a, b = socketpair()
    >>> a.getblocking(), b.getblocking()
    (False, False)
    >>> a.close(); b.close()
    """
    a, b = socket.socketpair(family, type)
    if nonblocking:
        a.setblocking(False)
        b.setblocking(False)
    return a, b


def _fd(sock: Any) -> int:
    return sock if isinstance(sock, int) else int(sock.fileno())


def make_socket_nonblocking(sock: Any) -> None:
    """Put a socket (object or int fd) in non-blocking mode.

    >>> a, b = socket.socketpair()
    >>> make_socket_nonblocking(a.fileno()); os.get_blocking(a.fileno())
    False
    >>> a.close(); b.close()
    """
    os.set_blocking(_fd(sock), False)


def make_socket_closeonexec(sock: Any) -> None:
    """Make an fd close on ``exec`` (Python's sockets already are; ints may not be).

    >>> r, w = os.pipe(); os.set_inheritable(r, True)
    >>> make_socket_closeonexec(r); os.get_inheritable(r)
    False
    >>> os.close(r); os.close(w)
    """
    os.set_inheritable(_fd(sock), False)


def make_listen_socket_reuseable(sock: socket.socket) -> None:
    """Set ``SO_REUSEADDR`` so a restarted server can bind at once.

    >>> s = socket.socket(); make_listen_socket_reuseable(s)
    >>> s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
    True
    >>> s.close()
    """
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)


def parse_sockaddr_port(text: str, default_port: int = 0) -> tuple[Any, ...]:
    """Parse ``"ip"``, ``"ip:port"``, ``"[ipv6]"``, ``"[ipv6]:port"`` or a bare IPv6 into a socket address.

    Returns ``(host, port)`` for IPv4 and ``(host, port, 0, 0)`` for IPv6, ready for
    ``socket.connect``/``bind``; raises :class:`ValueError` on anything else (no
    name resolution happens here, as in libevent's ``evutil_parse_sockaddr_port``).

    >>> parse_sockaddr_port("10.0.0.1")
    ('10.0.0.1', 0)
    >>> parse_sockaddr_port("fe80::1")
    ('fe80::1', 0, 0, 0)
    >>> parse_sockaddr_port("1.2.3.4:99999")
    Traceback (most recent call last):
    ...
    ValueError: bad port in '1.2.3.4:99999'
    """
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ValueError(f"unbalanced '[' in {text!r}")
        host = text[1:close]
        rest = text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"junk after ']' in {text!r}")
            port_text = rest[1:]
        v6 = True
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        v6 = False
    else:
        host = text
        v6 = ":" in text
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address in {text!r}") from None
    if (addr.version == 6) != v6:
        raise ValueError(f"address family mismatch in {text!r}")
    port = default_port
    if port_text is not None:
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"bad port in {text!r}")
        port = int(port_text)
    if addr.version == 6:
        return (str(addr), port, 0, 0)
    return (str(addr), port)


def sockaddr_family(address: Any) -> int:
    """The address family for a socket address tuple (or a path string for AF_UNIX).

    >>> sockaddr_family(("::1", 80, 0, 0)) == socket.AF_INET6, sockaddr_family("/tmp/s") == socket.AF_UNIX
    (True, True)
    """
    if isinstance(address, (str, bytes)):
        return socket.AF_UNIX
    if len(address) == 4:
        return socket.AF_INET6
    return socket.AF_INET
