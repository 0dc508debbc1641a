"""Bufferevent conformance suite, part 3: lifecycle (free, callbacks, deferral, threads, enable, flush).

Every test takes the ``bev_pair_factory`` fixture (see
:mod:`evbuffer.testing.bev_suite_support`).
"""

from __future__ import annotations

import threading
import time

import pytest

from evcore import EV_READ, EV_WRITE, Event

from ..bufferevent import BEV_EVENT, BEV_OPT, Bufferevent, FlushMode
from ..errors import EvbufferError
from .bev_suite_support import (
    RW,
    BevPairFactory,
    Recorder,
    bottom_fd,
    clog,
    fd_is_open,
    requires,
    run_for,
    run_until,
)

__all__ = [
    "test_free_inside_readcb",
    "test_free_inside_writecb",
    "test_free_inside_eventcb",
    "test_free_peer_inside_readcb",
    "test_setcb_getcb",
    "test_defer_callbacks_from_loop",
    "test_defer_callbacks_coalesced",
    "test_setcb_none_cancels_pending_deferred",
    "test_unlock_callbacks",
    "test_threadsafe_write_from_thread",
    "test_threadsafe_both_directions",
    "test_threadsafe_free_from_thread",
    "test_idle_no_callbacks",
    "test_writecb_once_per_drain",
    "test_enable_disable_get_enabled",
    "test_disable_write_holds_output",
    "test_enable_after_free_raises",
    "test_flush",
    "test_free_closes_owned_fd",
    "test_free_idempotent",
    "test_context_manager",
    "test_repr_never_raises",
    "test_get_base_and_underlying",
]


#: Option sets the callback-freeing tests run with: immediate and deferred callbacks.
CALLBACK_MODES = (0, BEV_OPT.DEFER_CALLBACKS)


def test_free_inside_readcb(bev_pair_factory: BevPairFactory) -> None:
    """A read callback frees its own bufferevent: no error, no callback after, the peer sees EOF."""
    for options in CALLBACK_MODES:
        _free_inside_readcb_once(bev_pair_factory, options)


def _free_inside_readcb_once(bev_pair_factory: BevPairFactory, options: int) -> None:
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, options)
    rb = Recorder(b, on_read=lambda bev: bev.free())
    ra = Recorder(a)
    a.enable(EV_READ)
    b.enable(EV_READ)
    a.write(b"first")
    run_until(base, lambda: b.freed, what="b freed in its read callback")
    for _ in range(5):
        if a.freed:
            break
        a.write(b"more")
        run_for(base, 0.01)
    run_until(base, lambda: ra.events, what="EOF at a")
    assert ra.events[0] & BEV_EVENT.EOF or ra.events[0] & BEV_EVENT.ERROR, ra.events
    assert rb.reads == 1
    assert bytes(rb.data) == b"first"
    assert rb.violations == [] and ra.violations == []


def test_free_inside_writecb(bev_pair_factory: BevPairFactory) -> None:
    """A write callback frees its own bufferevent once the output drained; the peer gets all, then EOF."""
    for options in CALLBACK_MODES:
        _free_inside_writecb_once(bev_pair_factory, options)


def _free_inside_writecb_once(bev_pair_factory: BevPairFactory, options: int) -> None:
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, options)
    ra = Recorder(a, drain=False, on_write=lambda bev: bev.free())
    rb = Recorder(b)
    b.enable(EV_READ)
    a.write(b"goodbye" * 100)
    run_until(base, lambda: a.freed, what="a freed in its write callback")
    run_until(base, lambda: rb.events, what="EOF at b")
    assert bytes(rb.data) == b"goodbye" * 100
    assert rb.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    assert ra.writes == 1
    assert ra.violations == [] and rb.violations == []


def test_free_inside_eventcb(bev_pair_factory: BevPairFactory) -> None:
    """An event callback frees its own bufferevent at EOF: no error and no callback after."""
    for options in CALLBACK_MODES:
        _free_inside_eventcb_once(bev_pair_factory, options)


def _free_inside_eventcb_once(bev_pair_factory: BevPairFactory, options: int) -> None:
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, options)
    ra = Recorder(a, on_event=lambda bev, what: bev.free())
    a.enable(EV_READ)
    b.write(b"bye")
    run_for(base, 0.02)  # free() never flushes (see test_eof_after_pending_data)
    b.free()
    run_until(base, lambda: a.freed, what="a freed in its event callback")
    run_for(base, 0.05)
    assert len(ra.events) == 1
    assert bytes(ra.data) == b"bye"
    assert ra.violations == []


