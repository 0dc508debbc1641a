"""Socket bufferevents (evbuffer.bev_socket) beyond the conformance suite, on every backend.

Name resolution, ``setfd``, repeated ``connect``, fd ownership, the eager write path,
read errors and connect timeouts: real sockets on 127.0.0.1 and AF_UNIX throughout.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

import evcore
from evbuffer.buffer import Buffer
from evbuffer.bufferevent import BEV_EVENT, BEV_OPT, Bufferevent
from evbuffer.errors import EvbufferError
from evbuffer.testing.bev_suite import Recorder, run_for, run_until
from evbuffer.testing.bev_suite_support import fd_is_open
from evcore import EV_READ, EV_WRITE, EVLOOP_NONBLOCK, Event, EventBase

RW = EV_READ | EV_WRITE
METHODS = evcore.supported_methods()


@pytest.fixture(params=METHODS)
def base(request: Any) -> Iterator[EventBase]:
    b = EventBase(method=request.param)
    yield b
    b.free()


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Objects with ``free()`` or ``close()`` to release at teardown."""
    items: list[Any] = []
    yield items
    for obj in reversed(items):
        try:
            (getattr(obj, "free", None) or obj.close)()
        except OSError:
            pass


def _listener(cleanup: list[Any], family: int = socket.AF_INET, backlog: int = 8) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    cleanup.append(s)
    s.bind(("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0))
    s.listen(backlog)
    return s


def _pair(cleanup: list[Any]) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    cleanup += [a, b]
    return a, b


def _accept(lst: socket.socket, cleanup: list[Any]) -> socket.socket:
    lst.settimeout(5.0)
    peer, _ = lst.accept()
    cleanup.append(peer)
    peer.settimeout(5.0)
    return peer


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


# ---------------------------------------------------------------------------- name resolution
def test_connect_hostname_localhost_thread_pool(base: EventBase, cleanup: list[Any]) -> None:
    """``connect_hostname(None, AF_INET, "localhost", port)`` resolves in the pool and connects."""
    lst = _listener(cleanup)
    port = lst.getsockname()[1]
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(RW)
    bev.write(b"hello by name")
    bev.connect_hostname(None, socket.AF_INET, "localhost", port)
    assert bev.get_dns_error() == 0
    run_until(base, lambda: rec.events, what="CONNECTED")
    assert rec.events == [BEV_EVENT.CONNECTED]
    assert bev.get_dns_error() == 0
    peer = _accept(lst, cleanup)
    assert _recv_exactly(peer, 13) == b"hello by name"
    peer.sendall(b"hi")
    run_until(base, lambda: len(rec.data) >= 2)
    assert bytes(rec.data) == b"hi"
    fd = bev.fileno()
    bev.free()
    assert not fd_is_open(fd)  # the socket connect_hostname made is owned


def test_connect_hostname_bogus_name(base: EventBase, cleanup: list[Any]) -> None:
    """A name that does not resolve: ``ERROR``, and ``get_dns_error()`` gives the EAI code."""
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(RW)
    bev.connect_hostname(None, socket.AF_INET, "no-such-host.invalid", 80)
    run_until(base, lambda: rec.events, what="the lookup failure")
    assert rec.events == [BEV_EVENT.ERROR], rec.events
    assert bev.get_dns_error() != 0
    assert bev.get_dns_error() in (
        socket.EAI_NONAME,
        socket.EAI_AGAIN,
        socket.EAI_FAIL,
        getattr(socket, "EAI_NODATA", -5),
    )
    assert bev.fileno() == -1


def test_connect_hostname_free_during_lookup(base: EventBase) -> None:
    """Freeing the bufferevent while the pool resolves: no callback, and the loop ends."""
    bev = Bufferevent.socket(base, None)
    rec = Recorder(bev)
    bev.connect_hostname(None, socket.AF_INET, "localhost", 9)
    bev.free()
    t0 = time.monotonic()
    assert base.loop() in (0, 1)
    assert time.monotonic() - t0 < 10
    assert rec.events == [] and rec.violations == []


class HostsDnsBase:
    """A DNS base answering from a table, later, from the loop (the interface evextras.dns offers)."""

    class Request:
        def __init__(self, ev: Event) -> None:
            self.ev = ev
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True
            self.ev.free()

    def __init__(self, base: EventBase, table: dict[str, str]) -> None:
        self.base = base
        self.table = table
        self.requests: list[HostsDnsBase.Request] = []
        self.hints: list[dict[str, int]] = []

    def getaddrinfo(
        self, node: str, service: str, hints: dict[str, int], callback: Any, arg: Any = None
    ) -> Any:
        self.hints.append(hints)

        def answer(fd: int, what: int, _: Any) -> None:
            ip = self.table.get(node)
            if ip is None:
                callback(socket.EAI_NONAME, None, arg)
            else:
                callback(0, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(service)))], arg)

        ev = Event.timer(self.base, answer)
        ev.add(0.01)
        req = HostsDnsBase.Request(ev)
        self.requests.append(req)
        return req


