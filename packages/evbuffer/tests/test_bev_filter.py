"""Filtering bufferevents (evbuffer.bev_filter) over pairs, sockets and other filters."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import time

import pytest

from evbuffer import EOL, Buffer
from evbuffer.bev_filter import DEFAULT_LIMIT, FilterBufferevent
from evbuffer.bev_pair import new_pair
from evbuffer.bufferevent import (
    BEV_EVENT,
    BEV_OPT,
    SUSPEND_FILT_READ,
    Bufferevent,
    FilterResult,
    FlushMode,
)
from evbuffer.errors import EvbufferError
from evcore import EV_READ, EV_WRITE, EVLOOP_NONBLOCK, EventBase
from evcore.testing import FakeClock

OK = FilterResult.OK
NEED_MORE = FilterResult.NEED_MORE
ERROR = FilterResult.ERROR


@pytest.fixture
def base():
    b = EventBase()
    yield b
    b.free()


def run(base: EventBase, passes: int = 100) -> None:
    """Loop passes without blocking (deferred callbacks take one pass per round)."""
    for _ in range(passes):
        base.loop(EVLOOP_NONBLOCK)


def run_until(base: EventBase, cond, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        base.loop(EVLOOP_NONBLOCK)
        if not cond():
            time.sleep(0.001)


class Recorder:
    """Collects a bufferevent's callbacks."""

    def __init__(self, bev: Bufferevent, drain: bool = True) -> None:
        self.data = bytearray()
        self.chunks: list[bytes] = []
        self.reads = 0
        self.writes = 0
        self.events: list[BEV_EVENT] = []
        self.drain = drain
        bev.setcb(self.on_read, self.on_write, self.on_event)

    def on_read(self, bev: Bufferevent, arg: object) -> None:
        self.reads += 1
        if self.drain:
            chunk = bev.read()
            self.chunks.append(chunk)
            self.data += chunk

    def on_write(self, bev: Bufferevent, arg: object) -> None:
        self.writes += 1

    def on_event(self, bev: Bufferevent, what: BEV_EVENT, arg: object) -> None:
        self.events.append(what)


# ---------------------------------------------------------------------------------- filters
def upper(src: Buffer, dst: Buffer, limit: int, mode: FlushMode, arg: object) -> FilterResult:
    assert limit > 0
    dst.add(src.remove(min(limit, len(src))).upper())
    return OK


def lower(src, dst, limit, mode, arg):
    dst.add(src.remove(min(limit, len(src))).lower())
    return OK


def strip_digits(src, dst, limit, mode, arg):
    data = src.remove(min(limit, len(src)))
    dst.add(bytes(c for c in data if not 0x30 <= c <= 0x39))
    return OK


def lines(src, dst, limit, mode, arg):
    """Frame by lines: only whole lines pass, until FINISHED releases a last partial one."""
    moved = False
    while True:
        line = src.readln(EOL.LF)
        if line is None:
            break
        dst.add(line + b"\n")
        moved = True
    if mode == FlushMode.FINISHED and src:
        dst.add(src.remove(len(src)))
        moved = True
    return OK if moved else NEED_MORE


def hold(src, dst, limit, mode, arg):
    """Keep everything until flushed."""
    if mode == FlushMode.NORMAL:
        return NEED_MORE
    dst.add_buffer(src)
    return OK


def with_trailer(src, dst, limit, mode, arg):
    dst.add_buffer(src)
    if mode == FlushMode.FINISHED:
        dst.add(arg)
    return OK


def bang_is_error(src, dst, limit, mode, arg):
    """Pass data up to a ``!``, which is an error."""
    data = bytes(src)
    i = data.find(b"!")
    if i == 0:
        return ERROR
    src.remove_buffer(dst, min(limit, len(data) if i < 0 else i))
    return OK


def swallow(src, dst, limit, mode, arg):
    arg.append(src.remove(len(src)))
    return OK


def lazy(src, dst, limit, mode, arg):
    """Claims success and moves nothing (must not make the filter spin)."""
    arg.append(1)
    return OK


