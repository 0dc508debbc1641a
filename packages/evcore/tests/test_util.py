"""Unit tests of :mod:`evcore.util` (libevent's ``evutil`` helpers; regress ``util/``)."""

from __future__ import annotations

import os
import socket

import pytest

from evcore.util import (
    make_listen_socket_reuseable,
    make_socket_closeonexec,
    make_socket_nonblocking,
    parse_sockaddr_port,
    sockaddr_family,
    socketpair,
)


def test_socketpair_blocking_and_not() -> None:
    """``socketpair`` is non-blocking by default; ``nonblocking=False`` leaves it blocking; data flows."""
    a, b = socketpair(nonblocking=False)
    try:
        assert a.getblocking() and b.getblocking()
        a.sendall(b"hello")
        assert b.recv(5) == b"hello"
    finally:
        a.close()
        b.close()
    a, b = socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        assert not a.getblocking()
        with pytest.raises(BlockingIOError):
            a.recv(1)
    finally:
        a.close()
        b.close()


def test_fd_helpers_take_objects_and_ints() -> None:
    """The fd helpers accept a socket object or an int fd."""
    a, b = socket.socketpair()
    try:
        make_socket_nonblocking(a)
        assert not os.get_blocking(a.fileno())
        make_socket_nonblocking(b.fileno())
        assert not os.get_blocking(b.fileno())
        os.set_inheritable(b.fileno(), True)
        make_socket_closeonexec(b)
        assert not os.get_inheritable(b.fileno())
        s = socket.socket()
        make_listen_socket_reuseable(s)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        s.close()
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", ("1.2.3.4", 0)),
        ("1.2.3.4:80", ("1.2.3.4", 80)),
        (" 127.0.0.1:65535 ", ("127.0.0.1", 65535)),
        ("[::1]", ("::1", 0, 0, 0)),
        ("[::1]:53", ("::1", 53, 0, 0)),
        ("ffff::1", ("ffff::1", 0, 0, 0)),
        ("::", ("::", 0, 0, 0)),
    ],
)
def test_parse_sockaddr_port_good(text: str, expected: tuple[object, ...]) -> None:
    """``sockaddr_port_parse``: addresses libevent accepts."""
    assert parse_sockaddr_port(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "1.2.3", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:65536", "[::1", "[::1]x", "[::1]:", "[1.2.3.4]",
     "[1.2.3.4]:80", "host:80", "example.com", "1.2.3.4:-1", "::1:99999:"],
)
def test_parse_sockaddr_port_bad(text: str) -> None:
    """``sockaddr_port_parse``: malformed addresses raise ``ValueError`` (no name lookups)."""
    with pytest.raises(ValueError):
        parse_sockaddr_port(text)


def test_parse_default_port() -> None:
    """A missing port takes ``default_port``."""
    assert parse_sockaddr_port("10.0.0.1", 8080) == ("10.0.0.1", 8080)
    assert parse_sockaddr_port("[fe80::1]", 99) == ("fe80::1", 99, 0, 0)


def test_sockaddr_family() -> None:
    """``sockaddr_predicates``: the family of an address tuple or path."""
    assert sockaddr_family(("1.2.3.4", 80)) == socket.AF_INET
    assert sockaddr_family(("::1", 80, 0, 0)) == socket.AF_INET6
    assert sockaddr_family("/tmp/sock") == socket.AF_UNIX
    assert sockaddr_family(b"\0abstract") == socket.AF_UNIX
