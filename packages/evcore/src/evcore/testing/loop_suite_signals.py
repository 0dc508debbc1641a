"""Loop conformance suite, part 4: signals (libevent's regress.c ``signal/`` group).

Signals are real: ``signal.raise_signal`` or ``setitimer``.  Each test runs in its
own forked process, so the handlers it installs die with it; even so every test
restores what it changed.  Signal events can only be added from the main thread
(Python's rule), which the suite checks too.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ..errors import EventError
from ..event import Event, event_self_cbarg
from ..flags import EV_PERSIST, EV_READ, EV_SIGNAL, EV_TIMEOUT, EV_WRITE, EVLOOP_NONBLOCK, EVLOOP_ONCE
from . import FakeClock
from .loop_suite_support import BaseFactory, open_fds, run

__all__ = [
    "test_signal_simple",
    "test_signal_readd_reordered",
    "test_signal_multiple",
    "test_signal_immediate",
    "test_signal_dealloc",
    "test_signal_pipeloss",
    "test_signal_switchbase",
    "test_signal_assert",
    "test_signal_restore",
    "test_signal_restore_after_free",
    "test_signal_while_processing",
    "test_signal_ncalls_coalescing",
    "test_signal_from_thread_refused",
    "test_signal_nonpersistent",
    "test_signal_switchbase_by_add",
    "test_signal_ncalls_accumulate_while_starved",
    "test_keyboard_interrupt_during_wait",
]


@contextmanager
def _handler(signum: int, fn: Any) -> Iterator[None]:
    old = signal.signal(signum, fn)
    try:
        yield
    finally:
        signal.signal(signum, old)


def _wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


def test_signal_simple(base_factory: BaseFactory) -> None:
    """``simplesignal``: a signal event fires when the process gets the signal (from ``setitimer``)."""
    base = base_factory()
    seen: list[tuple[int, int]] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        seen.append((fd, what))
        ev.delete()

    ev = Event.signal(base, signal.SIGALRM, cb, event_self_cbarg())
    ev.add()
    signal.setitimer(signal.ITIMER_REAL, 0.02)
    try:
        assert run(base, limit=10) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    assert seen == [(signal.SIGALRM, EV_SIGNAL)]


def test_signal_readd_reordered(base_factory: BaseFactory) -> None:
    """``simplesignal``'s reordering check: add, delete, add again, then the signal still arrives."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.signal(base, signal.SIGUSR1, lambda fd, what, arg: seen.append(what))
    ev.add()
    ev.delete()
    ev.add()
    signal.raise_signal(signal.SIGUSR1)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == [EV_SIGNAL]
    ev.delete()


def test_signal_multiple(base_factory: BaseFactory) -> None:
    """``multiplesignal``: two events on one signal both fire."""
    base = base_factory()
    seen: list[str] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        seen.append("one" if ev is one else "two")
        ev.delete()

    one = Event.signal(base, signal.SIGUSR1, cb, event_self_cbarg())
    two = Event.signal(base, signal.SIGUSR1, cb, event_self_cbarg())
    one.add()
    two.add()
    signal.raise_signal(signal.SIGUSR1)
    assert run(base, limit=10) == 1
    assert sorted(seen) == ["one", "two"]


