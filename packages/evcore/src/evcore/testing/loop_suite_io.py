"""Loop conformance suite, part 1: fd events (libevent's regress.c ``main/`` fd tests and ``et/``).

Each test mirrors the intent of one libevent 2.0 test (named in its docstring) and
runs on a real socketpair.  Tests taking ``io_base_factory`` also run in the
edge-triggered variant; their callbacks then read and write until the socket would
block, as edge-triggered code must.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import tempfile
from typing import Any

from ..errors import EventError
from ..event import Event
from ..flags import (
    EV_CLOSED,
    EV_ET,
    EV_PERSIST,
    EV_READ,
    EV_TIMEOUT,
    EV_WRITE,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
    Feature,
)
from . import FakeClock
from .loop_suite_support import TEST1, BaseFactory, drain, run

__all__ = [
    "test_event_base_new",
    "test_simpleread",
    "test_simpleread_multiple",
    "test_simplewrite",
    "test_simpleclose",
    "test_multiple",
    "test_persistent",
    "test_combined",
    "test_nonpersist_readd",
    "test_multiple_events_for_same_fd",
    "test_want_only_once",
    "test_event_once_fd",
    "test_event_pending",
    "test_dup_fd",
    "test_many_events",
    "test_many_events_slow_add",
    "test_ev_closed",
    "test_edge_triggered",
    "test_et_mix_error",
    "test_stale_fd_reused_before_dispatch",
    "test_stale_fd_closed_without_delete",
    "test_many_idle_socketpairs",
    "test_fd_object_kept_alive",
    "test_regular_file_fd",
    "test_write_to_closed_peer",
    "test_read_write_one_event",
]


def _write_chunk(sock: socket.socket, data: bytes) -> int:
    try:
        return sock.send(data)
    except (BlockingIOError, InterruptedError):
        return 0


def test_event_base_new(base_factory: BaseFactory) -> None:
    """``event_base_new``: a fresh base runs a persistent read event to EOF and exits cleanly."""
    a, b = base_factory.socketpair()
    a.send(TEST1)
    a.shutdown(socket.SHUT_WR)
    base = base_factory()
    calls: list[bytes] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        data, eof = drain(b)
        calls.append(data)
        if eof:
            ev.delete()
            base.loopexit()

    ev = Event(base, b, EV_READ | EV_PERSIST, cb)
    ev.arg = ev
    ev.add()
    assert run(base) == 0
    assert b"".join(calls) == TEST1
    assert base.got_exit()


def test_simpleread(base_factory: BaseFactory) -> None:
    """``simpleread``: a non-persistent read event re-added from its callback sees data, then EOF."""
    a, b = base_factory.socketpair()
    a.send(TEST1)
    a.shutdown(socket.SHUT_WR)
    base = base_factory()
    got: list[bytes] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        assert fd == b.fileno() and what == EV_READ
        data = b.recv(256)
        got.append(data)
        if data and len(got) == 1:
            ev.add()

    ev = Event(base, b, EV_READ, cb)
    ev.arg = ev
    ev.add()
    assert run(base) == 1
    assert got == [TEST1, b""]
    assert not ev.pending(EV_READ)


def test_simpleread_multiple(io_base_factory: BaseFactory) -> None:
    """``simpleread_multiple``: two read events on one fd both fire."""
    f = io_base_factory
    a, b = f.socketpair()
    a.send(TEST1)
    a.shutdown(socket.SHUT_WR)
    base = f()
    fired: list[tuple[str, int]] = []
    one = Event(base, b, EV_READ | f.et, lambda fd, what, arg: fired.append((arg, what)), "one")
    two = Event(base, b, EV_READ | f.et, lambda fd, what, arg: fired.append((arg, what)), "two")
    one.add()
    two.add()
    assert run(base) == 1
    assert sorted(fired) == [("one", EV_READ), ("two", EV_READ)]


def test_simplewrite(io_base_factory: BaseFactory) -> None:
    """``simplewrite``: a write event fires on a writable socket; the data arrives."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[int] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        seen.append(what)
        assert os.write(fd, TEST1) == len(TEST1)

    Event(base, a, EV_WRITE | f.et, cb).add()
    assert run(base) == 1
    assert seen == [EV_WRITE]
    assert drain(b) == (TEST1, False)


