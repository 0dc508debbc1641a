"""Bufferevent conformance suite, part 2: events (EOF, half-close, errors, connecting, timeouts).

Every test takes the ``bev_pair_factory`` fixture (see
:mod:`evbuffer.testing.bev_suite_support`); tests marked with
:func:`~evbuffer.testing.bev_suite_support.requires` run on the kinds that can.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import time

from evcore import EV_READ, EV_WRITE

from ..bufferevent import BEV_EVENT, BEV_OPT
from .bev_suite_support import (
    PEER_GONE_ERRNOS,
    RW,
    BevPairFactory,
    Recorder,
    clog,
    requires,
    run_for,
    run_until,
)

__all__ = [
    "test_eof_when_peer_freed",
    "test_eof_after_pending_data",
    "test_half_close",
    "test_write_to_reset_peer",
    "test_connect_tcp",
    "test_connect_unix_path",
    "test_connect_refused",
    "test_connect_deferred",
    "test_free_inside_connected_eventcb",
    "test_socket_error_zero_without_error",
    "test_read_timeout",
    "test_read_timeout_restarts_on_data",
    "test_read_timeout_not_while_disabled",
    "test_write_timeout",
    "test_timeouts_validation",
]

READ_EOF = BEV_EVENT.READING | BEV_EVENT.EOF


def test_eof_when_peer_freed(bev_pair_factory: BevPairFactory) -> None:
    """Freeing one end: the other gets what was sent, then ``READING|EOF`` (once)."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(a)
    a.enable(EV_READ)
    b.write(b"last words")
    run_until(base, lambda: len(rec.data) >= 10, what="data before EOF")
    b.free()
    assert b.freed
    run_until(base, lambda: rec.events, what="EOF")
    run_for(base, 0.05)
    assert bytes(rec.data) == b"last words"
    assert rec.events == [READ_EOF], rec.events
    assert a.socket_error == 0
    assert rec.violations == []


def test_eof_after_pending_data(bev_pair_factory: BevPairFactory) -> None:
    """Data sent right before the peer went away is read before the EOF is reported (also deferred)."""
    for options in (0, BEV_OPT.DEFER_CALLBACKS):
        _eof_after_pending_data_once(bev_pair_factory, options)


def _eof_after_pending_data_once(bev_pair_factory: BevPairFactory, options: int) -> None:
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, options)
    order: list[object] = []
    rec = Recorder(a, on_read=lambda bev: order.append("data"), on_event=lambda bev, w: order.append(w))
    b.write(b"x" * 5000)
    # let the loop run b's (possibly deferred) output callback: free() itself never flushes a
    # socket's output (libevent neither); a pair hands what is left to the survivor
    run_for(base, 0.05)
    b.free()
    a.enable(EV_READ)
    run_until(base, lambda: rec.events, what="EOF")
    run_for(base, 0.05)
    assert bytes(rec.data) == b"x" * 5000
    assert order[-1] == READ_EOF and "data" in order[:-1], order
    assert rec.events == [READ_EOF]


@requires("half_close")
def test_half_close(bev_pair_factory: BevPairFactory) -> None:
    """One end stops sending: the peer reads the rest, then ``READING|EOF``, and can still answer."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    ra = Recorder(a)
    rb = Recorder(b)
    a.enable(EV_READ)
    b.enable(EV_READ)
    a.write(b"request")
    run_until(base, lambda: len(a.output) == 0 and len(rb.data) >= 7, what="request sent")
    bev_pair_factory.half_close(a)
    run_until(base, lambda: rb.events, what="EOF at b")
    assert bytes(rb.data) == b"request"
    assert rb.events == [READ_EOF], rb.events
    b.write(b"response after EOF")
    run_until(base, lambda: len(ra.data) >= 18, what="response at a")
    assert bytes(ra.data) == b"response after EOF"
    assert ra.events == []
    assert ra.violations == rb.violations == []


@requires("abort")
def test_write_to_reset_peer(bev_pair_factory: BevPairFactory) -> None:
    """Writing to a reset peer: ``WRITING|ERROR`` with the errno in ``socket_error``."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(a, drain=False)
    a.disable(EV_READ)
    bev_pair_factory.abort(b)
    time.sleep(0.01)

    def write_until_error() -> bool:
        # keep writing until the kernel reports the reset peer (bounded by run_until's timeout)
        if not rec.events:
            a.write(b"q" * 65536)
        return bool(rec.events)

    run_until(base, write_until_error, what="the write error")
    assert rec.events[0] == BEV_EVENT.WRITING | BEV_EVENT.ERROR, rec.events
    assert a.socket_error in PEER_GONE_ERRNOS, errno.errorcode.get(a.socket_error, a.socket_error)
    a.write(b"write() never refuses data")  # even after the error
    assert rec.violations == []