def test_connect_hostname_dns_base(base: EventBase, cleanup: list[Any]) -> None:
    """A DNS base passed in is used through its ``getaddrinfo``; its answer is connected to."""
    lst = _listener(cleanup)
    dns = HostsDnsBase(base, {"service.test": "127.0.0.1"})
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(RW)
    bev.connect_hostname(dns, socket.AF_INET, "service.test", lst.getsockname()[1])
    assert dns.hints == [{"family": socket.AF_INET, "type": socket.SOCK_STREAM, "proto": 0, "flags": 0}]
    run_until(base, lambda: rec.events, what="CONNECTED")
    assert rec.events == [BEV_EVENT.CONNECTED]
    _accept(lst, cleanup)


def test_connect_hostname_dns_base_failure(base: EventBase, cleanup: list[Any]) -> None:
    """A DNS base reporting a failure: ``ERROR`` with its code in ``get_dns_error()``."""
    dns = HostsDnsBase(base, {})
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.connect_hostname(dns, socket.AF_INET, "unknown.test", 80)
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.ERROR]
    assert bev.get_dns_error() == socket.EAI_NONAME


def test_connect_hostname_free_cancels_dns_request(base: EventBase) -> None:
    """Freeing during a DNS base lookup cancels the request."""
    dns = HostsDnsBase(base, {"x.test": "127.0.0.1"})
    bev = Bufferevent.socket(base, None)
    bev.connect_hostname(dns, socket.AF_INET, "x.test", 80)
    bev.free()
    assert dns.requests[0].cancelled
    assert base.loop() == 1


def test_connect_hostname_on_freed_raises(base: EventBase) -> None:
    bev = Bufferevent.socket(base, None)
    bev.free()
    with pytest.raises(EvbufferError):
        bev.connect_hostname(None, socket.AF_INET, "localhost", 80)
    with pytest.raises(EvbufferError):
        bev.connect(("127.0.0.1", 80))


# ---------------------------------------------------------------------------- connect
def test_connect_twice(base: EventBase, cleanup: list[Any]) -> None:
    """``connect()`` again on a connected bufferevent: one outcome each, EISCONN at the latest the
    third time (Linux's ``connect`` reports a finished non-blocking connect once as success), and
    the connection stays usable both ways."""
    lst = _listener(cleanup)
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(RW)
    bev.connect(lst.getsockname())
    run_until(base, lambda: rec.events, what="CONNECTED")
    peer = _accept(lst, cleanup)
    bev.connect(lst.getsockname())
    run_until(base, lambda: len(rec.events) > 1, what="the second connect's outcome")
    bev.connect(lst.getsockname())
    run_until(base, lambda: len(rec.events) > 2, what="the third connect's outcome")
    run_for(base, 0.05)
    assert rec.events[0] == BEV_EVENT.CONNECTED
    assert len(rec.events) == 3, rec.events
    assert rec.events[2] == BEV_EVENT.ERROR, rec.events
    assert bev.socket_error == errno.EISCONN
    # the first connection still works both ways
    bev.write(b"still here")
    assert _recv_exactly(peer, 10) == b"still here"
    peer.sendall(b"me too")
    run_until(base, lambda: len(rec.data) >= 6, timeout=5.0, what="data after the failed connect")
    assert bytes(rec.data) == b"me too"