def test_simpleclose(base_factory: BaseFactory) -> None:
    """``simpleclose``: closing the peer is seen as readable, and as writable on a full socket."""
    r1, r2 = base_factory.socketpair()
    w1, w2 = base_factory.socketpair()
    while _write_chunk(w2, b"c" * 65536):  # stuff w2 full, until the write would block
        pass
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    closed: list[float] = []
    got: dict[str, int] = {}

    def close_cb(fd: int, what: int, arg: Any) -> None:
        r1.close()
        w1.close()
        closed.append(clock.monotonic())

    def record(fd: int, what: int, name: str) -> None:
        assert closed, f"{name} fired before the peer was closed"
        got[name] = what

    Event.timer(base, close_cb).add(0.1)
    Event(base, r2, EV_READ, record, "read").add()
    Event(base, w2, EV_WRITE, record, "write").add()
    base.loopexit(0.2)
    assert run(base) == 0
    assert got == {"read": EV_READ, "write": EV_WRITE}


def _stream(nbytes: int = 4096) -> bytes:
    return bytes(i & 0xFF for i in range(nbytes))


def test_multiple(io_base_factory: BaseFactory) -> None:
    """``multiple``: a non-persistent writer and reader, each re-adding itself, move a stream to EOF."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    wbuf = _stream()
    state = {"woff": 0}
    rbuf = bytearray()

    def write_cb(fd: int, what: int, ev: Event) -> None:
        while True:
            woff = state["woff"]
            n = _write_chunk(a, wbuf[woff : woff + 128])
            state["woff"] = woff + n
            if state["woff"] >= len(wbuf):
                a.shutdown(socket.SHUT_WR)
                return
            if not f.et or not n:
                break
        ev.add()

    def read_cb(fd: int, what: int, ev: Event) -> None:
        if f.et:
            data, eof = drain(b)
        else:
            data = b.recv(len(wbuf) - len(rbuf) or 1)
            eof = not data
        rbuf.extend(data)
        if not eof:
            ev.add()

    w = Event(base, a, EV_WRITE | f.et, write_cb)
    w.arg = w
    r = Event(base, b, EV_READ | f.et, read_cb)
    r.arg = r
    w.add()
    r.add()
    assert run(base) == 1
    assert state["woff"] == len(wbuf)
    assert bytes(rbuf) == wbuf


def test_persistent(io_base_factory: BaseFactory) -> None:
    """``persistent``: persistent write and read events keep firing until they delete themselves."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    wbuf = _stream()
    state = {"woff": 0, "wcalls": 0, "rcalls": 0}
    rbuf = bytearray()

    def write_cb(fd: int, what: int, ev: Event) -> None:
        state["wcalls"] += 1
        while True:
            woff = state["woff"]
            n = _write_chunk(a, wbuf[woff : woff + 128])
            state["woff"] = woff + n
            if state["woff"] >= len(wbuf):
                a.shutdown(socket.SHUT_WR)
                ev.delete()
                return
            if not f.et or not n:
                return

    def read_cb(fd: int, what: int, ev: Event) -> None:
        state["rcalls"] += 1
        if f.et:
            data, eof = drain(b)
        else:
            data = b.recv(4096)
            eof = not data
        rbuf.extend(data)
        if eof:
            ev.delete()

    w = Event(base, a, EV_WRITE | EV_PERSIST | f.et, write_cb)
    w.arg = w
    r = Event(base, b, EV_READ | EV_PERSIST | f.et, read_cb)
    r.arg = r
    w.add()
    r.add()
    assert run(base) == 1
    assert bytes(rbuf) == wbuf
    if not f.et:
        assert state["wcalls"] == len(wbuf) // 128  # level-triggered: one chunk per call
    assert state["rcalls"] >= (1 if f.et else 2)