# ---------------------------------------------------------------------------------- basics
def test_construction_and_checks(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None, 0, "ctx")
    assert isinstance(f, FilterBufferevent) and f.kind == "filter"
    assert f.get_underlying() is a and f.fileno() == -1 and f.filter_arg == "ctx"
    assert a.getcb()[0] == f._u_readcb
    assert a.get_enabled() == EV_READ | EV_WRITE
    assert a._read_suspended & SUSPEND_FILT_READ  # the filter does not read yet
    with pytest.raises(TypeError):
        FilterBufferevent(object(), None, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FilterBufferevent(a, "nope", None)  # type: ignore[arg-type]
    f.free()
    assert a.getcb() == (None, None, None, None)  # the callbacks were the filter's: cleared
    assert not a._read_suspended
    a.free()
    with pytest.raises(EvbufferError):
        FilterBufferevent(a, None, None)
    b.free()
    assert DEFAULT_LIMIT == 64 * 1024


def test_pass_through_over_a_pair(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf, rb = Recorder(f), Recorder(b)
    f.enable(EV_READ)
    b.enable(EV_READ)
    f.write(b"to b")
    assert rf.writes == 0  # never inside write()
    run(base)
    assert bytes(rb.data) == b"to b" and rf.writes == 1
    b.write(b"to f")
    run(base)
    assert bytes(rf.data) == b"to f"
    f.free()
    assert not a.freed  # no CLOSE_ON_FREE
    a.free()
    b.free()


def test_transforming_filters_both_ways(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, lower, upper)
    rf, rb = Recorder(f), Recorder(b)
    f.enable(EV_READ)
    b.enable(EV_READ)
    f.write(b"Shout")
    b.write(b"WHISPER")
    run(base)
    assert bytes(rb.data) == b"SHOUT" and bytes(rf.data) == b"whisper"
    f.free()
    a.free()
    b.free()


def test_line_framing_filter_and_eof_releases_the_last_line(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, lines, None)
    rf = Recorder(f)
    f.enable(EV_READ)
    b.enable(EV_READ)
    for piece in (b"hel", b"lo\nwor", b"ld\nsec", b"ond\nthi", b"rd\n", b"par", b"tial"):
        b.write(piece)
        run(base, 3)
    assert rf.chunks == [b"hello\n", b"world\n", b"second\n", b"third\n"]
    b.free()  # a sees EOF; the filter runs FINISHED first: the partial line arrives
    run(base)
    assert rf.chunks[-1] == b"partial"
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    f.free()
    a.free()


def test_input_error(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, bang_is_error, None)
    rf = Recorder(f)
    f.enable(EV_READ)
    b.enable(EV_READ)
    b.write(b"fine!bad")
    run(base)
    assert bytes(rf.data) == b"fine"
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.ERROR]
    assert not f.get_enabled() & EV_READ
    assert a._read_suspended & SUSPEND_FILT_READ
    f.free()
    a.free()
    b.free()


def test_output_error_is_reported_from_the_loop(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, bang_is_error)
    rf, rb = Recorder(f), Recorder(b)
    b.enable(EV_READ)
    f.write(b"ok!no")
    assert rf.events == []  # never inside write()
    run(base)
    assert rf.events == [BEV_EVENT.WRITING | BEV_EVENT.ERROR]
    assert bytes(rb.data) == b"ok"
    assert not f.get_enabled() & EV_WRITE
    f.free()
    a.free()
    b.free()


def test_flush_finished_delivers_a_trailer_and_eof_through_a_pair(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, with_trailer, 0, b"<END>")
    rb = Recorder(b)
    b.enable(EV_READ)
    f.write(b"body")
    assert f.flush(EV_WRITE, FlushMode.NORMAL) == 0  # nothing left to push
    assert f.flush(EV_WRITE, FlushMode.FINISHED) == 1
    run(base)
    assert bytes(rb.data) == b"body<END>"
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]  # the pair passed the FINISHED on
    f.free()
    a.free()
    b.free()


def test_flush_input_modes(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, hold, None)
    rf = Recorder(f)
    f.enable(EV_READ)
    b.enable(EV_READ)
    b.write(b"held")
    run(base)
    assert rf.data == b"" and bytes(a.input) == b"held"
    assert f.flush(EV_READ, FlushMode.FLUSH) == 1
    assert rf.reads == 0  # the read callback waits for the loop
    run(base)
    assert bytes(rf.data) == b"held"
    assert f.flush(EV_READ | EV_WRITE, FlushMode.FLUSH) == 0
    f.free()
    a.free()
    b.free()


