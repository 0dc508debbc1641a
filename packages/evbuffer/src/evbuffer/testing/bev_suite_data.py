"""Bufferevent conformance suite, part 1: moving data (order, volume, watermarks, memory bounds).

Every test takes the ``bev_pair_factory`` fixture (see
:mod:`evbuffer.testing.bev_suite_support`) and runs on every kind.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator

import pytest

from evcore import EV_READ, EV_WRITE

from ..buffer import Buffer
from ..bufferevent import BEV_EVENT, Bufferevent
from .bev_suite_support import (
    RW,
    BevPairFactory,
    Feeder,
    Recorder,
    Source,
    clog,
    held_bytes,
    requires,
    run_for,
    run_until,
)

__all__ = [
    "test_ordering_many_writes",
    "test_ordering_both_directions",
    "test_large_transfer_checksum",
    "test_stalled_reader_memory_bounded",
    "test_le_proxy_memory_flat",
    "test_read_low_watermark",
    "test_read_high_watermark_stops_and_resumes",
    "test_draining_input_directly_resumes_reading",
    "test_eof_waits_behind_read_high_watermark",
    "test_write_low_watermark",
    "test_read_n_and_read_buffer",
    "test_write_buffer_moves_chunks",
    "test_write_accepts_bytes_likes",
    "test_max_single_read_bounds_each_read",
    "test_max_single_write_bounds_each_write",
    "test_max_single_values",
    "test_rate_limited_read",
    "test_rate_limited_write",
    "test_rate_limit_removed",
]


def _messages(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [i.to_bytes(4, "big") + bytes([i & 0xFF]) * rng.randrange(0, 3000) + b"\n" for i in range(count)]


def test_ordering_many_writes(bev_pair_factory: BevPairFactory) -> None:
    """Thousands of writes of varying sizes arrive complete and in order."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.enable(EV_READ)
    msgs = _messages(3000, seed=1)
    expected = b"".join(msgs)
    for m in msgs:
        a.write(m)
    run_until(base, lambda: len(rec.data) >= len(expected), what="all messages")
    assert bytes(rec.data) == expected
    assert rec.violations == []