class _Both:
    def __init__(self, sock: socket.socket, nread: int = 0) -> None:
        self.sock = sock
        self.nread = nread
        self.ev: Event | None = None


def test_combined(io_base_factory: BaseFactory) -> None:
    """``combined``: a read and a write event on each end of a pair (two events per fd) move all data."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    r1, w1, r2, w2 = _Both(a), _Both(a, 4096), _Both(b), _Both(b, 8192)

    def read_cb(fd: int, what: int, both: _Both) -> None:
        assert what & EV_READ
        if f.et:
            data, eof = drain(both.sock)
        else:
            data = both.sock.recv(128)
            eof = not data
        both.nread += len(data)
        if not eof:
            assert both.ev is not None
            both.ev.add()

    def write_cb(fd: int, what: int, both: _Both) -> None:
        assert what & EV_WRITE
        while True:
            n = min(128, both.nread)
            if n <= 0:
                both.sock.shutdown(socket.SHUT_WR)
                return
            sent = _write_chunk(both.sock, b"q" * n)
            both.nread -= sent
            if not f.et or not sent:
                break
        assert both.ev is not None
        both.ev.add()

    for both, events, cb in ((r1, EV_READ, read_cb), (w1, EV_WRITE, write_cb), (r2, EV_READ, read_cb),
                             (w2, EV_WRITE, write_cb)):
        both.ev = Event(base, both.sock, events | f.et, cb, both)
        both.ev.add()
    assert run(base) == 1
    assert (r1.nread, r2.nread) == (8192, 4096)


def test_nonpersist_readd(base_factory: BaseFactory) -> None:
    """``nonpersist_readd``: non-persistent events re-adding each other in one ONCE pass end consistent."""
    a, b = base_factory.socketpair()
    base = base_factory()
    order: list[str] = []
    evs: dict[str, Event] = {}

    def cb(fd: int, what: int, other: str) -> None:
        os.read(fd, 256)
        evs[other].add()
        order.append(other)

    evs["one"] = Event(base, a, EV_READ, cb, "two")
    evs["two"] = Event(base, b, EV_READ, cb, "one")
    a.send(b"Hello")
    b.send(b"Hello")
    evs["one"].add()
    evs["two"].add()
    assert run(base, EVLOOP_ONCE) == 0
    assert len(order) == 2
    last = order[-1]
    other = "two" if last == "one" else "one"
    assert evs[last].pending(EV_READ) == EV_READ
    assert evs[other].pending(EV_READ) == 0
    evs[last].delete()


def test_multiple_events_for_same_fd(io_base_factory: BaseFactory) -> None:
    """``multiple_events_for_same_fd``: a read and a write event on one fd; deleting one keeps the other."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[int] = []
    e1 = Event(base, a, EV_READ | f.et, lambda fd, what, arg: seen.append(what))
    e2 = Event(base, a, EV_WRITE | f.et, lambda fd, what, arg: seen.append(what))
    e1.add()
    e2.add()
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [EV_WRITE]
    e2.delete()
    assert e1.pending(EV_READ | EV_WRITE) == EV_READ
    b.send(TEST1)
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [EV_WRITE, EV_READ]
    assert base.num_events() == 0


def test_want_only_once(base_factory: BaseFactory) -> None:
    """``want_only_once``: a non-persistent read event fires once even though the fd stays readable."""
    a, b = base_factory.socketpair()
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    calls = []

    def cb(fd: int, what: int, arg: Any) -> None:
        calls.append(b.recv(256))
        a.send(TEST1)  # readable again: must not fire again

    a.send(TEST1)
    base.loopexit(1.0)
    Event(base, b, EV_READ, cb).add()
    assert run(base) == 0
    assert calls == [TEST1]
    assert base.got_exit()