def test_connect_missing_unix_path(base: EventBase) -> None:
    """``connect(path)`` where nothing exists: ``ERROR`` with ENOENT, from the loop."""
    with tempfile.TemporaryDirectory() as d:
        bev = Bufferevent.socket(base, None)
        rec = Recorder(bev)
        bev.connect(os.path.join(d, "nothing-here"))
        assert rec.events == []  # reported from the loop, never inside connect()
        run_until(base, lambda: rec.events)
        assert rec.events == [BEV_EVENT.ERROR]
        assert bev.socket_error == errno.ENOENT
        bev.free()


def test_connect_existing_socket_int_fd(base: EventBase, cleanup: list[Any]) -> None:
    """``connect()`` on a bufferevent over an unconnected int fd uses that fd."""
    lst = _listener(cleanup)
    s = socket.socket()
    cleanup.append(s)
    bev = Bufferevent.socket(base, s.fileno())
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.connect(lst.getsockname())
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.CONNECTED]
    assert s.getpeername() == lst.getsockname()
    bev.free()
    assert fd_is_open(s.fileno())  # borrowed: still ours


def test_connect_refused_int_fd(base: EventBase, cleanup: list[Any]) -> None:
    """Connect errors on a borrowed int fd are read with SO_ERROR too."""
    with socket.socket() as tmp:
        tmp.bind(("127.0.0.1", 0))
        addr = tmp.getsockname()
    s = socket.socket()
    cleanup.append(s)
    bev = Bufferevent.socket(base, s.fileno())
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.connect(addr)
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.ERROR]
    assert bev.socket_error == errno.ECONNREFUSED


def test_connect_bad_address(base: EventBase) -> None:
    """An address the family cannot take is reported as ``ERROR`` from the loop, not raised."""
    bev = Bufferevent.socket(base, None)
    rec = Recorder(bev)
    bev.connect(("127.0.0.1", "not a port"))  # type: ignore[arg-type]
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.ERROR]
    assert bev.socket_error != 0
    bev.free()


def test_connect_timeout(base: EventBase, cleanup: list[Any]) -> None:
    """A connect not done within the write timeout: ``WRITING|TIMEOUT`` (Linux: a full backlog)."""
    lst = _listener(cleanup, backlog=0)
    fillers = []
    for _ in range(8):  # fill the accept queue so the next SYN is dropped
        s = socket.socket()
        s.setblocking(False)
        cleanup.append(s)
        s.connect_ex(lst.getsockname())
        fillers.append(s)
    time.sleep(0.05)
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.set_timeouts(write=0.2)
    bev.connect(lst.getsockname())
    run_until(base, lambda: rec.events, timeout=10.0)
    if rec.events == [BEV_EVENT.CONNECTED]:
        pytest.skip("this kernel completed the connect despite a full backlog")
    assert rec.events == [BEV_EVENT.WRITING | BEV_EVENT.TIMEOUT], rec.events


# ---------------------------------------------------------------------------- fds
def test_borrowed_socket_left_open(base: EventBase, cleanup: list[Any]) -> None:
    """Without ``CLOSE_ON_FREE`` ``free()`` leaves the socket open (object or int fd)."""
    s1, s2 = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    assert bev.fileno() == s1.fileno()
    bev.free()
    assert fd_is_open(s1.fileno())
    s1.sendall(b"usable")
    assert s2.recv(10) == b"usable"
    bev2 = Bufferevent.socket(base, s2.fileno())
    bev2.free()
    assert fd_is_open(s2.fileno())