def test_signal_immediate(base_factory: BaseFactory) -> None:
    """``immediatesignal``: a signal raised before the loop starts is delivered by a non-blocking loop."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.signal(base, signal.SIGUSR1, lambda fd, what, arg: seen.append(fd))
    ev.add()
    signal.raise_signal(signal.SIGUSR1)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == [signal.SIGUSR1]
    ev.delete()


def test_signal_dealloc(base_factory: BaseFactory) -> None:
    """``signal_dealloc``: add, delete, free the base: the handler and the wakeup fd are back as before."""
    before_handler = signal.getsignal(signal.SIGUSR1)
    before_wakeup = _wakeup_fd()
    base = base_factory()
    ev = Event.signal(base, signal.SIGUSR1, lambda *a: None)
    ev.add()
    assert signal.getsignal(signal.SIGUSR1) is not before_handler
    ev.delete()
    base.free()
    assert signal.getsignal(signal.SIGUSR1) == before_handler
    assert _wakeup_fd() == before_wakeup


def test_signal_pipeloss(base_factory: BaseFactory) -> None:
    """``signal_pipeloss``: freeing two bases that used signals closes every fd they opened."""
    before = open_fds()
    base1 = base_factory()
    Event.signal(base1, signal.SIGUSR1, lambda *a: None).add()
    base2 = base_factory()
    Event.signal(base2, signal.SIGUSR2, lambda *a: None).add()
    assert open_fds() - before  # each base opened some
    base2.free()
    base1.free()
    assert open_fds() - before == set()


def test_signal_switchbase(base_factory: BaseFactory) -> None:
    """``signal_switchbase``: one base at a time gets signals -- the last to add one, or to run its loop."""
    base1 = base_factory()
    base2 = base_factory()
    seen: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        seen.append(name)

    ev1 = Event.signal(base1, signal.SIGUSR1, cb, "base1")
    ev2 = Event.signal(base2, signal.SIGUSR1, cb, "base2")
    ev1.add()
    ev2.add()
    assert ev1.base is base1 and ev2.base is base2
    signal.raise_signal(signal.SIGUSR1)  # before any loop: base2 added last, so base2 gets it
    assert run(base2, EVLOOP_NONBLOCK) == 0
    assert seen == ["base2"]
    assert run(base1, EVLOOP_NONBLOCK) == 0  # base1 runs its loop: signals are base1's now
    assert seen == ["base2"]
    signal.raise_signal(signal.SIGUSR1)
    assert run(base1, EVLOOP_NONBLOCK) == 0
    assert run(base2, EVLOOP_NONBLOCK) == 0
    assert seen == ["base2", "base1"]
    ev1.delete()
    ev2.delete()


def test_signal_assert(base_factory: BaseFactory) -> None:
    """``signal_assert``: a signal raised after its event was deleted reaches nobody and breaks nothing."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.signal(base, signal.SIGCONT, lambda *a: seen.append(1))
    ev.add()
    ev.delete()
    signal.raise_signal(signal.SIGCONT)
    assert run(base, EVLOOP_NONBLOCK) == 1
    assert seen == []
    assert signal.getsignal(signal.SIGCONT) == signal.SIG_DFL


def test_signal_restore(base_factory: BaseFactory) -> None:
    """``signal_restore``: deleting the last event for a signal puts the previous Python handler back."""
    hits: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        hits.append(signum)

    with _handler(signal.SIGUSR1, mine):
        base = base_factory()
        seen: list[int] = []
        a = Event.signal(base, signal.SIGUSR1, lambda *x: seen.append(1))
        b = Event.signal(base, signal.SIGUSR1, lambda *x: seen.append(2))
        a.add()
        b.add()
        a.delete()
        assert signal.getsignal(signal.SIGUSR1) is not mine  # b still wants it
        b.delete()
        assert signal.getsignal(signal.SIGUSR1) is mine
        signal.raise_signal(signal.SIGUSR1)
        assert hits == [signal.SIGUSR1]
        assert run(base, EVLOOP_NONBLOCK) == 1
        assert seen == []


def test_signal_restore_after_free(base_factory: BaseFactory) -> None:
    """Freeing a base with signal events still added restores the handlers and wakeup fd at once."""
    hits: list[int] = []

    def mine(signum: int, frame: Any) -> None:
        hits.append(signum)

    before_wakeup = _wakeup_fd()
    with _handler(signal.SIGUSR1, mine):
        base = base_factory()
        Event.signal(base, signal.SIGUSR1, lambda *x: None).add()
        Event.signal(base, signal.SIGUSR2, lambda *x: None).add()
        assert signal.getsignal(signal.SIGUSR1) is not mine
        base.free()
        assert signal.getsignal(signal.SIGUSR1) is mine
        assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
        assert _wakeup_fd() == before_wakeup
        signal.raise_signal(signal.SIGUSR1)
        assert hits == [signal.SIGUSR1]


def test_signal_while_processing(base_factory: BaseFactory) -> None:
    """``signal_while_processing``: a signal arriving while its own callback runs is not lost."""
    base = base_factory(clock=FakeClock())
    state = {"called": 0}

    def sig_cb(fd: int, what: int, arg: Any) -> None:
        state["called"] += 1
        if state["called"] < 5:
            signal.raise_signal(signal.SIGUSR1)
        else:
            base.loopexit()

    def timer_cb(fd: int, what: int, arg: Any) -> None:
        signal.raise_signal(signal.SIGUSR1)

    ev = Event.signal(base, signal.SIGUSR1, sig_cb)
    ev.add()
    Event.timer(base, timer_cb).add(0)
    assert run(base, limit=10) == 0
    assert state["called"] == 5
    ev.delete()