def _connected(bev_pair_factory: BevPairFactory, address: object, family: int) -> None:
    base = bev_pair_factory.base()
    lst = bev_pair_factory.listener(family, path=address if family == socket.AF_UNIX else None)  # type: ignore[arg-type]
    addr = lst.getsockname()
    bev = bev_pair_factory.new_unconnected(base)
    rec = Recorder(bev)
    bev.enable(RW)
    bev.write(b"queued before connect")
    bev_pair_factory.connect(bev, addr)
    run_until(base, lambda: rec.events, what="CONNECTED")
    assert rec.events == [BEV_EVENT.CONNECTED], rec.events
    assert bev.socket_error == 0
    peer, _ = lst.accept()
    bev_pair_factory.own(peer)
    peer.settimeout(5.0)
    got = b""
    while len(got) < 21:
        got += peer.recv(100)
    assert got == b"queued before connect"
    peer.sendall(b"welcome")
    run_until(base, lambda: len(rec.data) >= 7, what="data from the accepted socket")
    assert bytes(rec.data) == b"welcome"
    peer.close()
    run_until(base, lambda: len(rec.events) > 1, what="EOF")
    assert rec.events[1] == READ_EOF
    assert rec.violations == []


@requires("new_unconnected")
def test_connect_tcp(bev_pair_factory: BevPairFactory) -> None:
    """``connect()`` to a real listening TCP socket reports ``CONNECTED``; queued data then flows."""
    _connected(bev_pair_factory, None, socket.AF_INET)


@requires("new_unconnected")
def test_connect_unix_path(bev_pair_factory: BevPairFactory) -> None:
    """``connect(path)`` reaches an AF_UNIX listening socket."""
    with tempfile.TemporaryDirectory() as d:
        _connected(bev_pair_factory, os.path.join(d, "sock"), socket.AF_UNIX)


@requires("new_unconnected")
def test_connect_refused(bev_pair_factory: BevPairFactory) -> None:
    """``connect()`` to a closed port: ``ERROR`` with ``ECONNREFUSED`` in ``socket_error``."""
    base = bev_pair_factory.base()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = s.getsockname()  # closed again: nothing listens there
    bev = bev_pair_factory.new_unconnected(base)
    rec = Recorder(bev)
    bev.enable(RW)
    bev_pair_factory.connect(bev, addr)
    run_until(base, lambda: rec.events, what="the connect error")
    run_for(base, 0.05)
    assert len(rec.events) == 1 and rec.events[0] & BEV_EVENT.ERROR, rec.events
    assert not rec.events[0] & BEV_EVENT.CONNECTED
    assert bev.socket_error == errno.ECONNREFUSED, errno.errorcode.get(bev.socket_error)
    assert rec.violations == []


@requires("new_unconnected")
def test_connect_deferred(bev_pair_factory: BevPairFactory) -> None:
    """With ``DEFER_CALLBACKS`` ``CONNECTED`` arrives from the loop, before data read in the same pass."""
    base = bev_pair_factory.base()
    lst = bev_pair_factory.listener()
    bev = bev_pair_factory.new_unconnected(base, BEV_OPT.DEFER_CALLBACKS)
    order: list[object] = []
    rec = Recorder(bev, on_read=lambda b: order.append("data"), on_event=lambda b, w: order.append(w))
    bev.enable(RW)
    with rec.api_call():
        bev_pair_factory.connect(bev, lst.getsockname())
    peer, _ = lst.accept()
    bev_pair_factory.own(peer)
    peer.sendall(b"greeting")
    run_until(base, lambda: len(rec.data) >= 8, what="CONNECTED and the greeting")
    assert order[0] == BEV_EVENT.CONNECTED, order
    assert bytes(rec.data) == b"greeting"
    assert rec.violations == []


@requires("new_unconnected")
def test_free_inside_connected_eventcb(bev_pair_factory: BevPairFactory) -> None:
    """The event callback frees the bufferevent on ``CONNECTED``: nothing runs after, the peer sees EOF."""
    base = bev_pair_factory.base()
    lst = bev_pair_factory.listener()
    bev = bev_pair_factory.new_unconnected(base)
    rec = Recorder(bev, on_event=lambda b, w: b.free())
    bev.enable(RW)
    bev_pair_factory.connect(bev, lst.getsockname())
    run_until(base, lambda: bev.freed, what="freed on CONNECTED")
    run_for(base, 0.05)
    assert rec.events == [BEV_EVENT.CONNECTED]
    peer, _ = lst.accept()
    bev_pair_factory.own(peer)
    peer.settimeout(5.0)
    assert peer.recv(10) == b""
    assert rec.violations == []