def test_event_once_fd(io_base_factory: BaseFactory) -> None:
    """``event_once``: ``once`` on an fd, on a timeout, and on both (timeout first) each run once."""
    f = io_base_factory
    a, b = f.socketpair()
    clock = FakeClock(autojump=True)
    base = f(clock=clock)
    called: list[tuple[str, int, float]] = []

    def cb(fd: int, what: int, name: str) -> None:
        called.append((name, what, clock.monotonic()))
        if name == "read":
            drain(a)

    base.once(a, EV_READ | f.et, cb, "read")
    base.once(-1, EV_TIMEOUT, cb, "timeout", 0.05)
    base.once(b, EV_READ | f.et, cb, "read-or-timeout", 0.5)  # b never becomes readable
    assert base.num_events() == 3
    b.send(TEST1)
    b.shutdown(socket.SHUT_WR)
    assert run(base) == 1
    assert [(n, w) for n, w, t in called] == [("read", EV_READ), ("timeout", EV_TIMEOUT),
                                             ("read-or-timeout", EV_TIMEOUT)]
    assert called[1][2] == 0.05 and called[2][2] == 0.5
    assert base.num_events() == 0


def test_event_pending(base_factory: BaseFactory) -> None:
    """``event_pending``: ``pending()`` reports the flags an event waits for, ``deadline()`` its timeout."""
    a, b = base_factory.socketpair()
    clock = FakeClock(start=5.0)
    base = base_factory(clock=clock)
    r = Event(base, a, EV_READ, lambda *args: None)
    w = Event(base, b, EV_WRITE, lambda *args: None)
    t = Event.timer(base, lambda *args: None)
    r.add()
    t.add(0.5)
    assert r.pending(EV_READ) == EV_READ
    assert w.pending(EV_WRITE) == 0
    assert r.pending(EV_WRITE) == 0
    assert r.pending(EV_READ | EV_WRITE) == EV_READ
    assert r.pending(EV_TIMEOUT) == 0
    assert t.pending(EV_TIMEOUT) == EV_TIMEOUT
    assert t.deadline() == 5.5
    assert r.deadline() is None and w.deadline() is None
    for ev in (r, w, t):
        ev.delete()
    assert t.pending(EV_TIMEOUT) == 0 and t.deadline() is None


def test_dup_fd(base_factory: BaseFactory) -> None:
    """``dup_fd``: events on a dup()ed fd are independent; dup2 onto a closed number works again."""
    a, b = base_factory.socketpair()
    a.send(b"Hello world")
    fd = b.fileno()
    dfd = os.dup(fd)
    base = base_factory()
    got = {"ev1": 0, "ev2": 0}

    def cb(fdn: int, what: int, name: str) -> None:
        got[name] = what

    ev1 = Event(base, fd, EV_READ | EV_PERSIST, cb, "ev1")
    ev2 = Event(base, dfd, EV_READ | EV_PERSIST, cb, "ev2")
    ev1.add()
    ev2.add()
    try:
        assert run(base, EVLOOP_ONCE) == 0
        assert got == {"ev1": EV_READ, "ev2": EV_READ}
        # close and delete dfd, then dispatch, so that a later add follows a delete
        os.close(dfd)
        ev2.delete()
        got.update(ev1=0, ev2=0)
        assert run(base, EVLOOP_ONCE) == 0
        assert got == {"ev1": EV_READ, "ev2": 0}
        # the same number again, watched for something else this time
        assert os.dup2(fd, dfd) == dfd
        ev2.free()
        ev2 = Event(base, dfd, EV_WRITE | EV_PERSIST, cb, "ev2")
        ev2.add()
        got.update(ev1=0, ev2=0)
        assert run(base, EVLOOP_ONCE) == 0
        assert got == {"ev1": EV_READ, "ev2": EV_WRITE}
    finally:
        ev1.free()
        ev2.free()
        try:
            os.close(dfd)
        except OSError:
            pass


