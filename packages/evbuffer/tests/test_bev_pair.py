"""Bufferevent pairs (evbuffer.bev_pair) on real event loops."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from evbuffer.bev_pair import PairBufferevent, new_pair
from evbuffer.bufferevent import BEV_EVENT, BEV_OPT, SUSPEND_BW, Bufferevent, FlushMode
from evbuffer.errors import EvbufferError
from evcore import EV_READ, EV_WRITE, EVLOOP_NO_EXIT_ON_EMPTY, EVLOOP_NONBLOCK, Event, EventBase
from evcore.testing import FakeClock

RW = EV_READ | EV_WRITE


@pytest.fixture
def base():
    b = EventBase()
    yield b
    b.free()


def run(base: EventBase, passes: int = 100) -> None:
    """Run loop passes without blocking (deferred callbacks take one pass per round)."""
    for _ in range(passes):
        base.loop(EVLOOP_NONBLOCK)


class Recorder:
    """Collects a bufferevent's callbacks."""

    def __init__(self, bev: Bufferevent, drain: bool = True) -> None:
        self.data = bytearray()
        self.reads = 0
        self.writes = 0
        self.events: list[BEV_EVENT] = []
        self.drain = drain
        bev.setcb(self.on_read, self.on_write, self.on_event, "arg")

    def on_read(self, bev: Bufferevent, arg: object) -> None:
        assert arg == "arg"
        self.reads += 1
        if self.drain:
            self.data += bev.read()

    def on_write(self, bev: Bufferevent, arg: object) -> None:
        self.writes += 1

    def on_event(self, bev: Bufferevent, what: BEV_EVENT, arg: object) -> None:
        self.events.append(what)


# ---------------------------------------------------------------------------------- basics
def test_pair_basics(base):
    a, b = Bufferevent.pair(base)
    assert isinstance(a, PairBufferevent) and a.kind == b.kind == "pair"
    assert a.get_partner() is b and b.get_partner() is a
    assert a.get_underlying() is None and a.fileno() == -1
    assert a.options & BEV_OPT.DEFER_CALLBACKS  # forced, as libevent
    assert a._lock is None and b._lock is None
    assert "PairBufferevent" in repr(a)
    a.free()
    b.free()
    assert a.freed and b.freed and "freed" in repr(a)


def test_nothing_moves_until_the_reader_reads(base):
    a, b = new_pair(base)
    a.write(b"abc")
    assert len(a.output) == 3 and len(b.input) == 0
    b.enable(EV_READ)
    assert bytes(b.input) == b"abc" and len(a.output) == 0
    a.free()
    b.free()


def test_writer_must_be_writing(base):
    a, b = new_pair(base)
    b.enable(EV_READ)
    a.disable(EV_WRITE)
    a.write(b"held")
    assert len(b.input) == 0
    a.enable(EV_WRITE)
    assert bytes(b.input) == b"held"
    a.free()
    b.free()


def test_callbacks_run_from_the_loop_never_inside_write(base):
    a, b = new_pair(base)
    ra, rb = Recorder(a), Recorder(b)
    b.enable(EV_READ)
    a.write(b"hello")
    assert rb.reads == 0 and ra.writes == 0  # data moved, callbacks wait for the loop
    assert bytes(b.input) == b"hello"
    run(base)
    assert bytes(rb.data) == b"hello" and rb.reads == 1 and ra.writes == 1
    a.free()
    b.free()


def test_ordering_and_both_directions(base):
    a, b = new_pair(base)
    ra = Recorder(a)
    rb = Recorder(b, drain=False)

    def echo(bev, arg):
        rb.reads += 1
        bev.write(bev.read())  # b echoes to a

    b.setcb(echo, None, None)
    a.enable(EV_READ)
    b.enable(EV_READ)
    expected = b"".join(b"msg %05d\n" % i for i in range(2000))
    for i in range(2000):
        a.write(b"msg %05d\n" % i)
    run(base)
    assert bytes(ra.data) == expected
    a.free()
    b.free()


def test_read_low_watermark(base):
    a, b = new_pair(base)
    rb = Recorder(b, drain=False)
    b.setwatermark(EV_READ, 10, 0)
    b.enable(EV_READ)
    a.write(b"12345")
    run(base)
    assert rb.reads == 0
    a.write(b"67890")
    run(base)
    assert rb.reads == 1 and len(b.input) == 10
    a.free()
    b.free()