def test_socket_error_zero_without_error(bev_pair_factory: BevPairFactory) -> None:
    """``socket_error`` is 0 on a healthy bufferevent, and after a plain EOF."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    assert a.socket_error == 0 and b.socket_error == 0
    rec = Recorder(a)
    a.enable(EV_READ)
    b.free()
    run_until(base, lambda: rec.events)
    assert a.socket_error == 0


def test_read_timeout(bev_pair_factory: BevPairFactory) -> None:
    """Silence for the read timeout: ``READING|TIMEOUT``, reading disabled; re-enabling reads again."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.set_timeouts(read=0.08)
    assert b.timeout_read == 0.08
    b.enable(EV_READ)
    t0 = time.monotonic()
    run_until(base, lambda: rec.events, timeout=5.0, what="the read timeout")
    elapsed = time.monotonic() - t0
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT], rec.events
    assert 0.06 <= elapsed < 3.0, elapsed
    assert not b.get_enabled() & EV_READ
    a.write(b"late")
    run_for(base, 0.05)
    assert rec.data == b""
    assert len(rec.events) == 1  # disabled: no further timeouts
    b.set_timeouts(read=None)
    b.enable(EV_READ)
    run_until(base, lambda: len(rec.data) >= 4, what="data after re-enabling")
    assert bytes(rec.data) == b"late"
    run_for(base, 0.15)
    assert len(rec.events) == 1


def test_read_timeout_restarts_on_data(bev_pair_factory: BevPairFactory) -> None:
    """Data arriving restarts the read timeout; it fires only after real silence."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.set_timeouts(read=0.15)
    b.enable(EV_READ)
    for i in range(8):
        a.write(b"%d" % i)
        run_for(base, 0.04)
    assert rec.events == [], rec.events
    assert bytes(rec.data) == b"01234567"
    t0 = time.monotonic()
    run_until(base, lambda: rec.events, timeout=5.0, what="the read timeout")
    assert time.monotonic() - t0 >= 0.08
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]


def test_read_timeout_not_while_disabled(bev_pair_factory: BevPairFactory) -> None:
    """A read timeout counts only while reading is enabled."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.set_timeouts(read=0.05)
    b.disable(EV_READ)
    run_for(base, 0.15)
    assert rec.events == []
    b.enable(EV_READ)
    b.disable(EV_READ)
    run_for(base, 0.15)
    assert rec.events == []


def test_write_timeout(bev_pair_factory: BevPairFactory) -> None:
    """A peer that does not read: ``WRITING|TIMEOUT`` once nothing could be sent for the write timeout."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(a, drain=False)
    a.set_timeouts(write=0.1)
    assert a.timeout_write == 0.1
    written = clog(base, a)
    t0 = time.monotonic()
    run_until(base, lambda: rec.events, timeout=5.0, what="the write timeout")
    elapsed = time.monotonic() - t0
    assert rec.events == [BEV_EVENT.WRITING | BEV_EVENT.TIMEOUT], rec.events
    assert elapsed < 3.0
    assert not a.get_enabled() & EV_WRITE
    assert len(a.output) > 0
    # nothing was lost: the reader gets all once both sides go again
    rb = Recorder(b)
    b.enable(EV_READ)
    a.set_timeouts(write=None)
    a.enable(EV_WRITE)
    run_until(base, lambda: len(rb.data) >= written, timeout=30.0, what="everything after the timeout")
    assert len(rb.data) == written
    assert len(rec.events) == 1


def test_timeouts_validation(bev_pair_factory: BevPairFactory) -> None:
    """Negative or NaN timeouts are refused; ``None`` turns a timeout off."""
    import pytest

    base = bev_pair_factory.base()
    a, _b = bev_pair_factory(base)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            a.set_timeouts(read=bad)
        with pytest.raises(ValueError):
            a.set_timeouts(write=bad)
    a.set_timeouts(read=1.5, write=2.5)
    assert (a.timeout_read, a.timeout_write) == (1.5, 2.5)
    a.set_timeouts()
    assert (a.timeout_read, a.timeout_write) == (None, None)
    a.free()
    a.set_timeouts(read=1.0)  # harmless on a freed bufferevent