def test_free_peer_inside_readcb(bev_pair_factory: BevPairFactory) -> None:
    """A read callback frees the *other* end (a proxy closing both sides): nothing breaks."""
    for options in CALLBACK_MODES:
        _free_peer_inside_readcb_once(bev_pair_factory, options)


def _free_peer_inside_readcb_once(bev_pair_factory: BevPairFactory, options: int) -> None:
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, options)

    def close_both(bev: Bufferevent, a: Bufferevent = a) -> None:
        a.free()
        bev.free()

    rb = Recorder(b, on_read=close_both)
    ra = Recorder(a)
    a.enable(RW)
    b.enable(RW)
    b.write(b"pending the other way")
    a.write(b"trigger")
    run_until(base, lambda: a.freed and b.freed, what="both freed")
    run_for(base, 0.05)
    assert rb.reads == 1
    assert ra.violations == [] and rb.violations == []


def test_setcb_getcb(bev_pair_factory: BevPairFactory) -> None:
    """``setcb`` replaces all three callbacks and the argument; ``None`` removes them."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    r, w, e, arg = b.getcb()
    assert (r, w, e, arg) == (rec.readcb, rec.writecb, rec.eventcb, rec)
    b.setcb(None, None, None)
    assert b.getcb() == (None, None, None, None)
    b.enable(EV_READ)
    a.write(b"unseen by callbacks")
    run_until(base, lambda: len(b.input) >= 19)
    assert rec.reads == 0
    assert b.read() == b"unseen by callbacks"


def test_defer_callbacks_from_loop(bev_pair_factory: BevPairFactory) -> None:
    """With ``DEFER_CALLBACKS`` no callback runs inside ``write``/``enable``/``flush``/``setwatermark``."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.DEFER_CALLBACKS)
    assert a.options & BEV_OPT.DEFER_CALLBACKS
    ra = Recorder(a, drain=False)
    rb = Recorder(b)
    for rec in (ra, rb):
        with rec.api_call():
            rec.bev.enable(RW)
            rec.bev.setwatermark(EV_WRITE, 0, 0)
    with ra.api_call():
        a.write(b"deferred " * 10)
        a.flush(EV_WRITE, FlushMode.NORMAL)
    with rb.api_call():
        b.enable(EV_READ)
    assert ra.writes == 0 and rb.reads == 0
    run_until(base, lambda: len(rb.data) >= 90 and ra.writes, what="callbacks from the loop")
    assert bytes(rb.data) == b"deferred " * 10
    assert ra.violations == [] and rb.violations == []


def test_defer_callbacks_coalesced(bev_pair_factory: BevPairFactory) -> None:
    """With ``DEFER_CALLBACKS`` writes made in one callback reach the reader in one read callback."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.DEFER_CALLBACKS)
    rb = Recorder(b)
    b.enable(EV_READ)

    def burst(fd: int, what: int, arg: object) -> None:
        for i in range(5):
            a.write(b"part%d;" % i)

    timer = Event.timer(base, burst)
    timer.add(0)
    run_until(base, lambda: len(rb.data) >= 30, what="the burst")
    run_for(base, 0.05)
    timer.free()
    assert bytes(rb.data) == b"part0;part1;part2;part3;part4;"
    assert rb.reads == 1, rb.reads


def test_setcb_none_cancels_pending_deferred(bev_pair_factory: BevPairFactory) -> None:
    """Callbacks removed after their deferred run was queued are not called (and nothing breaks)."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.DEFER_CALLBACKS)
    ra = Recorder(a, drain=False)
    rb = Recorder(b, drain=False)
    b.enable(EV_READ)

    def clear() -> None:
        a.setcb(None, None, None)
        b.setcb(None, None, None)

    def burst(fd: int, what: int, arg: object) -> None:
        a.write(b"data for nobody")
        # deferred work runs FIFO: the data moves (queueing callbacks), then this clears them
        base.defer(clear)

    timer = Event.timer(base, burst)
    timer.add(0)
    run_until(base, lambda: len(b.input) >= 15, what="the data")
    run_for(base, 0.05)
    timer.free()
    assert (ra.writes, rb.reads) == (0, 0)
    assert b.read() == b"data for nobody"