def test_flush_errors(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, bang_is_error, bang_is_error)
    rf = Recorder(f)
    f.enable(EV_READ)
    f.disable(EV_WRITE)
    f.write(b"x!")  # held: writing is disabled
    b.write(b"y!")  # moves into a's input at once; filtered only from the loop
    assert f.flush(EV_READ | EV_WRITE, FlushMode.FLUSH) == -1
    assert rf.events == []  # never inside flush()
    run(base)
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.WRITING | BEV_EVENT.ERROR]  # coalesced
    assert bytes(rf.data) == b"y" and bytes(b.input) == b"x"
    f.free()
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- watermarks
def test_read_high_watermark_suspends_the_underlying_reading(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    got = bytearray()
    f.setwatermark(EV_READ, 0, 10)
    f.enable(EV_READ)
    b.enable(EV_READ)
    payload = bytes(range(100))
    b.write(payload)
    run(base)
    assert len(f.input) == 10
    assert a._read_suspended & SUSPEND_FILT_READ  # the stack below stopped reading
    assert len(a.input) + len(b.output) == 90
    for _ in range(30):
        got += f.read(7)
        run(base, 3)
        assert len(f.input) <= 10
        if len(got) == 100:
            break
    assert bytes(got) == payload
    f.free()
    a.free()
    b.free()


def test_limit_follows_the_read_high_watermark(base):
    a, b = new_pair(base)
    limits = []

    def spy(src, dst, limit, mode, arg):
        limits.append(limit)
        src.remove_buffer(dst, limit)
        return OK

    f = Bufferevent.filter(a, spy, None)
    f.enable(EV_READ)
    b.enable(EV_READ)
    b.write(b"x" * 10)
    run(base)
    assert limits == [DEFAULT_LIMIT]
    f.setwatermark(EV_READ, 0, 4)
    f.read()
    b.write(b"y" * 10)
    run(base, 3)
    assert limits[1] == 4
    f.free()
    a.free()
    b.free()


def test_underlying_write_high_watermark_paces_the_output_filter(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf, rb = Recorder(f), Recorder(b)
    a.setwatermark(EV_WRITE, 0, 10)
    f.write(b"z" * 100)
    assert len(a.output) == 10 and len(f.output) == 90  # b does not read yet
    f.write(b"more")  # the underlying output is full: nothing filtered
    assert len(a.output) == 10
    b.enable(EV_READ)
    run(base)
    assert bytes(rb.data) == b"z" * 100 + b"more"
    assert rf.writes >= 1 and not f.output
    f.free()
    a.free()
    b.free()


def test_write_callback_when_the_filter_swallows_everything(base):
    a, b = new_pair(base)
    sink: list[bytes] = []
    f = Bufferevent.filter(a, None, swallow, 0, sink)
    rf = Recorder(f)
    f.write(b"gone")
    assert sink == [b"gone"] and rf.writes == 0
    run(base)
    assert rf.writes == 1 and not a.output
    f.free()
    a.free()
    b.free()


def test_a_filter_that_moves_nothing_does_not_spin(base):
    a, b = new_pair(base)
    calls: list[int] = []
    f = Bufferevent.filter(a, lazy, lazy, 0, calls)
    f.enable(EV_READ)
    b.enable(EV_READ)
    f.write(b"out")
    b.write(b"in")
    run(base)
    assert 2 <= len(calls) < 10
    assert bytes(f.output) == b"out" and bytes(a.input) == b"in"
    f.free()
    a.free()
    b.free()


def test_disable_enable_write_and_read(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rb = Recorder(b)
    b.enable(EV_READ)
    f.disable(EV_WRITE)
    f.write(b"wait")
    assert len(a.output) == 0
    f.enable(EV_WRITE)  # filtered at once (no callbacks inside enable)
    assert len(b.input) == 4
    f.enable(EV_READ)
    f.disable(EV_READ)
    assert a._read_suspended & SUSPEND_FILT_READ
    run(base)
    assert bytes(rb.data) == b"wait"
    f.free()
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- stacking and lifetime
def test_filter_over_filter(base):
    a, b = new_pair(base)

    def four(src, dst, limit, mode, arg):
        dst.add(src.remove(len(src)).replace(b"A", b"4"))
        return OK

    f1 = Bufferevent.filter(a, lower, four, BEV_OPT.CLOSE_ON_FREE)
    f2 = Bufferevent.filter(f1, strip_digits, upper, BEV_OPT.CLOSE_ON_FREE)
    assert f2.get_underlying() is f1 and f1.get_underlying() is a
    r2, rb = Recorder(f2), Recorder(b)
    f2.enable(EV_READ)
    b.enable(EV_READ)
    f2.write(b"banana")
    b.write(b"AbC123")
    run(base)
    assert bytes(rb.data) == b"B4N4N4"
    assert bytes(r2.data) == b"abc"
    assert r2.writes >= 1
    b.free()  # EOF climbs the stack
    run(base)
    assert r2.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    f2.free()
    assert f1.freed and a.freed  # CLOSE_ON_FREE all the way down


def test_close_on_free_and_freeing_the_underlying_first(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None, BEV_OPT.CLOSE_ON_FREE)
    f.free()
    assert a.freed
    c, d = new_pair(base)
    g = Bufferevent.filter(c, None, None)
    c.free()  # the underlying goes first: the filter copes
    g.enable(EV_READ)
    g.disable(EV_READ | EV_WRITE)
    g.write(b"x")
    assert g.flush(EV_WRITE, FlushMode.FLUSH) == 1  # into the dead output; no flush below
    g.free()
    b.free()
    d.free()


def test_filter_keeps_callbacks_someone_else_set(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    mine = Recorder(a)  # the user takes the underlying back before freeing the filter
    f.free()
    assert a.getcb()[0] == mine.on_read
    a.free()
    b.free()


def test_defer_callbacks_and_threadsafe_options(base):
    a, b = new_pair(base, BEV_OPT.THREADSAFE)
    f = Bufferevent.filter(a, None, upper, BEV_OPT.DEFER_CALLBACKS | BEV_OPT.THREADSAFE)
    assert f._lock is a._lock  # one lock for the stack
    rf, rb = Recorder(f), Recorder(b)
    f.enable(EV_READ)
    b.enable(EV_READ)
    f.write(b"later")
    assert len(b.input) == 0  # the output callback itself is deferred
    b.write(b"up")
    run(base)
    assert bytes(rb.data) == b"LATER" and bytes(rf.data) == b"up" and rf.writes == 1
    c, d = new_pair(base)
    g = Bufferevent.filter(c, None, None, BEV_OPT.THREADSAFE)
    assert g._lock is not None and c._lock is None
    for bev in (f, a, b, g, c, d):
        bev.free()


# ---------------------------------------------------------------------------------- sockets
def test_filter_over_a_socket_bufferevent(base):
    s1, s2 = socket.socketpair()
    u = Bufferevent.socket(base, s1, BEV_OPT.CLOSE_ON_FREE)
    f = Bufferevent.filter(u, lines, upper, BEV_OPT.CLOSE_ON_FREE)
    rf = Recorder(f)
    f.enable(EV_READ)
    f.write(b"hello\n")
    s2.settimeout(5)
    assert s2.recv(100) == b"HELLO\n"
    run_until(base, lambda: rf.writes >= 1)
    s2.sendall(b"one\ntw")
    run_until(base, lambda: rf.chunks)
    assert rf.chunks == [b"one\n"]
    s2.sendall(b"o\nthr")
    run_until(base, lambda: len(rf.chunks) == 2)
    assert rf.chunks[1] == b"two\n"
    s2.shutdown(socket.SHUT_WR)
    run_until(base, lambda: rf.events)
    assert rf.chunks[-1] == b"thr"
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    f.free()
    assert u.freed and s1.fileno() == -1
    s2.close()


def test_large_transfer_between_two_filtered_sockets(base):
    s1, s2 = socket.socketpair()
    f1 = Bufferevent.filter(
        Bufferevent.socket(base, s1, BEV_OPT.CLOSE_ON_FREE), None, None, BEV_OPT.CLOSE_ON_FREE
    )
    f2 = Bufferevent.filter(
        Bufferevent.socket(base, s2, BEV_OPT.CLOSE_ON_FREE), upper, None, BEV_OPT.CLOSE_ON_FREE
    )
    total = 16 << 20
    chunk = 128 << 10
    block = os.urandom(chunk)
    want, got = hashlib.sha256(), hashlib.sha256()
    state = {"sent": 0, "recv": 0, "max_in": 0}

    def on_write(bev, arg):
        if state["sent"] < total:
            state["sent"] += chunk
            want.update(block.upper())
            bev.write(block)

    def on_read(bev, arg):
        inp = bev.input
        state["max_in"] = max(state["max_in"], len(inp))
        for mv in inp.peek():
            got.update(mv)
        state["recv"] += len(inp)
        inp.drain(len(inp))
        if state["recv"] >= total:
            bev.disable(EV_READ)

    f1.setcb(None, on_write, None)
    f2.setcb(on_read, None, None)
    f2.setwatermark(EV_READ, 0, 256 << 10)
    f2.enable(EV_READ)
    on_write(f1, None)
    run_until(base, lambda: state["recv"] >= total, seconds=40)
    assert got.digest() == want.digest()
    assert state["max_in"] <= 256 << 10
    f1.free()
    f2.free()


def test_underlying_errors_and_connected_pass_through(base):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    u = Bufferevent.socket(base, None)
    f = Bufferevent.filter(u, None, None, BEV_OPT.CLOSE_ON_FREE)
    rf = Recorder(f)
    u.connect(("127.0.0.1", port))
    run_until(base, lambda: rf.events)
    assert rf.events == [BEV_EVENT.CONNECTED]
    f.free()
    listener.close()
    # a refused connection: ERROR with the errno
    u = Bufferevent.socket(base, None)
    f = Bufferevent.filter(u, None, None, BEV_OPT.CLOSE_ON_FREE)
    rf = Recorder(f)
    u.connect(("127.0.0.1", port))
    run_until(base, lambda: rf.events)
    assert rf.events[0] & BEV_EVENT.ERROR
    assert f.socket_error == errno.ECONNREFUSED
    f.free()


# ---------------------------------------------------------------------------------- timeouts
@pytest.fixture
def fake():
    clock = FakeClock()
    b = EventBase(clock=clock)
    yield b, clock
    b.free()


def test_underlying_timeout_passes_through(fake):
    base, clock = fake
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf = Recorder(f)
    f.enable(EV_READ)
    a.set_timeouts(read=1.0)
    clock.advance(2)
    run(base)
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]
    assert not a.get_enabled() & EV_READ
    a.set_timeouts(read=None)
    f.enable(EV_READ)  # enabling the filter enables the direction below again
    assert a.get_enabled() & EV_READ
    b.enable(EV_READ)
    b.write(b"again")
    run(base)
    assert bytes(rf.data) == b"again"
    f.free()
    a.free()
    b.free()


def test_filter_read_timeout(fake):
    base, clock = fake
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf = Recorder(f)
    f.set_timeouts(read=5.0)
    f.enable(EV_READ)
    b.enable(EV_READ)
    clock.advance(4)
    b.write(b"data")  # filtered data restarts the timer
    run(base)
    clock.advance(4)
    run(base)
    assert rf.events == [] and bytes(rf.data) == b"data"
    clock.advance(1.5)
    run(base)
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]
    assert a._read_suspended & SUSPEND_FILT_READ
    f.set_timeouts(read=None)
    f.free()
    a.free()
    b.free()


def test_filter_write_timeout(fake):
    base, clock = fake
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf = Recorder(f)
    a.setwatermark(EV_WRITE, 0, 4)
    f.set_timeouts(write=2.0)
    f.write(b"0123456789")  # 4 go below, 6 wait in the filter's output
    assert len(f.output) == 6
    clock.advance(1)
    f.write(b"x")  # nothing filtered: waiting does not restart the timer
    clock.advance(1.5)
    run(base)
    assert rf.events == [BEV_EVENT.WRITING | BEV_EVENT.TIMEOUT]
    f.enable(EV_WRITE)
    f.set_timeouts(write=2.0)  # adjusting with data waiting restarts it
    b.enable(EV_READ)  # progress from below: everything drains, the timer stops
    run(base)
    assert not f.output
    clock.advance(5)
    run(base)
    assert len(rf.events) == 1
    f.set_timeouts(write=1.0)
    f.free()
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- more corners
def test_output_error_found_while_the_underlying_drains(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, bang_is_error)
    rf, rb = Recorder(f), Recorder(b)
    a.setwatermark(EV_WRITE, 0, 4)
    f.write(b"0123456789!tail")
    assert len(a.output) == 4 and rf.events == []
    b.enable(EV_READ)
    run(base)
    assert bytes(rb.data) == b"0123456789"
    assert rf.events == [BEV_EVENT.WRITING | BEV_EVENT.ERROR]
    f.free()
    a.free()
    b.free()


def test_reports_without_callbacks_set(base):
    a, b = new_pair(base)
    sink: list[bytes] = []
    f = Bufferevent.filter(a, hold, swallow, 0, sink)
    f.enable(EV_READ)
    b.enable(EV_READ)
    assert f.flush(EV_READ, FlushMode.NORMAL) == 0  # nothing below
    b.write(b"in")
    f.write(b"out")
    run(base)
    assert f.flush(EV_READ | EV_WRITE, FlushMode.FLUSH) == 1
    g = Bufferevent.filter(b, None, bang_is_error)
    g.write(b"!")
    run(base)
    assert not g.get_enabled() & EV_WRITE
    assert bytes(f.input) == b"in" and sink == [b"out", b""]  # FLUSH calls the filter even when empty
    for bev in (g, f, a, b):
        bev.free()


def test_flush_reports_a_drained_output_from_the_loop(base):
    a, b = new_pair(base)
    sink: list[bytes] = []
    f = Bufferevent.filter(a, None, swallow, 0, sink)
    rf = Recorder(f)
    f.disable(EV_WRITE)
    f.write(b"abc")
    assert sink == []
    assert f.flush(EV_WRITE, FlushMode.FLUSH) == 1
    assert rf.writes == 0
    run(base)
    assert rf.writes == 1 and sink == [b"abc"]
    f.free()
    a.free()
    b.free()


def test_data_already_below_is_filtered_when_reading_starts(base):
    a, b = new_pair(base)
    a.input.add(b"early ")
    f = Bufferevent.filter(a, None, upper)
    rf = Recorder(f)
    f.enable(EV_READ)
    assert rf.reads == 0  # never inside enable()
    run(base)
    assert bytes(rf.data) == b"early "
    a.input.add(b"dropped")
    f.disable(EV_READ)
    f.enable(EV_READ)  # schedules a pass...
    f.free()  # ...that finds the filter freed
    run(base)
    assert rf.data == b"early "
    a.free()
    b.free()


def test_filter_exceptions_propagate(base):
    a, b = new_pair(base)

    def broken(src, dst, limit, mode, arg):
        raise RuntimeError("filter bug")

    f = Bufferevent.filter(a, broken, broken)
    with pytest.raises(RuntimeError):
        f.write(b"x")
    assert not f._in_output
    f.enable(EV_READ)
    b.enable(EV_READ)
    b.write(b"y")
    with pytest.raises(RuntimeError):
        run(base)
    f.free()
    a.free()
    b.free()


def test_read_callback_frees_the_filter_at_eof(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, lines, None)
    got = []

    def on_read(bev, arg):
        got.append(bev.read())
        bev.free()

    f.setcb(on_read, None, lambda bev, what, arg: got.append(what))
    f.enable(EV_READ)
    b.write(b"no newline")
    b.free()
    run(base)
    assert got == [b"no newline"] and f.freed
    a.free()


def test_adjusting_timeouts_while_reading(fake):
    base, clock = fake
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    rf = Recorder(f)
    f.enable(EV_READ)
    f.set_timeouts(read=2.0)
    clock.advance(3)
    run(base)
    assert rf.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]
    f.free()
    a.free()
    b.free()


def test_a_flooding_pair_below_is_held_back_by_the_read_high_watermark(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    f.setwatermark(EV_READ, 0, 1000)
    f.enable(EV_READ)
    b.enable(EV_READ)
    for _ in range(100):  # synchronous moves into a's input stop once it holds the high mark
        b.write(b"q" * 300)
    assert len(a.input) <= 1200 and len(b.output) >= 28_000
    assert a._read_suspended & SUSPEND_FILT_READ
    got = bytearray()
    for _ in range(200):
        got += f.read()
        run(base, 2)
        if len(got) == 30_000:
            break
    assert bytes(got) == b"q" * 30_000
    assert not a._read_suspended
    f.free()
    a.free()
    b.free()


def test_removing_the_read_high_watermark_releases_the_underlying(base):
    a, b = new_pair(base)
    f = Bufferevent.filter(a, None, None)
    f.setwatermark(EV_READ, 0, 1000)
    f.enable(EV_READ)
    b.enable(EV_READ)
    for _ in range(30):
        b.write(b"r" * 300)
    assert a._read_suspended & SUSPEND_FILT_READ and len(f.input) == 0
    f.setwatermark(EV_READ, 0, 0)  # the filter itself was never full: only the level below held it
    run(base, 20)
    assert len(f.input) == 9000 and not a._read_suspended
    f.free()
    a.free()
    b.free()