def test_read_high_watermark_bounds_input_and_resumes(base):
    a, b = new_pair(base)
    seen_max = []
    got = bytearray()

    def on_read(bev, arg):
        seen_max.append(len(bev.input))
        got.extend(bev.read(300))  # drain only part of it each time

    b.setcb(on_read, None, None)
    b.setwatermark(EV_READ, 0, 1000)
    b.enable(EV_READ)
    payload = os.urandom(10_000)
    a.write(payload)
    assert len(b.input) == 1000 and len(a.output) == 9000
    run(base, passes=200)
    assert bytes(got) + b.read() == payload
    assert max(seen_max) <= 1000


def test_raising_the_high_watermark_resumes(base):
    a, b = new_pair(base)
    b.setwatermark(EV_READ, 0, 10)
    b.enable(EV_READ)
    a.write(b"x" * 100)
    assert len(b.input) == 10
    b.setwatermark(EV_READ, 0, 50)
    assert len(b.input) == 50
    b.setwatermark(EV_READ, 0, 0)
    assert len(b.input) == 100
    a.free()
    b.free()


def test_write_low_watermark(base):
    a, b = new_pair(base)
    ra = Recorder(a)
    a.setwatermark(EV_WRITE, 100, 0)
    b.setwatermark(EV_READ, 0, 1000)
    b.enable(EV_READ)
    a.write(b"y" * 1500)  # 1000 move, 500 stay: above the write low watermark
    run(base)
    assert ra.writes == 0
    b.read(450)  # 450 more move: 50 left, at most the low watermark
    run(base)
    assert ra.writes == 1 and len(a.output) == 50
    a.free()
    b.free()