def test_unlock_callbacks(bev_pair_factory: BevPairFactory) -> None:
    """``THREADSAFE|DEFER_CALLBACKS|UNLOCK_CALLBACKS``: callbacks run without the bufferevent's lock."""
    base = bev_pair_factory.base()
    opts = BEV_OPT.THREADSAFE | BEV_OPT.DEFER_CALLBACKS | BEV_OPT.UNLOCK_CALLBACKS
    a, b = bev_pair_factory(base, opts)
    held: list[bool] = []

    def probe(bev: Bufferevent) -> None:
        # another thread can take the lock while the callback runs
        ok: list[bool] = []

        def other() -> None:
            bev.lock()
            ok.append(True)
            bev.unlock()

        t = threading.Thread(target=other, daemon=True)
        t.start()
        t.join(2.0)
        held.append(bool(ok))

    rb = Recorder(b, on_read=probe)
    b.enable(EV_READ)
    a.write(b"unlocked")
    run_until(base, lambda: rb.reads, what="the read callback")
    assert held == [True]
    assert bytes(rb.data) == b"unlocked"


def test_threadsafe_write_from_thread(bev_pair_factory: BevPairFactory) -> None:
    """``THREADSAFE``: ``write()`` from another thread while the loop runs delivers everything in order."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.THREADSAFE)
    rb = Recorder(b)
    b.enable(EV_READ)
    msgs = [b"%06d|" % i for i in range(3000)]
    expected = b"".join(msgs)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i, m in enumerate(msgs):
                a.write(m)
                if i % 200 == 0:
                    time.sleep(0.001)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    try:
        run_until(base, lambda: len(rb.data) >= len(expected), timeout=30.0, what="data from the thread")
    finally:
        t.join(10.0)
    assert errors == []
    assert bytes(rb.data) == expected
    assert rb.violations == []


def test_threadsafe_both_directions(bev_pair_factory: BevPairFactory) -> None:
    """``THREADSAFE``: two threads write to the two ends at once; both streams arrive intact."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.THREADSAFE)
    ra = Recorder(a)
    rb = Recorder(b)
    a.enable(EV_READ)
    b.enable(EV_READ)
    streams = {id(a): [b"a%05d;" % i for i in range(2000)], id(b): [b"b%05d;" % i for i in range(2000)]}
    errors: list[BaseException] = []

    def writer(bev: Bufferevent) -> None:
        try:
            for i, m in enumerate(streams[id(bev)]):
                bev.write(m)
                if i % 100 == 0:
                    time.sleep(0.0005)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(bev,), daemon=True) for bev in (a, b)]
    for t in threads:
        t.start()
    ea, eb = b"".join(streams[id(a)]), b"".join(streams[id(b)])
    try:
        run_until(base, lambda: len(rb.data) >= len(ea) and len(ra.data) >= len(eb), timeout=30.0)
    finally:
        for t in threads:
            t.join(10.0)
    assert errors == []
    assert bytes(rb.data) == ea and bytes(ra.data) == eb


def test_threadsafe_free_from_thread(bev_pair_factory: BevPairFactory) -> None:
    """``THREADSAFE``: freeing one end from another thread while the loop runs; the other sees EOF."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base, BEV_OPT.THREADSAFE)
    ra = Recorder(a)
    rb = Recorder(b)
    a.enable(EV_READ)
    b.enable(EV_READ)

    def go() -> None:
        time.sleep(0.05)
        b.write(b"from the thread")
        time.sleep(0.05)
        b.free()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    try:
        run_until(base, lambda: ra.events, timeout=10.0, what="EOF after the thread freed b")
    finally:
        t.join(5.0)
    assert bytes(ra.data) == b"from the thread"
    assert ra.events == [BEV_EVENT.READING | BEV_EVENT.EOF]
    assert rb.violations == []


def test_idle_no_callbacks(bev_pair_factory: BevPairFactory) -> None:
    """Enabled both ways with nothing to do: no callback runs (no busy write callback)."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    ra, rb = Recorder(a), Recorder(b)
    a.enable(RW)
    b.enable(RW)
    run_for(base, 0.1)
    assert (ra.reads, ra.writes, ra.events, rb.reads, rb.writes, rb.events) == (0, 0, [], 0, 0, [])


def test_writecb_once_per_drain(bev_pair_factory: BevPairFactory) -> None:
    """A burst of small writes drains with few write callbacks, and none while idle afterwards."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    ra = Recorder(a, drain=False)
    rb = Recorder(b)
    b.enable(EV_READ)

    def burst(fd: int, what: int, arg: object) -> None:
        for i in range(20):
            a.write(b"%02d" % i)

    timer = Event.timer(base, burst)
    timer.add(0)
    run_until(base, lambda: len(rb.data) >= 40 and ra.writes, what="drained")
    run_for(base, 0.1)
    timer.free()
    assert 1 <= ra.writes <= 2, ra.writes
    assert len(a.output) == 0


def test_enable_disable_get_enabled(bev_pair_factory: BevPairFactory) -> None:
    """A new bufferevent writes but does not read; ``enable``/``disable`` switch directions."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    assert b.get_enabled() == EV_WRITE
    b.enable(EV_READ)
    assert b.get_enabled() == RW
    b.disable(EV_READ)
    assert b.get_enabled() == EV_WRITE
    rec = Recorder(b)
    a.write(b"held back")
    run_for(base, 0.1)
    assert rec.reads == 0 and len(rec.data) == 0
    b.enable(EV_READ)
    run_until(base, lambda: len(rec.data) >= 9, what="data after enable")
    assert bytes(rec.data) == b"held back"
    b.disable(RW)
    assert b.get_enabled() == 0
    b.enable(RW)
    b.enable(RW)
    assert b.get_enabled() == RW