def test_owned_int_fd_closed(base: EventBase, cleanup: list[Any]) -> None:
    """``CLOSE_ON_FREE`` with an int fd closes the fd at ``free()``."""
    s1, s2 = socket.socketpair()
    cleanup.append(s2)
    fd = s1.detach()
    bev = Bufferevent.socket(base, fd, BEV_OPT.CLOSE_ON_FREE)
    bev.write(b"x")
    bev.free()
    assert not fd_is_open(fd)
    assert s2.recv(10) == b"x"
    assert s2.recv(10) == b""


def test_closed_socket_refused(base: EventBase) -> None:
    s = socket.socket()
    s.close()
    with pytest.raises(EvbufferError):
        Bufferevent.socket(base, s)


def test_setfd(base: EventBase, cleanup: list[Any]) -> None:
    """``setfd`` moves the bufferevent to another socket; the old one stays open and is left alone."""
    s1, p1 = _pair(cleanup)
    s2, p2 = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(RW)
    p1.sendall(b"one")
    run_until(base, lambda: len(rec.data) >= 3)
    bev.setfd(s2)
    assert bev.fileno() == s2.fileno()
    assert fd_is_open(s1.fileno())
    p1.sendall(b"ignored")
    p2.sendall(b"two")
    run_until(base, lambda: len(rec.data) >= 6)
    run_for(base, 0.05)
    assert bytes(rec.data) == b"onetwo"
    bev.write(b"out")
    assert p2.recv(10) == b"out"
    assert s1.recv(100) == b"ignored"  # the old socket was left alone, unread


def test_setfd_with_pending_output(base: EventBase, cleanup: list[Any]) -> None:
    """Output queued while there was no fd goes out once ``setfd`` gives one."""
    s1, p1 = _pair(cleanup)
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    assert bev.fileno() == -1
    bev.write(b"queued")
    bev.enable(EV_READ)
    bev.setfd(s1)
    run_until(base, lambda: len(bev.output) == 0)
    assert p1.recv(10) == b"queued"


# ---------------------------------------------------------------------------- the write path
def test_eager_write_without_loop(base: EventBase, cleanup: list[Any]) -> None:
    """A write with a reading peer goes out inside ``write()``: the loop need not run."""
    s1, peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    bev.write(b"now")
    assert len(bev.output) == 0
    peer.setblocking(False)
    assert peer.recv(10) == b"now"


def test_writecb_from_loop_after_eager_drain(base: EventBase, cleanup: list[Any]) -> None:
    """After an eager drain the write callback runs from the loop, once, never inside ``write()``."""
    s1, peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    rec = Recorder(bev, drain=False)
    with rec.api_call():
        bev.write(b"abc")
        bev.write(b"def")
    assert rec.writes == 0
    base.loop(EVLOOP_NONBLOCK)
    assert rec.writes == 1
    run_for(base, 0.05)
    assert rec.writes == 1
    assert peer.recv(10) == b"abcdef"
    assert rec.violations == []


def test_no_writecb_without_callback(base: EventBase, cleanup: list[Any]) -> None:
    """With no write callback an eager drain schedules nothing."""
    s1, _peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    bev.write(b"quiet")
    assert base.num_events() == 0


def test_writes_in_readcb_leave_together(base: EventBase, cleanup: list[Any]) -> None:
    """Writes made inside the read callback are sent when it returns, in one go."""
    s1, peer = _pair(cleanup)
    peer.setblocking(False)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    inside: list[bool] = []

    def on_read(b: Bufferevent) -> None:
        for i in range(10):
            b.write(b"%d" % i)
        try:
            peer.recv(100)
            inside.append(True)
        except BlockingIOError:
            inside.append(False)

    rec = Recorder(bev, on_read=on_read)
    bev.enable(EV_READ)
    peer.send(b"go")
    run_until(base, lambda: rec.reads)
    assert inside == [False]
    assert len(bev.output) == 0
    assert peer.recv(100) == b"0123456789"