def test_large_transfer_with_checksum(base):
    total = 64 << 20
    chunk = 256 << 10
    blocks = [os.urandom(chunk) for _ in range(4)]
    want = hashlib.sha256()
    got = hashlib.sha256()
    state = {"sent": 0, "recv": 0}
    a, b = new_pair(base)

    def on_write(bev, arg):
        if state["sent"] < total:
            blk = blocks[(state["sent"] // chunk) % 4]
            want.update(blk)
            state["sent"] += chunk
            bev.write(blk)

    def on_read(bev, arg):
        inp = bev.input
        for mv in inp.peek():
            got.update(mv)
        state["recv"] += len(inp)
        inp.drain(len(inp))

    a.setcb(None, on_write, None)
    b.setcb(on_read, None, None)
    b.setwatermark(EV_READ, 0, 1 << 20)
    b.enable(EV_READ)
    t0 = time.monotonic()
    on_write(a, None)
    base.loop()
    assert state["recv"] == total
    assert got.digest() == want.digest()
    assert time.monotonic() - t0 < 30
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- freeing
def test_free_one_end_gives_eof_after_the_data(base):
    a, b = new_pair(base)
    rb = Recorder(b)
    b.enable(EV_READ)
    a.disable(EV_WRITE)
    a.write(b"last words")  # held in a's output: handed over at free
    a.free()
    assert b.get_partner() is None
    run(base)
    assert bytes(rb.data) == b"last words"
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    assert not b.get_enabled() & EV_READ
    b.enable(EV_READ)  # like a socket at EOF: EOF again
    run(base)
    assert rb.events[-1] == BEV_EVENT.READING | BEV_EVENT.EOF and len(rb.events) == 2
    assert b.flush(EV_WRITE, FlushMode.FINISHED) == -1
    b.write(b"nowhere")  # never refused, goes nowhere
    assert len(b.output) == 7
    b.free()


def test_free_with_leftover_respects_the_high_watermark(base):
    a, b = new_pair(base)
    rb = Recorder(b, drain=False)
    b.setwatermark(EV_READ, 0, 100)
    b.enable(EV_READ)
    a.write(b"z" * 1000)
    a.free()
    run(base)
    assert len(b.input) == 100 and not rb.events
    got = bytearray()
    for _ in range(20):
        got += b.read()
        run(base)
        if rb.events:
            break
    assert bytes(got) == b"z" * 1000
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    b.free()


def test_free_while_the_survivor_does_not_read(base):
    a, b = new_pair(base)
    rb = Recorder(b)
    a.write(b"later")
    a.free()
    run(base)
    assert rb.events == [] and rb.data == b""
    b.enable(EV_READ)
    run(base)
    assert bytes(rb.data) == b"later" and rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    b.free()


def test_free_empty_end_and_the_other(base):
    a, b = new_pair(base)
    b.free()
    assert a.get_partner() is None
    a.write(b"x")
    a.free()
    a.free()  # idempotent
    with pytest.raises(EvbufferError):
        a.enable(EV_READ)


def test_callbacks_that_free_their_own_bufferevent(base):
    a, b = new_pair(base)
    events = []

    def read_and_free(bev, arg):
        events.append(bev.read())
        bev.free()

    def write_and_free(bev, arg):
        events.append("a-write")
        bev.free()

    b.setcb(read_and_free, None, None)
    a.setcb(None, write_and_free, None)
    b.enable(EV_READ)
    a.write(b"bye")
    run(base)
    assert events == [b"bye", "a-write"]
    assert a.freed and b.freed


def test_reader_frees_the_writer_in_its_callback(base):
    a, b = new_pair(base)
    rb = Recorder(b)
    ra = Recorder(a)

    def on_read(bev, arg):
        rb.data += bev.read()
        a.free()

    b.setcb(on_read, None, rb.on_event, "arg")
    b.enable(EV_READ)
    a.write(b"one")
    run(base)
    assert bytes(rb.data) == b"one"
    assert ra.writes == 0  # a was freed before its deferred write callback ran
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    b.free()


def test_context_manager(base):
    a, b = new_pair(base)
    with a, b:
        b.enable(EV_READ)
        a.write(b"q")
    assert a.freed and b.freed


# ---------------------------------------------------------------------------------- flush
def test_flush_modes(base):
    a, b = new_pair(base)
    ra, rb = Recorder(a, drain=False), Recorder(b, drain=False)
    b.setwatermark(EV_READ, 0, 4)
    b.enable(EV_READ)
    a.write(b"0123456789")
    assert len(b.input) == 4
    assert a.flush(EV_WRITE, FlushMode.NORMAL) == 0
    assert len(b.input) == 4
    assert a.flush(EV_WRITE, FlushMode.FLUSH) == 1  # ignores the watermark
    assert len(b.input) == 10 and not a.output
    assert a.flush(EV_WRITE, FlushMode.FLUSH) == 0
    run(base)
    assert rb.events == []
    assert a.flush(EV_WRITE, FlushMode.FINISHED) == 0
    run(base)
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    # pull the partner's output with EV_READ; the partner hears WRITING|EOF
    b.write(b"back")
    assert a.flush(EV_READ, FlushMode.FINISHED) == 1
    assert bytes(a.input) == b"back"
    run(base)
    assert rb.events[-1] == BEV_EVENT.WRITING | BEV_EVENT.EOF
    assert ra.reads == 1
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- options
def test_defer_callbacks_option_batches_transfers(base):
    a, b = new_pair(base, BEV_OPT.DEFER_CALLBACKS)
    rb = Recorder(b)
    b.enable(EV_READ)
    for i in range(100):
        a.write(b"%d," % i)
    assert len(b.input) == 0  # the output callback itself is deferred: one move per batch
    run(base)
    assert bytes(rb.data) == b"".join(b"%d," % i for i in range(100))
    assert rb.reads == 1
    a.free()
    b.free()


def test_threadsafe_pair_shares_one_lock_across_threads(base):
    a, b = new_pair(base, BEV_OPT.THREADSAFE)
    assert a._lock is not None and a._lock is b._lock
    assert isinstance(a._lock, type(threading.RLock()))
    n = 2000
    expected = b"".join(b"%06d" % i for i in range(n))
    got = bytearray()

    def on_read(bev, arg):
        got.extend(bev.read())
        if len(got) >= len(expected):
            base.loopbreak()

    b.setcb(on_read, None, None)
    b.enable(EV_READ)

    def writer():
        for i in range(n):
            a.write(b"%06d" % i)

    guard = Event.timer(base, lambda fd, what, arg: base.loopbreak())
    guard.add(20)
    t = threading.Thread(target=writer)
    t.start()
    base.loop(EVLOOP_NO_EXIT_ON_EMPTY)
    t.join(10)
    guard.free()
    assert bytes(got) == expected
    a.free()
    b.free()


def test_unlock_callbacks(base):
    a, b = new_pair(base, BEV_OPT.THREADSAFE | BEV_OPT.UNLOCK_CALLBACKS)
    owned = []
    lock = a._lock

    def on_read(bev, arg):
        owned.append(lock._is_owned())  # type: ignore[union-attr]
        bev.read()

    b.setcb(on_read, None, None)
    b.enable(EV_READ)
    a.write(b"x")
    run(base)
    assert owned == [False]
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- timeouts
@pytest.fixture
def fake():
    clock = FakeClock()
    b = EventBase(clock=clock)
    yield b, clock
    b.free()


def test_read_timeout(fake):
    base, clock = fake
    a, b = new_pair(base)
    rb = Recorder(b)
    b.set_timeouts(read=5.0)
    b.enable(EV_READ)
    clock.advance(4)
    base.loop(EVLOOP_NONBLOCK)
    a.write(b"data")  # arrival restarts the timer
    clock.advance(4)
    run(base)
    assert rb.events == [] and bytes(rb.data) == b"data"
    clock.advance(1.5)
    run(base)
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.TIMEOUT]
    assert not b.get_enabled() & EV_READ
    a.free()
    b.free()


def test_read_timeout_stops_while_suspended_and_when_cleared(fake):
    base, clock = fake
    a, b = new_pair(base)
    rb = Recorder(b, drain=False)
    b.setwatermark(EV_READ, 0, 3)
    b.enable(EV_READ)
    b.set_timeouts(read=1.0)
    a.write(b"full!")  # input at the high watermark: reading suspended, no timer
    clock.advance(5)
    run(base)
    assert rb.events == []
    b.read()
    b.set_timeouts(read=1.0)  # adjust while reading: the timer restarts
    b.set_timeouts(read=None)
    clock.advance(5)
    run(base)
    assert rb.events == []
    b.disable(EV_READ)
    b.set_timeouts(read=1.0)  # not reading: no timer
    clock.advance(5)
    run(base)
    assert rb.events == []
    a.free()
    b.free()


def test_write_timeout(fake):
    base, clock = fake
    a, b = new_pair(base)
    ra = Recorder(a)
    a.set_timeouts(write=2.0)
    a.write(b"stuck")  # b does not read
    clock.advance(1)
    a.write(b"more")  # waiting more does not restart it
    clock.advance(1.5)
    run(base)
    assert ra.events == [BEV_EVENT.WRITING | BEV_EVENT.TIMEOUT]
    assert not a.get_enabled() & EV_WRITE
    a.enable(EV_WRITE)  # re-armed by enable with data waiting
    b.setwatermark(EV_READ, 0, 4)
    clock.advance(1.5)
    b.enable(EV_READ)  # progress: 4 bytes move, the timer restarts
    assert len(b.input) == 4
    clock.advance(1.5)
    run(base)
    assert len(ra.events) == 1
    b.setwatermark(EV_READ, 0, 0)  # everything moves: the timer stops
    assert not a.output
    clock.advance(10)
    run(base)
    assert len(ra.events) == 1
    a.set_timeouts(write=1.0)  # nothing waiting: no timer
    a.set_timeouts(read=None, write=None)
    b.disable(EV_READ)
    a.write(b"w")
    a.set_timeouts(write=1.0)  # data waiting: armed by the adjustment
    a.disable(EV_WRITE)
    clock.advance(3)
    run(base)
    assert len(ra.events) == 1
    a.free()
    b.free()


# ---------------------------------------------------------------------------------- rate limits
class Bucket:
    """A hand-filled token bucket speaking the interface bufferevents use (``bev._rate``)."""

    def __init__(self, bev: Bufferevent, read: int, write: int) -> None:
        self.bev = bev
        self.read = read
        self.write = write
        self.blocked: list[str] = []

    def read_allowance(self) -> int:
        return self.read

    def write_allowance(self) -> int:
        return self.write

    def consumed_read(self, n: int) -> None:
        self.read -= n

    def consumed_write(self, n: int) -> None:
        self.write -= n

    def block_read(self) -> None:
        self.blocked.append("read")
        self.bev._suspend_read(SUSPEND_BW)

    def block_write(self) -> None:
        self.blocked.append("write")
        self.bev._suspend_write(SUSPEND_BW)


def test_rate_limits_cut_transfers(base):
    a, b = new_pair(base)
    rb_bucket = Bucket(b, read=100, write=0)
    wa_bucket = Bucket(a, read=0, write=250)
    b._rate = rb_bucket  # type: ignore[assignment]
    a._rate = wa_bucket  # type: ignore[assignment]
    b.enable(EV_READ)
    a.write(b"r" * 1000)
    assert len(b.input) == 100 and rb_bucket.blocked == ["read"]
    rb_bucket.read = 1000
    b._unsuspend_read(SUSPEND_BW)  # refill: the move resumes, now cut by the writer's bucket
    assert len(b.input) == 250 and wa_bucket.blocked == ["write"]
    wa_bucket.write = 10_000
    b.set_max_single_read(300)  # with a rate limit the max single read cuts each step
    a._unsuspend_write(SUSPEND_BW)
    assert len(b.input) == 1000 and not a.output
    assert wa_bucket.write == 10_000 - 750
    a._rate = b._rate = None
    a.free()
    b.free()


def test_defer_callbacks_with_a_high_watermark(base):
    a, b = new_pair(base, BEV_OPT.DEFER_CALLBACKS)
    rb = Recorder(b, drain=False)
    b.setwatermark(EV_READ, 0, 10)
    b.enable(EV_READ)
    a.write(b"x" * 25)
    a.write(b"y" * 5)
    run(base)
    assert len(b.input) == 10 and rb.reads == 1
    got = bytearray()
    for _ in range(10):
        got += b.read()
        run(base)
    assert bytes(got) == b"x" * 25 + b"y" * 5
    a.free()
    b.free()


def test_clearing_the_write_timeout_then_progress(fake):
    base, clock = fake
    a, b = new_pair(base)
    ra = Recorder(a)
    a.set_timeouts(write=1.0)
    a.write(b"abcdef")  # the write timer exists now
    a.set_timeouts(write=None)
    b.setwatermark(EV_READ, 0, 2)
    b.enable(EV_READ)  # partial progress: no timeout to restart
    a.enable(EV_WRITE)  # nothing new: enabling what is enabled
    clock.advance(5)
    run(base)
    assert ra.events == [] and len(a.output) == 4
    a.free()
    b.free()


def test_real_rate_limits_pace_a_pair(fake):
    ratelimit = pytest.importorskip("evbuffer.ratelimit")
    base, clock = fake
    a, b = new_pair(base)
    rb = Recorder(b)
    b.set_rate_limit(ratelimit.RateLimit(1000, 1000, 1 << 30, 1 << 30, tick=1.0))
    b.enable(EV_READ)
    a.write(b"r" * 5000)
    assert len(b.input) == 1000  # the bucket starts at its rate
    for i in range(2, 6):
        clock.advance(1)
        run(base, 5)
        assert len(rb.data) == 1000 * i
    c, d = new_pair(base)
    rd = Recorder(d)
    c.set_rate_limit(ratelimit.RateLimit(1 << 30, 1 << 30, 300, 300, tick=1.0))
    d.enable(EV_READ)
    c.write(b"w" * 1000)
    run(base, 5)
    assert len(rd.data) == 300
    clock.advance(1)
    run(base, 5)
    assert len(rd.data) == 600
    for bev in (a, b, c, d):
        bev.free()


def test_enable_reports_input_a_flush_moved(base):
    a, b = new_pair(base)
    b.setwatermark(EV_READ, 3, 0)
    a.write(b"ab")
    assert a.flush(EV_WRITE, FlushMode.FLUSH) == 1
    rb = Recorder(b, drain=False)
    b.enable(EV_READ)  # below the low watermark: nothing to report
    run(base)
    assert rb.reads == 0
    b.disable(EV_READ)
    a.write(b"c")
    a.flush(EV_WRITE, FlushMode.FLUSH)
    b.enable(EV_WRITE)  # not reading: nothing either
    run(base)
    assert rb.reads == 1  # the flush itself ran the read callback
    b.enable(EV_READ)
    run(base)
    assert rb.reads == 2 and bytes(b.input) == b"abc"
    a.free()
    b.free()