def test_disable_write_holds_output(bev_pair_factory: BevPairFactory) -> None:
    """With writing disabled ``write()`` keeps data in the output; enabling sends it."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    rec = Recorder(b)
    b.enable(EV_READ)
    a.disable(EV_WRITE)
    a.write(b"wait for it")
    run_for(base, 0.1)
    assert rec.data == b""
    assert len(a.output) == 11
    a.enable(EV_WRITE)
    run_until(base, lambda: len(rec.data) >= 11, what="data after enabling writes")
    assert bytes(rec.data) == b"wait for it"


def test_enable_after_free_raises(bev_pair_factory: BevPairFactory) -> None:
    """``enable`` on a freed bufferevent raises; ``disable`` and ``free`` are harmless."""
    base = bev_pair_factory.base()
    a, _b = bev_pair_factory(base)
    a.free()
    with pytest.raises(EvbufferError):
        a.enable(EV_READ)
    a.disable(EV_READ)
    a.free()


def test_flush(bev_pair_factory: BevPairFactory) -> None:
    """``flush`` returns what the kind promises: pairs and filters move data (1), sockets 0."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    assert a.flush(EV_WRITE, FlushMode.NORMAL) == 0
    assert a.flush(RW, FlushMode.FLUSH) in (0, 1)
    rec = Recorder(b)
    written = clog(base, a)
    before = len(a.output)
    rv = a.flush(EV_WRITE, FlushMode.FLUSH)
    if bev_pair_factory.flush_moves:
        assert rv == 1
        assert len(a.output) < before
    else:
        assert rv == 0
    b.enable(EV_READ)
    run_until(base, lambda: len(rec.data) >= written, timeout=30.0, what="everything")
    assert len(rec.data) == written
    assert rec.events == []


@requires("has_fd")
def test_free_closes_owned_fd(bev_pair_factory: BevPairFactory) -> None:
    """``free()`` closes an fd the bufferevent owns before it returns (not at garbage collection)."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    fd = bottom_fd(a)
    assert fd >= 0 and fd_is_open(fd)
    if a.fileno() >= 0:
        assert a.fileno() == a.getfd() == fd
    a.free()
    assert not fd_is_open(fd)
    assert a.fileno() == -1 or a.get_underlying() is not None


def test_free_idempotent(bev_pair_factory: BevPairFactory) -> None:
    """``free()`` twice is harmless; ``freed`` says so; the peer keeps working until it is freed."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    assert not a.freed
    a.free()
    a.free()
    assert a.freed
    b.write(b"to nobody")  # never refuses
    run_for(base, 0.02)
    b.free()
    assert b.freed


def test_context_manager(bev_pair_factory: BevPairFactory) -> None:
    """A bufferevent is a context manager that frees it on exit, also after an exception."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    with a as got:
        assert got is a
        assert not a.freed
    assert a.freed
    with pytest.raises(RuntimeError), b:
        raise RuntimeError("boom")
    assert b.freed


def test_repr_never_raises(bev_pair_factory: BevPairFactory) -> None:
    """``repr`` works in every state: fresh, with data queued, freed, after the base is gone."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    texts = [repr(a), repr(b)]
    a.disable(EV_WRITE)
    a.write(b"queued")
    b.enable(EV_READ)
    texts.append(repr(a))
    a.free()
    texts.append(repr(a))
    texts.append(repr(b))
    b.free()
    base.free()
    texts.append(repr(b))
    assert all(isinstance(t, str) and t for t in texts)
    assert type(a).__name__ in texts[0]


def test_get_base_and_underlying(bev_pair_factory: BevPairFactory) -> None:
    """``get_base`` is the base; ``get_underlying`` is a bufferevent or ``None``."""
    base = bev_pair_factory.base()
    a, b = bev_pair_factory(base)
    assert a.get_base() is base and b.get_base() is base
    u = a.get_underlying()
    assert u is None or isinstance(u, Bufferevent)
    assert a.options & BEV_OPT.THREADSAFE == 0
    a.lock()
    a.unlock()