def test_free_in_readcb_after_write(base: EventBase, cleanup: list[Any]) -> None:
    """A read callback that writes then frees: nothing is sent after free, nothing breaks."""
    s1, peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)

    def on_read(b: Bufferevent) -> None:
        b.write(b"reply")
        b.free()

    Recorder(bev, on_read=on_read)
    bev.enable(EV_READ)
    peer.send(b"x")
    run_until(base, lambda: bev.freed)
    assert base.num_events() == 0


def test_write_file(base: EventBase, cleanup: list[Any]) -> None:
    """A buffer holding a file segment is sent through the bufferevent (``add_file``)."""
    s1, peer = _pair(cleanup)
    peer.settimeout(5.0)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    with tempfile.TemporaryFile() as f:
        f.write(b"0123456789" * 1000)
        f.flush()
        buf = Buffer()
        buf.add_file(os.dup(f.fileno()), 5, 5000)
        bev.write_buffer(buf)
        run_until(base, lambda: len(bev.output) == 0)
    got = _recv_exactly(peer, 5000)
    assert got == (b"0123456789" * 1000)[5:5005]


def test_writing_disabled_by_error(base: EventBase, cleanup: list[Any]) -> None:
    """A write error disables writing: ``get_enabled()`` no longer holds ``EV_WRITE``."""
    s1, peer = socket.socketpair()
    bev = Bufferevent.socket(base, s1, BEV_OPT.CLOSE_ON_FREE)
    cleanup.append(bev)
    rec = Recorder(bev, drain=False)
    peer.close()
    bev.write(b"x" * 100000)
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.WRITING | BEV_EVENT.ERROR]
    assert bev.socket_error == errno.EPIPE
    assert not bev.get_enabled() & EV_WRITE


# ---------------------------------------------------------------------------- the read path
def test_read_error_reset(base: EventBase, cleanup: list[Any]) -> None:
    """A TCP peer that resets: ``READING|ERROR`` with ECONNRESET, reading disabled."""
    lst = _listener(cleanup)
    c = socket.create_connection(lst.getsockname())
    cleanup.append(c)
    peer = _accept(lst, cleanup)
    bev = Bufferevent.socket(base, c)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(EV_READ)
    bev.write(b"unread by the peer")  # unread data makes close() send RST
    time.sleep(0.01)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.ERROR], rec.events
    assert bev.socket_error == errno.ECONNRESET
    assert not bev.get_enabled() & EV_READ


def test_eof_disables_reading_and_repeats(base: EventBase, cleanup: list[Any]) -> None:
    """At EOF reading is disabled; enabling it again reports EOF again."""
    s1, peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(EV_READ)
    peer.shutdown(socket.SHUT_WR)
    run_until(base, lambda: rec.events)
    assert not bev.get_enabled() & EV_READ
    bev.enable(EV_READ)
    run_until(base, lambda: len(rec.events) == 2)
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.EOF] * 2


def test_timeouts_changed_while_pending(base: EventBase, cleanup: list[Any]) -> None:
    """``set_timeouts`` on a bufferevent already waiting applies the new value."""
    s1, _peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.set_timeouts(read=30.0)
    bev.enable(EV_READ)
    run_for(base, 0.02)
    t0 = time.monotonic()
    bev.set_timeouts(read=0.05)
    run_until(base, lambda: rec.events, timeout=5.0)
    assert time.monotonic() - t0 < 3.0
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]


def test_read_high_watermark_exact(base: EventBase, cleanup: list[Any]) -> None:
    """A socket never reads beyond the read high watermark, and a lowered mark suspends at once."""
    s1, peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    Recorder(bev, drain=False)
    bev.setwatermark(EV_READ, 0, 300)
    bev.enable(EV_READ)
    peer.sendall(b"q" * 1000)
    run_until(base, lambda: len(bev.input) >= 300)
    run_for(base, 0.05)
    assert len(bev.input) == 300
    bev.setwatermark(EV_READ, 0, 100)  # already above: stays suspended
    bev.read(150)
    run_for(base, 0.05)
    assert len(bev.input) == 150
    bev.setwatermark(EV_READ, 0, 0)  # unlimited again
    run_until(base, lambda: len(bev.input) >= 850)
    assert len(bev.input) == 850