def _many(base_factory: BaseFactory, one_at_a_time: bool) -> None:
    many = 70
    base = base_factory()
    called = [0] * many
    socks = []
    evs = []

    def cb(fd: int, what: int, i: int) -> None:
        assert what == EV_WRITE
        called[i] += 1

    flags = EV_PERSIST if one_at_a_time else 0
    for i in range(many):
        s = base_factory.own(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        socks.append(s)
        ev = Event(base, s, EV_WRITE | flags | base_factory.et, cb, i)
        ev.add()
        evs.append(ev)
        if one_at_a_time:
            assert run(base, EVLOOP_NONBLOCK | EVLOOP_ONCE) == 0
    run(base, EVLOOP_NONBLOCK | EVLOOP_ONCE if one_at_a_time else EVLOOP_NONBLOCK)
    if one_at_a_time:
        if base_factory.et:
            assert all(c >= 1 for c in called)
        else:
            assert called == [many - i + 1 for i in range(many)]
    else:
        assert called == [1] * many
    for ev in evs:
        ev.delete()


def test_many_events(io_base_factory: BaseFactory) -> None:
    """``many_events``: 70 write events, all ready at once, each fire once in one pass."""
    _many(io_base_factory, False)


def test_many_events_slow_add(io_base_factory: BaseFactory) -> None:
    """``many_events_slow_add``: persistent write events added one per loop pass fire on every pass."""
    _many(io_base_factory, True)


def test_ev_closed(io_base_factory: BaseFactory) -> None:
    """``EV_CLOSED`` fires on the peer's close where the backend has ``EARLY_CLOSE``, and never elsewhere."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[int] = []
    ev = Event(base, a, EV_CLOSED | EV_PERSIST | f.et, lambda fd, what, arg: seen.append(what))
    ev.add()
    # nothing yet: the peer is open
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == []
    b.send(b"data")  # data alone is not a close
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == []
    b.close()
    if f.features & Feature.EARLY_CLOSE:
        assert run(base, EVLOOP_ONCE) == 0
        assert seen and seen[0] & EV_CLOSED and not seen[0] & EV_READ
    else:
        for _ in range(3):
            assert run(base, EVLOOP_NONBLOCK) == 0
        assert seen == []
    ev.delete()
    # with EV_READ as well, a close always shows as readable; EV_CLOSED only with EARLY_CLOSE
    seen.clear()
    ev2 = Event(base, a, EV_READ | EV_CLOSED | f.et, lambda fd, what, arg: seen.append(what))
    ev2.add()
    assert run(base, EVLOOP_ONCE) == 0
    assert len(seen) == 1 and seen[0] & EV_READ
    assert bool(seen[0] & EV_CLOSED) == bool(f.features & Feature.EARLY_CLOSE)


def test_edge_triggered(base_factory: BaseFactory) -> None:
    """``et``: with ``EV_ET`` a backend with ``Feature.ET`` reports new data once; others: level."""
    a, b = base_factory.socketpair(socket.AF_INET)
    a.send(b"test string\0")
    a.shutdown(socket.SHUT_WR)
    base = base_factory()
    called = []

    def cb(fd: int, what: int, ev: Event) -> None:
        called.append(what)
        if not b.recv(1):
            ev.delete()

    ev = Event(base, b, EV_READ | EV_ET | EV_PERSIST, cb)
    ev.arg = ev
    ev.add()
    run(base, EVLOOP_NONBLOCK | EVLOOP_ONCE)
    run(base, EVLOOP_NONBLOCK | EVLOOP_ONCE)
    if base.features & Feature.ET:
        assert len(called) == 1
    else:
        assert len(called) == 2
    assert all(w & EV_READ for w in called)
    ev.delete()


def test_et_mix_error(base_factory: BaseFactory) -> None:
    """``et_mix_error``: mixing edge- and level-triggered events on one fd is refused, leaving the first."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    ev_et = Event(base, a, EV_READ | EV_ET, lambda *args: None)
    ev_lt = Event(base, a, EV_READ, lambda *args: None)
    ev_et.add()
    try:
        ev_lt.add()
    except EventError:
        pass
    else:
        raise AssertionError("adding a level-triggered event over an edge-triggered one was accepted")
    assert ev_et.pending(EV_READ) == EV_READ
    assert ev_lt.pending(EV_READ) == 0
    ev_et.delete()
    ev_lt.add()
    try:
        ev_et.add()
    except EventError:
        pass
    else:
        raise AssertionError("adding an edge-triggered event over a level-triggered one was accepted")
    assert ev_lt.pending(EV_READ) == EV_READ
    assert ev_et.pending(EV_READ) == 0
    ev_lt.delete()
    assert base.num_events() == 0


def _reusing_pair(f: BaseFactory, number: int) -> tuple[socket.socket, socket.socket]:
    """A new socketpair one of whose fds is ``number`` (which must be free)."""
    c, d = f.socketpair()
    if number in (c.fileno(), d.fileno()):
        return (c, d) if c.fileno() == number else (d, c)
    # move c onto the wanted number
    os.dup2(c.fileno(), number)
    moved = socket.socket(fileno=number)
    moved.setblocking(False)
    c.close()
    f.own(moved)
    return moved, d


def test_stale_fd_reused_before_dispatch(io_base_factory: BaseFactory) -> None:
    """An fd deleted, closed and reused for a new socket before the next dispatch works (changelist rule)."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[tuple[str, int]] = []
    old = Event(base, a, EV_READ | f.et, lambda fd, what, arg: seen.append(("old", what)))
    old.add()
    assert run(base, EVLOOP_NONBLOCK) == 0  # the backend has registered fd a
    number = a.fileno()
    old.delete()
    a.close()
    b.close()
    c, d = _reusing_pair(f, number)
    assert c.fileno() == number
    new = Event(base, c, EV_READ | f.et, lambda fd, what, arg: seen.append(("new", what)))
    new.add()
    d.send(TEST1)
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [("new", EV_READ)]
    # and the same once more with a write interest, so a lingering read registration cannot pass it
    c.recv(100)
    new2 = Event(base, c, EV_WRITE | f.et, lambda fd, what, arg: seen.append(("new2", what)))
    new2.add()
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [("new", EV_READ), ("new2", EV_WRITE)]
    assert base.num_events() == 0


def test_stale_fd_closed_without_delete(io_base_factory: BaseFactory) -> None:
    """An fd closed while still registered, then deleted and reused before dispatch, works again."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[tuple[str, int]] = []
    old = Event(base, a, EV_READ | EV_PERSIST | f.et, lambda fd, what, arg: seen.append(("old", what)))
    old.add()
    assert run(base, EVLOOP_NONBLOCK) == 0
    number = a.fileno()
    a.close()  # behind the base's back ...
    b.close()
    old.delete()  # ... then deleted: must not raise
    c, d = _reusing_pair(f, number)
    new = Event(base, c, EV_READ | EV_PERSIST | f.et, lambda fd, what, arg: seen.append(("new", what)))
    new.add()
    d.send(TEST1)
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [("new", EV_READ)]
    new.delete()


def test_many_idle_socketpairs(base_factory: BaseFactory) -> None:
    """10,000 idle socketpairs (as many as the fd limit allows) with a few active: only those fire.

    On a backend without ``Feature.O1`` (select, poll) a few hundred pairs prove the
    same; select cannot take fds above 1023 at all.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    base = base_factory()
    if base.features & Feature.O1:
        npairs = min(10_000, (soft - 256) // 2)
    else:
        npairs = min(400, (soft - 256) // 2)
    pairs = []
    evs = []
    fired: list[int] = []
    try:
        for _ in range(npairs):
            x, y = socket.socketpair()
            pairs.append((x, y))
        for i, (x, _y) in enumerate(pairs):
            ev = Event(base, x.fileno(), EV_READ | EV_PERSIST, lambda fd, what, i: fired.append(i), i)
            ev.add()
            evs.append(ev)
        assert base.num_events() == npairs
        assert run(base, EVLOOP_NONBLOCK) == 0
        assert fired == []
        active = sorted({0, 1, npairs // 2, npairs - 2, npairs - 1})
        for i in active:
            pairs[i][1].send(b"x")
        assert run(base, EVLOOP_ONCE) == 0
        assert sorted(fired) == active
        for i in active:
            pairs[i][0].recv(1)
        fired.clear()
        assert run(base, EVLOOP_NONBLOCK) == 0
        assert fired == []
        for ev in evs:
            ev.delete()
        assert base.num_events() == 0
    finally:
        for x, y in pairs:
            x.close()
            y.close()


def test_fd_object_kept_alive(base_factory: BaseFactory) -> None:
    """An event made from a socket object keeps it alive and hands the callback the int fd."""
    _a, _b = base_factory.socketpair()
    base = base_factory()
    seen: list[tuple[int, int]] = []
    c, d = socket.socketpair()
    fdn = c.fileno()
    ev = Event(base, c, EV_READ, lambda fd, what, arg: seen.append((fd, what)))
    del c  # only the event holds it now
    ev.add()
    d.send(b"x")
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [(fdn, EV_READ)]
    assert ev.fd == fdn
    os.fstat(fdn)  # still open
    ev.free()
    d.close()


def test_regular_file_fd(base_factory: BaseFactory, caplog: Any) -> None:
    """A regular file: always ready where the backend takes it (select, poll); else refused cleanly (epoll).

    A backend that cannot watch it either raises ``OSError`` from ``add`` (no
    changelist) or, with a changelist, the base logs a warning naming the fd and
    drops its events.  Either way the base is left consistent.
    """
    base = base_factory()
    seen: list[int] = []
    with tempfile.TemporaryFile() as fobj, caplog.at_level(logging.WARNING, logger="evcore"):
        fobj.write(b"data")
        fobj.flush()
        ev = Event(base, fobj, EV_READ, lambda fd, what, arg: seen.append(what))
        try:
            ev.add()
        except OSError:
            assert ev.pending() == 0
            assert base.num_events() == 0
            return
        run(base, EVLOOP_ONCE)
        warned = [r for r in caplog.records if f"fd {fobj.fileno()}" in r.getMessage()]
        if warned:
            assert seen == [] and ev.pending() == 0
        else:
            assert seen == [EV_READ]
        assert base.num_events() == 0


def test_write_to_closed_peer(io_base_factory: BaseFactory) -> None:
    """``test-weof``: a write event fires on a socket whose peer closed; the write fails with EPIPE."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    errors: list[int] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        assert what & EV_WRITE
        try:
            a.send(TEST1)
        except OSError as exc:
            errors.append(exc.errno or 0)
            ev.delete()

    b.close()
    ev = Event(base, a, EV_WRITE | EV_PERSIST | f.et, cb)
    ev.arg = ev
    ev.add()
    assert run(base) == 1
    assert errors and errors[0] in (errno.EPIPE, errno.ECONNRESET)


def test_read_write_one_event(io_base_factory: BaseFactory) -> None:
    """One event with ``EV_READ|EV_WRITE``: both conditions ready at once arrive in one callback."""
    f = io_base_factory
    a, b = f.socketpair()
    base = f()
    seen: list[int] = []
    b.send(TEST1)
    ev = Event(base, a, EV_READ | EV_WRITE | f.et, lambda fd, what, arg: seen.append(what))
    ev.add()
    assert run(base) == 1
    assert seen == [EV_READ | EV_WRITE]