def test_ordering_both_directions(bev_pair_factory: BevPairFactory) -> None:
    """Both ends write at once, from callbacks too; each side gets the other's stream intact."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    ma, mb = _messages(800, seed=2), _messages(800, seed=3)
    ea, eb = b"".join(ma), b"".join(mb)
    ia, ib = iter(ma), iter(mb)

    def more(it: Iterator[bytes]) -> Callable[[Bufferevent], None]:
        def write_some(bev: Bufferevent) -> None:
            for _ in range(20):
                m = next(it, None)
                if m is None:
                    return
                bev.write(m)

        return write_some

    ra = Recorder(a, on_read=more(ia))
    rb = Recorder(b, on_read=more(ib))
    a.enable(RW)
    b.enable(RW)
    more(ia)(a)
    more(ib)(b)
    run_for(base, 0.2)  # ping-pong: each read callback writes the next messages
    a.write(b"".join(ia))  # what the read callbacks did not get to write (often nothing)
    b.write(b"".join(ib))
    run_until(base, lambda: len(ra.data) >= len(eb) and len(rb.data) >= len(ea), what="both streams")
    assert bytes(rb.data) == ea
    assert bytes(ra.data) == eb
    assert ra.violations == rb.violations == []


def test_large_transfer_checksum(bev_pair_factory: BevPairFactory) -> None:
    """64 MiB go through, checksummed, in bounded time and with bounded memory."""
    total = 64 << 20
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    src = Source(total, seed=4)
    got = hashlib.sha256()
    count = [0]
    rb = Recorder(b, drain=False)

    def readcb(bev: object, arg: object) -> None:
        data = b.read()
        count[0] += len(data)
        got.update(data)
        feeder.sample()

    b.setcb(readcb, None, rb.eventcb, rb)
    # the reader's high mark bounds the input side (a pair moves data synchronously otherwise)
    b.setwatermark(EV_READ, 0, 1 << 20)
    feeder = Feeder(a, src, high=1 << 20, low=256 * 1024, chunk=256 * 1024, watch=(a, b))
    b.enable(EV_READ)
    t0 = time.monotonic()
    feeder.feed()
    run_until(base, lambda: count[0] >= total, timeout=90.0, what="64 MiB received")
    elapsed = time.monotonic() - t0
    assert count[0] == total
    assert got.hexdigest() == src.digest.hexdigest()
    assert rb.events == [], rb.events
    assert feeder.max_output <= (1 << 20) + 256 * 1024
    assert feeder.max_held <= 8 << 20, f"held up to {feeder.max_held} bytes"
    assert elapsed < 90.0


def test_stalled_reader_memory_bounded(bev_pair_factory: BevPairFactory) -> None:
    """A reader that stops: the le-proxy writer holds memory flat, and nothing is lost on resume."""
    high, low, chunk = 512 * 1024, 128 * 1024, 64 * 1024
    bound = 2 * high + chunk + 2 * 256 * 1024  # writer's mark + reader's high mark + filter slack
    total = 1 << 30  # nominal: cut short once the stall was observed
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    src = Source(total, seed=5)
    got = hashlib.sha256()
    count = [0]
    b.setwatermark(EV_READ, 0, high)
    rb = Recorder(b, drain=False)

    def readcb(bev: object, arg: object) -> None:
        data = b.read()
        count[0] += len(data)
        got.update(data)
        feeder.sample()

    b.setcb(readcb, None, rb.eventcb, rb)
    feeder = Feeder(a, src, high=high, low=low, chunk=chunk, watch=(a, b))
    # phase 1: the reader reads a little, then stops
    b.enable(EV_READ)
    feeder.feed()
    run_until(base, lambda: count[0] >= 1 << 20, what="the first MiB")
    b.disable(EV_READ)
    run_for(base, 0.3)
    feeder.sample()
    stalled_at = src.given
    run_for(base, 0.3)
    feeder.sample()
    assert src.given == stalled_at, "the writer kept feeding while the reader stalled"
    # kernel buffers (TCP autotuning: tens of MiB) took part; end the stream 4 MiB from here
    src.total = total = src.given + (4 << 20)
    assert feeder.max_output < high + chunk
    assert feeder.max_held <= bound, f"held {feeder.max_held} bytes (bound {bound})"
    # phase 2: the reader resumes; everything arrives
    b.enable(EV_READ)
    run_until(base, lambda: count[0] >= total, timeout=60.0, what="everything after resuming")
    assert count[0] == total
    assert got.hexdigest() == src.digest.hexdigest()
    assert feeder.max_held <= bound, f"held {feeder.max_held} bytes (bound {bound})"
    assert rb.violations == []


def test_le_proxy_memory_flat(bev_pair_factory: BevPairFactory) -> None:
    """libevent's le-proxy between two connections: a stalled sink keeps the proxy's memory flat.

    source -> (x | proxy | y) -> sink.  The proxy's read callback moves x's input to y's
    output and, when y's output passes ``MAX``, stops reading x until y's write callback
    (write low watermark ``MAX // 2``) says it drained.  While the sink stalls, what the
    proxy holds stays bounded and the source is held back; when it resumes, every byte
    arrives intact.
    """
    max_out = 512 * 1024
    bound = 2 * max_out + 2 * 256 * 1024 + 512 * 1024
    total = 1 << 30  # nominal: cut short once the stall was observed
    base = bev_pair_factory.base()
    source, x = bev_pair_factory(base)
    y, sink = bev_pair_factory(base)
    src = Source(total, seed=6)
    got = hashlib.sha256()
    count = [0]
    feeder = Feeder(source, src, high=256 * 1024, low=64 * 1024, watch=(x, y))

    def proxy_read(bev: object, arg: object) -> None:
        y.write_buffer(_take_all(x))
        feeder.sample()
        if len(y.output) >= max_out:
            x.disable(EV_READ)

    def proxy_drained(bev: object, arg: object) -> None:
        feeder.sample()
        if not x.get_enabled() & EV_READ:
            x.enable(EV_READ)

    def sink_read(bev: object, arg: object) -> None:
        data = sink.read()
        count[0] += len(data)
        got.update(data)
        feeder.sample()

    x.setcb(proxy_read, None, None)
    # x's read high mark holds the source back where no kernel buffer does (pairs move at once)
    x.setwatermark(EV_READ, 0, 256 * 1024)
    y.setcb(None, proxy_drained, None)
    y.setwatermark(EV_WRITE, max_out // 2, 0)
    sink.setcb(sink_read, None, None)
    x.enable(EV_READ)
    sink.enable(EV_READ)
    feeder.feed()
    run_until(base, lambda: count[0] >= 1 << 20, what="the first MiB through the proxy")
    sink.disable(EV_READ)
    run_for(base, 0.3)
    given = src.given
    run_for(base, 0.3)
    assert src.given == given, "the source was not held back while the sink stalled"
    src.total = total = src.given + (4 << 20)  # end the stream 4 MiB from here
    assert feeder.max_held <= bound, f"the proxy held {feeder.max_held} bytes (bound {bound})"
    sink.enable(EV_READ)
    run_until(base, lambda: count[0] >= total, timeout=60.0, what="everything through the proxy")
    assert count[0] == total
    assert got.hexdigest() == src.digest.hexdigest()
    assert feeder.max_held <= bound, f"the proxy held {feeder.max_held} bytes (bound {bound})"


def _take_all(bev: object) -> Buffer:
    buf = Buffer()
    bev.read_buffer(buf)  # type: ignore[attr-defined]
    return buf


def test_read_low_watermark(bev_pair_factory: BevPairFactory) -> None:
    """The read callback waits until the input holds the read low watermark."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b, drain=False)
    b.setwatermark(EV_READ, 100, 0)
    assert b.getwatermark(EV_READ) == (100, 0)
    b.enable(EV_READ)
    a.write(b"x" * 60)
    run_until(base, lambda: len(b.input) >= 60, what="the first 60 bytes")
    run_for(base, 0.05)
    assert rec.reads == 0
    a.write(b"y" * 50)
    run_until(base, lambda: rec.reads > 0, what="the read callback")
    assert len(b.input) >= 100
    assert b.read() == b"x" * 60 + b"y" * 50


def test_read_high_watermark_stops_and_resumes(bev_pair_factory: BevPairFactory) -> None:
    """Reading stops while the input holds the high mark, and resumes once it is drained."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b, drain=False)
    high = 1000
    b.setwatermark(EV_READ, 0, high)
    b.enable(EV_READ)
    payload = bytes(range(256)) * 40  # 10240 bytes
    a.write(payload)
    run_until(base, lambda: len(b.input) >= high, what="the input filled to the high mark")
    run_for(base, 0.1)
    assert len(b.input) == high, f"input {len(b.input)} beyond high mark {high}"
    assert b.get_enabled() & EV_READ  # suspension by the watermark does not show as disabled
    b.disable(EV_READ)
    b.enable(EV_READ)  # enabling does not lift the watermark's hold
    run_for(base, 0.05)
    assert len(b.input) == high
    got = bytearray(b.read())
    while len(got) < len(payload):
        before = len(got)
        run_until(base, lambda: len(b.input) > 0, what="reading resumed")
        run_for(base, 0.01)
        assert len(b.input) <= high
        got += b.read()
        assert len(got) > before
    assert bytes(got) == payload
    assert rec.reads >= len(payload) // high


def test_draining_input_directly_resumes_reading(bev_pair_factory: BevPairFactory) -> None:
    """Reading held back by the high mark resumes when the user drains ``bev.input`` itself."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    Recorder(b, drain=False)
    b.setwatermark(EV_READ, 0, 500)
    b.enable(EV_READ)
    a.write(b"d" * 3000)
    got = rounds = 0
    while got < 3000:
        rounds += 1
        assert rounds <= 50, f"reading did not resume: {got} of 3000 bytes after 50 rounds"
        run_until(base, lambda: len(b.input) > 0, what="input")
        run_for(base, 0.005)
        n = len(b.input)
        assert n <= 500
        b.input.drain(n)
        got += n
    assert got == 3000


def test_eof_waits_behind_read_high_watermark(bev_pair_factory: BevPairFactory) -> None:
    """A peer that wrote a lot and went away: the reader (high mark set) gets every byte, then EOF."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    order: list[object] = []
    rec = Recorder(b, on_read=lambda bev: order.append("data"), on_event=lambda bev, w: order.append(w))
    b.setwatermark(EV_READ, 0, 1000)
    payload = bytes(range(200)) * 50  # 10000 bytes
    a.write(payload)
    run_for(base, 0.05)  # sockets: into the kernel; pairs: still in a's output
    a.free()
    b.enable(EV_READ)
    run_until(base, lambda: rec.events, what="EOF after the data")
    assert bytes(rec.data) == payload
    assert order[-1] == BEV_EVENT.READING | BEV_EVENT.EOF and order.count("data") >= 10, order
    assert rec.events == [BEV_EVENT.READING | BEV_EVENT.EOF]


def test_write_low_watermark(bev_pair_factory: BevPairFactory) -> None:
    """The write callback runs only once the output drained to the write low watermark."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    low = 64 * 1024
    seen: list[int] = []
    rec = Recorder(a, drain=False, on_write=lambda bev: seen.append(len(bev.output)))
    a.setwatermark(EV_WRITE, low, 0)
    assert a.getwatermark(EV_WRITE) == (low, 0)
    written = clog(base, a)
    assert all(n <= low for n in seen), seen
    rb = Recorder(b)
    b.enable(EV_READ)
    run_until(base, lambda: len(rb.data) >= written and rec.writes > 0, what="drained and reported")
    assert seen and all(n <= low for n in seen), seen
    assert len(a.output) == 0
    assert rec.violations == []


def test_read_n_and_read_buffer(bev_pair_factory: BevPairFactory) -> None:
    """``read(n)`` takes at most ``n`` bytes in order; ``read_buffer`` moves all input."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    b.enable(EV_READ)
    a.write(b"0123456789abcdef")
    run_until(base, lambda: len(b.input) >= 16)
    assert b.read(0) == b""
    assert b.read(4) == b"0123"
    assert b.read(3) == b"456"
    dst = Buffer(b">")
    assert b.read_buffer(dst) == 9
    assert bytes(dst) == b">789abcdef"
    assert len(b.input) == 0
    assert b.read() == b""
    assert b.read(10) == b""
    assert b.read_buffer(dst) == 0


def test_write_buffer_moves_chunks(bev_pair_factory: BevPairFactory) -> None:
    """``write_buffer`` moves a whole buffer (the source is empty after) and the data arrives."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.enable(EV_READ)
    src = Buffer()
    expected = b""
    for i in range(50):
        piece = bytes([65 + i % 26]) * (1000 + i)
        src.add(piece)
        expected += piece
    a.write_buffer(src)
    assert len(src) == 0
    src.add(b"reuse")  # the emptied buffer is still usable and independent
    run_until(base, lambda: len(rec.data) >= len(expected))
    assert bytes(rec.data) == expected
    assert bytes(src) == b"reuse"


def test_write_accepts_bytes_likes(bev_pair_factory: BevPairFactory) -> None:
    """``write`` takes bytes, bytearray and memoryview, and copies what may change later."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.enable(EV_READ)
    ba = bytearray(b"mutable")
    a.write(b"bytes;")
    a.write(ba)
    ba[:] = b"CHANGED"
    a.write(memoryview(b";view"))
    a.write(b"")
    run_until(base, lambda: len(rec.data) >= 18)
    run_for(base, 0.02)
    assert bytes(rec.data) == b"bytes;mutable;view"


@requires("io_chunks")
def test_max_single_read_bounds_each_read(bev_pair_factory: BevPairFactory) -> None:
    """With ``set_max_single_read(n)`` each read brings in at most ``n`` bytes."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    sizes: list[int] = []
    rec = Recorder(b, drain=False)
    data = bytearray()

    def readcb(bev: object, arg: object) -> None:
        chunk = b.read()
        sizes.append(len(chunk))
        data.extend(chunk)

    b.setcb(readcb, None, rec.eventcb, rec)
    b.set_max_single_read(1000)
    assert b.get_max_single_read() == 1000
    b.enable(EV_READ)
    payload = bytes(range(256)) * 200  # 51200 bytes
    a.write(payload)
    run_until(base, lambda: len(data) >= len(payload))
    assert bytes(data) == payload
    assert max(sizes) <= 1000, max(sizes)
    assert len(sizes) >= len(payload) // 1000


@requires("io_chunks")
def test_max_single_write_bounds_each_write(bev_pair_factory: BevPairFactory) -> None:
    """With ``set_max_single_write(n)`` a write pass sends at most ``n`` bytes (data still all arrives)."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    a.set_max_single_write(512)
    assert a.get_max_single_write() == 512
    a.write(b"z" * 5000)
    # the eager write sent at most one chunk; the rest waits for the loop
    assert len(a.output) >= 5000 - 512
    rec = Recorder(b)
    b.enable(EV_READ)
    run_until(base, lambda: len(rec.data) >= 5000)
    assert bytes(rec.data) == b"z" * 5000


def test_max_single_values(bev_pair_factory: BevPairFactory) -> None:
    """The max single read/write settings keep their value and refuse 0 and negatives but -1."""
    base = bev_pair_factory.base()
    a, _b = bev_pair_factory(base)
    assert a.get_max_single_read() == -1
    assert a.get_max_single_write() == -1
    for bad in (0, -2):
        with pytest.raises(ValueError):
            a.set_max_single_read(bad)
        with pytest.raises(ValueError):
            a.set_max_single_write(bad)
    a.set_max_single_read(4096)
    a.set_max_single_write(8192)
    assert (a.get_max_single_read(), a.get_max_single_write()) == (4096, 8192)
    a.set_max_single_read(-1)
    assert a.get_max_single_read() == -1
    assert held_bytes(a) == 0


_BIG = 1 << 30
_TICK = 0.05
_RATE = 16384


def _rate_limited_transfer(bev_pair_factory: BevPairFactory, side: str) -> None:
    from ..ratelimit import RateLimit

    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    sizes: list[int] = []
    data = bytearray()
    rec = Recorder(b, drain=False)

    def readcb(bev: object, arg: object) -> None:
        chunk = b.read()
        sizes.append(len(chunk))
        data.extend(chunk)

    b.setcb(readcb, None, rec.eventcb, rec)
    if side == "read":
        b.set_rate_limit(RateLimit(_RATE, _RATE, _BIG, _BIG, tick=_TICK))
        assert 0 < b.get_read_limit() <= _RATE
        assert b.get_max_to_read() <= _RATE
    else:
        a.set_rate_limit(RateLimit(_BIG, _BIG, _RATE, _RATE, tick=_TICK))
        assert 0 < a.get_write_limit() <= _RATE
        assert a.get_max_to_write() <= _RATE
    payload = bytes(range(256)) * 640  # 160 KiB: at least 9 ticks past the first bucket
    b.enable(EV_READ)
    t0 = time.monotonic()
    a.write(payload)
    run_until(base, lambda: len(data) >= len(payload), timeout=20.0, what="the rate-limited transfer")
    elapsed = time.monotonic() - t0
    assert bytes(data) == payload
    min_time = (len(payload) - 2 * _RATE) / _RATE * _TICK * 0.7
    assert elapsed >= min_time, f"{len(payload)} bytes at {_RATE}/{_TICK}s took only {elapsed:.3f}s"
    if side == "read":
        assert max(sizes) <= 2 * _RATE, max(sizes)
    assert rec.events == []


@requires("rate_limits")
def test_rate_limited_read(bev_pair_factory: BevPairFactory) -> None:
    """A read rate limit slows the transfer to about ``rate`` bytes per tick; nothing is lost."""
    _rate_limited_transfer(bev_pair_factory, "read")


@requires("rate_limits")
def test_rate_limited_write(bev_pair_factory: BevPairFactory) -> None:
    """A write rate limit slows the transfer to about ``rate`` bytes per tick; nothing is lost."""
    _rate_limited_transfer(bev_pair_factory, "write")


@requires("rate_limits")
def test_rate_limit_removed(bev_pair_factory: BevPairFactory) -> None:
    """``set_rate_limit(None)`` lifts the limit: what was held back flows at once."""
    from ..ratelimit import RateLimit

    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.set_rate_limit(RateLimit(1024, 1024, _BIG, _BIG, tick=10.0))  # 1 KiB per 10 s
    before = b.get_read_limit()
    b.decrement_read_limit(100)
    assert b.get_read_limit() == before - 100
    w_before = b.get_write_limit()
    b.decrement_write_limit(10)
    assert b.get_write_limit() == w_before - 10
    b.enable(EV_READ)
    a.write(b"r" * 100_000)
    run_until(base, lambda: len(rec.data) > 0, what="the first bucket")
    run_for(base, 0.05)
    assert len(rec.data) <= 2048
    b.set_rate_limit(None)
    run_until(base, lambda: len(rec.data) >= 100_000, timeout=10.0, what="the rest after lifting the limit")
    assert bytes(rec.data) == b"r" * 100_000