def test_watermark_validation(base: EventBase, cleanup: list[Any]) -> None:
    s1, _peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    with pytest.raises(ValueError):
        bev.setwatermark(EV_READ, -1, 0)
    with pytest.raises(ValueError):
        bev.setwatermark(EV_WRITE, 10, 5)
    bev.setwatermark(RW, 5, 10)
    assert bev.getwatermark(EV_READ) == bev.getwatermark(EV_WRITE) == (5, 10)


def test_socket_kind_is_not_a_filter(base: EventBase, cleanup: list[Any]) -> None:
    s1, _peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    assert bev.kind == "socket"
    assert bev.get_underlying() is None
    assert "fd=" in repr(bev)


def test_connect_on_pair_refused(base: EventBase) -> None:
    """``connect``/``connect_hostname`` on a kind without sockets raise."""
    a, b = Bufferevent.pair(base)
    with pytest.raises(EvbufferError):
        a.connect(("127.0.0.1", 1))
    with pytest.raises(EvbufferError):
        a.connect_hostname(None, socket.AF_INET, "localhost", 1)
    a.free()
    b.free()


def test_connect_hostname_existing_fd(base: EventBase, cleanup: list[Any]) -> None:
    """``connect_hostname`` on a bufferevent that already has an (unconnected) socket uses it."""
    lst = _listener(cleanup)
    s = socket.socket()
    cleanup.append(s)
    bev = Bufferevent.socket(base, s)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.connect_hostname(None, socket.AF_INET, "127.0.0.1", lst.getsockname()[1])
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.CONNECTED]
    assert bev.fileno() == s.fileno()
    assert s.getpeername() == lst.getsockname()


def test_connect_unresolvable_literal(base: EventBase) -> None:
    """``connect()`` never resolves names: an invalid literal is an ``ERROR`` from the loop."""
    bev = Bufferevent.socket(base, None)
    rec = Recorder(bev)
    bev.connect(("999.1.1.1", 80))
    assert rec.events == []
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.ERROR]
    assert bev.socket_error != 0
    bev.free()


def test_write_timeout_changed_while_waiting(base: EventBase, cleanup: list[Any]) -> None:
    """``set_timeouts(write=...)`` while output waits for a clogged peer applies the new value."""
    s1, _peer = _pair(cleanup)
    bev = Bufferevent.socket(base, s1)
    cleanup.append(bev)
    rec = Recorder(bev, drain=False)
    bev.set_timeouts(write=30.0)
    while not len(bev.output):
        bev.write(b"w" * 65536)
    run_for(base, 0.02)
    t0 = time.monotonic()
    bev.set_timeouts(write=0.05)
    run_until(base, lambda: rec.events, timeout=5.0)
    assert time.monotonic() - t0 < 3.0
    assert rec.events == [BEV_EVENT.WRITING | BEV_EVENT.TIMEOUT]
    assert len(bev.output) > 0


def test_connect_write_and_read_enabled_before(base: EventBase, cleanup: list[Any]) -> None:
    """Reading enabled before ``connect()`` starts only once connected; no EOF/ERROR meanwhile."""
    lst = _listener(cleanup)
    bev = Bufferevent.socket(base, None)
    cleanup.append(bev)
    rec = Recorder(bev)
    bev.enable(EV_READ)
    bev.set_timeouts(read=5.0, write=5.0)
    bev.connect(lst.getsockname())
    run_until(base, lambda: rec.events)
    assert rec.events == [BEV_EVENT.CONNECTED]
    peer = _accept(lst, cleanup)
    peer.sendall(b"ok")
    run_until(base, lambda: len(rec.data) >= 2)
    assert bytes(rec.data) == b"ok"