def test_signal_ncalls_coalescing(base_factory: BaseFactory) -> None:
    """Signals caught between two passes coalesce into one callback whose ``ncalls`` counts them."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.signal(base, signal.SIGUSR1, lambda fd, what, e: seen.append(e.ncalls), event_self_cbarg())
    ev.add()
    for _ in range(3):
        signal.raise_signal(signal.SIGUSR1)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == [3]
    signal.raise_signal(signal.SIGUSR1)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert seen == [3, 1]
    ev.delete()


def test_signal_from_thread_refused(base_factory: BaseFactory) -> None:
    """Adding a signal event from a thread other than the main one raises ``EventError`` saying why."""
    base = base_factory()
    caught: list[BaseException] = []
    ev = Event.signal(base, signal.SIGUSR1, lambda *a: None)

    def worker() -> None:
        try:
            ev.add()
        except BaseException as exc:
            caught.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert len(caught) == 1 and isinstance(caught[0], EventError)
    assert "main thread" in str(caught[0])
    assert ev.pending() == 0
    assert base.num_events() == 0
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_nonpersistent(base_factory: BaseFactory) -> None:
    """A signal event without ``EV_PERSIST`` fires once, then is no longer pending."""
    base = base_factory()
    seen: list[int] = []
    ev = Event(base, signal.SIGUSR2, EV_SIGNAL, lambda fd, what, arg: seen.append(what))
    ev.add()
    assert ev.pending(EV_SIGNAL) == EV_SIGNAL
    signal.raise_signal(signal.SIGUSR2)
    assert run(base, limit=10) == 1
    assert seen == [EV_SIGNAL]
    assert ev.pending(EV_SIGNAL | EV_TIMEOUT) == 0
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    bad = Event(base, 0, EV_SIGNAL | EV_PERSIST, lambda *a: None)
    with pytest.raises(EventError):
        bad.add()  # no such signal
    assert bad.pending() == 0
    assert base.num_events() == 0


def test_signal_switchbase_by_add(base_factory: BaseFactory) -> None:
    """Adding a signal event (even for a signal it already watches) makes a base the owner again."""
    base1 = base_factory()
    base2 = base_factory()
    seen: list[str] = []
    ev1 = Event.signal(base1, signal.SIGUSR1, lambda fd, w, n: seen.append(n), "base1")
    ev2 = Event.signal(base2, signal.SIGUSR1, lambda fd, w, n: seen.append(n), "base2")
    ev1.add()
    ev2.add()
    ev3 = Event.signal(base1, signal.SIGUSR1, lambda fd, w, n: seen.append(n), "base1-again")
    ev3.add()  # base1 owns signals again
    signal.raise_signal(signal.SIGUSR1)
    assert run(base1, EVLOOP_NONBLOCK) == 0
    assert run(base2, EVLOOP_NONBLOCK) == 0
    assert sorted(seen) == ["base1", "base1-again"]
    for ev in (ev1, ev2, ev3):
        ev.delete()


def test_signal_ncalls_accumulate_while_starved(base_factory: BaseFactory) -> None:
    """A signal event kept waiting by more urgent events counts every delivery caught meanwhile."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    base.priority_init(2)
    ncalls: list[int] = []

    def sig_cb(fd: int, what: int, ev: Event) -> None:
        ncalls.append(ev.ncalls)
        ev.delete()

    sig = Event.signal(base, signal.SIGUSR1, sig_cb, event_self_cbarg())
    sig.priority_set(1)
    sig.add()
    passes = [0]

    def busy(fd: int, what: int, ev: Event) -> None:
        passes[0] += 1
        signal.raise_signal(signal.SIGUSR1)  # read by the next pass, while this queue keeps winning
        if passes[0] == 3:
            ev.delete()

    w = Event(base, a, EV_WRITE | EV_PERSIST, busy, event_self_cbarg())
    w.priority_set(0)
    w.add()
    assert run(base) == 1
    assert passes[0] == 3
    assert ncalls == [3]


def test_keyboard_interrupt_during_wait(base_factory: BaseFactory) -> None:
    """Ctrl-C (SIGINT, Python's default handler) while the loop sleeps: ``KeyboardInterrupt`` leaves
    ``loop()`` and the base is usable afterwards."""
    a, b = base_factory.socketpair()
    base = base_factory()
    seen: list[int] = []
    ev = Event(base, a, EV_READ | EV_PERSIST, lambda fd, what, arg: seen.append(what))
    ev.add()
    with _handler(signal.SIGINT, signal.default_int_handler):
        killer = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
        killer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run(base, limit=10)
        finally:
            killer.join()
    assert not base._running
    b.send(b"x")
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [EV_READ]
    ev.delete()
