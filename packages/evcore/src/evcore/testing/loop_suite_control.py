"""Loop conformance suite, part 3: loop control, activation and priorities.

Mirrors libevent 2.0's ``loopexit``, ``loopexit_multiple``, ``loopbreak``,
``priorities``, ``priority_active_inversion``, ``free_active_base``,
``manipulate_active_events`` and ``event_once``, plus the 2.1 additions DESIGN.md
adopts (``loopcontinue``, ``EVLOOP_NO_EXIT_ON_EMPTY``).
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import pytest

from ..errors import EventError
from ..event import Event, event_self_cbarg
from ..flags import (
    EV_PERSIST,
    EV_READ,
    EV_SIGNAL,
    EV_TIMEOUT,
    EV_WRITE,
    EVENT_BASE_COUNT_ACTIVE,
    EVLOOP_NO_EXIT_ON_EMPTY,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
)
from . import FakeClock
from .loop_suite_support import BaseFactory, run

__all__ = [
    "test_loop_returns_1_when_empty",
    "test_loopexit",
    "test_loopexit_lets_round_finish",
    "test_loopexit_multiple",
    "test_loopbreak",
    "test_loopbreak_from_thread",
    "test_loopexit_from_thread",
    "test_loopbreak_before_loop_is_forgotten",
    "test_loopcontinue",
    "test_loop_once",
    "test_loop_once_runs_until_nothing_active",
    "test_loop_nonblock",
    "test_loop_no_exit_on_empty",
    "test_once_variants",
    "test_priorities_1",
    "test_priorities_2",
    "test_priorities_3",
    "test_priority_only_most_urgent_queue",
    "test_priority_active_inversion",
    "test_activate_during_pass_same_queue",
    "test_priority_errors",
    "test_active",
    "test_active_flags_ored",
    "test_active_signal_ncalls",
    "test_free_active_base",
    "test_manipulate_active_events",
    "test_delete_active_event",
    "test_reactivate_deleted_active_event",
    "test_reactivate_deleted_active_event_other_priority",
    "test_active_then_fd_fires_ors_flags",
    "test_fd_fires_for_event_activated_earlier_in_pass",
    "test_fd_fires_for_event_deleted_and_readded_in_pass",
    "test_three_events_on_one_fd",
    "test_priority_init_from_callback",
    "test_priority_init_shrinking",
]


def _noop(fd: int, what: int, arg: Any) -> None:
    pass


def test_loop_returns_1_when_empty(base_factory: BaseFactory) -> None:
    """``loop`` returns 1 when nothing is pending, with any flags, and 0 after running events."""
    base = base_factory()
    assert run(base) == 1
    assert run(base, EVLOOP_ONCE) == 1
    assert run(base, EVLOOP_NONBLOCK) == 1
    assert base.dispatch() == 1
    ev = Event.timer(base, _noop)
    ev.active(EV_TIMEOUT)
    assert run(base, EVLOOP_NONBLOCK) == 1  # ran it, then found nothing left (libevent 2.0)
    ev.active(EV_TIMEOUT)
    assert run(base, EVLOOP_ONCE) == 0  # ONCE ends after the pass that ran it
    keep = Event.timer(base, _noop)
    keep.add(60)
    ev.active(EV_TIMEOUT)
    assert run(base, EVLOOP_NONBLOCK) == 0  # something still pending
    keep.delete()


def test_loopexit(base_factory: BaseFactory) -> None:
    """``loopexit``: ``loopexit(1)`` ends the loop after one second; a day-long timer stays pending."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    fired = []
    ev = Event.timer(base, lambda *a: fired.append(1))
    ev.add(24 * 3600)
    base.loopexit(1.0)
    assert run(base) == 0
    assert clock.monotonic() == 1.0
    assert base.got_exit() and not base.got_break()
    assert fired == []
    assert ev.pending(EV_TIMEOUT) == EV_TIMEOUT
    ev.delete()


def test_loopexit_lets_round_finish(base_factory: BaseFactory) -> None:
    """``loopexit()`` from a callback lets the other callbacks of the current round run."""
    base = base_factory()
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "a":
            base.loopexit()

    for name in "abc":
        Event.timer(base, cb, name).active(EV_TIMEOUT)
    keep = Event.timer(base, _noop)
    keep.add(3600)
    assert run(base) == 0
    assert ran == ["a", "b", "c"]
    assert base.got_exit()
    keep.delete()


def test_loopexit_multiple(base_factory: BaseFactory) -> None:
    """``loopexit_multiple``: two ``loopexit`` calls end the loop once, at the first; the second stays."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    base.loopexit(1.0)
    base.loopexit(2.0)
    assert run(base) == 0
    assert base.got_exit() and not base.got_break()
    assert clock.monotonic() == 1.0
    assert run(base) == 0  # the second exit is still pending
    assert clock.monotonic() == 2.0
    assert base.num_events() == 0


def test_loopbreak(base_factory: BaseFactory) -> None:
    """``loopbreak``: the loop stops after the current callback; the other active one runs next time."""
    base = base_factory(clock=FakeClock())
    ran: list[str] = []

    def brk(fd: int, what: int, arg: Any) -> None:
        ran.append("break")
        base.loopbreak()

    ev1 = Event.timer(base, brk)
    ev2 = Event.timer(base, lambda *a: ran.append("second"))
    ev1.add(0)
    ev2.add(0)
    assert run(base) == 0
    assert base.got_break() and not base.got_exit()
    assert ran == ["break"]
    assert ev2.pending(EV_TIMEOUT) == EV_TIMEOUT  # still active
    assert run(base) == 1
    assert ran == ["break", "second"]
    assert not base.got_break()


def test_loopbreak_from_thread(base_factory: BaseFactory) -> None:
    """``loopbreak`` from another thread wakes a loop sleeping with nothing to do."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    idle = Event(base, a, EV_READ | EV_PERSIST, _noop)  # never fires
    idle.add()
    timer = Event.timer(base, _noop)
    timer.add(3600)

    def breaker() -> None:
        time.sleep(0.05)
        base.loopbreak()

    t = threading.Thread(target=breaker)
    t0 = time.monotonic()
    t.start()
    try:
        assert run(base, limit=10) == 0
    finally:
        t.join()
    assert time.monotonic() - t0 < 5
    assert base.got_break()
    idle.delete()
    timer.delete()


def test_loopcontinue(base_factory: BaseFactory) -> None:
    """``loopcontinue``: the current queue stops after this callback; the loop polls again first."""
    a, b = base_factory.socketpair()
    base = base_factory()
    base.priority_init(2)
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "A":
            a.send(b"x")  # makes X (more urgent) ready; only a new poll sees it
            base.loopcontinue()

    x = Event(base, b, EV_READ, lambda fd, what, arg: ran.append("X"))
    x.priority_set(0)
    x.add()
    for name in "ABC":
        ev = Event.timer(base, cb, name)
        ev.priority_set(1)
        ev.active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == ["A", "X", "B", "C"]


def test_loop_once(base_factory: BaseFactory) -> None:
    """``EVLOOP_ONCE`` blocks until something is active, runs it, and returns 0."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    ran: list[str] = []
    t1 = Event.timer(base, lambda *a: ran.append("1"))
    t2 = Event.timer(base, lambda *a: ran.append("2"))
    t1.add(1.0)
    t2.add(2.0)
    assert run(base, EVLOOP_ONCE) == 0
    assert ran == ["1"] and clock.monotonic() == 1.0
    assert run(base, EVLOOP_ONCE) == 0
    assert ran == ["1", "2"]
    assert run(base, EVLOOP_ONCE) == 1


def test_loop_once_runs_until_nothing_active(base_factory: BaseFactory) -> None:
    """``EVLOOP_ONCE`` keeps running passes while callbacks leave events active (libevent 2.0)."""
    base = base_factory()
    base.priority_init(2)
    ran: list[str] = []
    low = Event.timer(base, lambda *a: ran.append("low"))
    low.priority_set(1)

    def high_cb(fd: int, what: int, arg: Any) -> None:
        ran.append("high")
        low.active(EV_TIMEOUT)

    high = Event.timer(base, high_cb)
    high.priority_set(0)
    high.active(EV_TIMEOUT)
    keep = Event.timer(base, _noop)
    keep.add(3600)
    assert run(base, EVLOOP_ONCE) == 0
    assert ran == ["high", "low"]
    keep.delete()


def test_loop_nonblock(base_factory: BaseFactory) -> None:
    """``EVLOOP_NONBLOCK`` never waits, runs what is ready, and keeps looping while events are active."""
    a, b = base_factory.socketpair()
    base = base_factory()
    ran: list[str] = []
    idle = Event(base, a, EV_READ, lambda *a: ran.append("idle"))
    idle.add()
    later = Event.timer(base, lambda *a: ran.append("later"))
    later.add(3600)
    t0 = time.monotonic()
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert time.monotonic() - t0 < 2
    assert ran == []
    second = Event.timer(base, lambda *a: ran.append("second"))

    def first(fd: int, what: int, arg: Any) -> None:
        ran.append("first")
        second.active(EV_TIMEOUT)

    Event.timer(base, first).active(EV_TIMEOUT)
    b.send(b"x")
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert sorted(ran) == ["first", "idle", "second"]
    later.delete()
    assert base.num_events() == 0


def test_loop_no_exit_on_empty(base_factory: BaseFactory) -> None:
    """``EVLOOP_NO_EXIT_ON_EMPTY`` keeps an empty loop running until ``loopbreak``; returns 0."""
    base = base_factory()
    assert run(base, EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY) == 0
    ran: list[str] = []

    def feeder() -> None:
        time.sleep(0.05)
        Event.timer(base, lambda *a: ran.append("timer")).active(EV_TIMEOUT)
        time.sleep(0.05)
        base.loopbreak()

    t = threading.Thread(target=feeder)
    t.start()
    try:
        assert run(base, EVLOOP_NO_EXIT_ON_EMPTY, limit=10) == 0
    finally:
        t.join()
    assert ran == ["timer"]
    assert base.got_break()


def test_once_variants(base_factory: BaseFactory) -> None:
    """``once`` with neither fd nor timeout runs next pass; EV_SIGNAL and EV_PERSIST are refused."""
    base = base_factory(clock=FakeClock(autojump=True))
    ran: list[tuple[str, int]] = []
    base.once(-1, 0, lambda fd, what, arg: ran.append((arg, what)), "now")
    base.once(None, EV_TIMEOUT, lambda fd, what, arg: ran.append((arg, what)), "timeout-none")
    assert base.num_events() == 2
    with pytest.raises(EventError):
        base.once(-1, EV_SIGNAL, _noop, None)
    with pytest.raises(EventError):
        base.once(-1, EV_TIMEOUT | EV_PERSIST, _noop, None, 1.0)
    assert base.num_events() == 2
    assert run(base) == 1
    assert sorted(ran) == [("now", EV_TIMEOUT), ("timeout-none", EV_TIMEOUT)]
    assert base.num_events() == 0


def _priorities(base_factory: BaseFactory, npri: int) -> tuple[int, int]:
    base = base_factory(clock=FakeClock())
    base.priority_init(npri)
    assert base.npriorities == npri
    counts = {"one": 0, "two": 0}
    evs: dict[str, Event] = {}

    def cb(fd: int, what: int, name: str) -> None:
        if counts[name] == 3:
            base.loopexit()
            return
        counts[name] += 1
        evs[name].add(0)

    evs["one"] = Event.timer(base, cb, "one")
    evs["one"].priority_set(0)
    evs["two"] = Event.timer(base, cb, "two")
    evs["two"].priority_set(npri - 1)
    evs["one"].add(0)
    evs["two"].add(0)
    assert run(base) == 0
    for ev in evs.values():
        ev.delete()
    return counts["one"], counts["two"]


def test_priorities_1(base_factory: BaseFactory) -> None:
    """``priorities`` with one queue: both events run round-robin."""
    assert _priorities(base_factory, 1) == (3, 3)


def test_priorities_2(base_factory: BaseFactory) -> None:
    """``priorities`` with two queues: the urgent event starves the other.

    The loopexit event sits in queue 1, so the other event runs once beside it.
    """
    assert _priorities(base_factory, 2) == (3, 1)


def test_priorities_3(base_factory: BaseFactory) -> None:
    """``priorities`` with three queues: the least urgent event never runs."""
    assert _priorities(base_factory, 3) == (3, 0)


def test_priority_only_most_urgent_queue(base_factory: BaseFactory) -> None:
    """Lower numbers run first, and a pass runs only the most urgent non-empty queue."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    base.priority_init(3)
    ran: list[str] = []

    def w_cb(fd: int, what: int, ev: Event) -> None:
        ran.append("W")
        if ran.count("W") == 3:
            ev.delete()

    w = Event(base, a, EV_WRITE | EV_PERSIST, w_cb)  # always ready: one run per pass
    w.arg = w
    w.priority_set(0)
    low = Event.timer(base, lambda *x: ran.append("low"))
    low.priority_set(2)
    mid = Event.timer(base, lambda *x: ran.append("mid"))
    mid.priority_set(1)
    low.active(EV_TIMEOUT)
    mid.active(EV_TIMEOUT)
    w.add()
    assert run(base) == 1
    assert ran == ["W", "W", "W", "mid", "low"]


def test_priority_active_inversion(base_factory: BaseFactory) -> None:
    """``priority_active_inversion``: an event activated at a more urgent priority runs before the rest."""
    base = base_factory()
    base.priority_init(8)
    order: list[int] = []
    evs: list[Event] = []

    def cb(fd: int, what: int, i: int) -> None:
        order.append(i)
        if len(order) == 1:
            evs[1].active(EV_READ)  # same priority as us: after the urgent one
            evs[2].active(EV_TIMEOUT)  # more urgent: next
    for i in range(3):
        evs.append(Event(base, -1, 0, cb, i))
    evs[0].priority_set(4)
    evs[1].priority_set(4)
    evs[2].priority_set(0)
    evs[0].active(EV_WRITE)
    assert run(base) == 1
    assert order == [0, 2, 1]


def test_activate_during_pass_same_queue(base_factory: BaseFactory) -> None:
    """An event activated during a pass in the queue being run runs in that same pass (before a new poll)."""
    a, b = base_factory.socketpair()
    base = base_factory()
    base.priority_init(2)
    ran: list[str] = []
    c = Event.timer(base, lambda *x: ran.append("C"))
    c.priority_set(1)

    def a_cb(fd: int, what: int, arg: Any) -> None:
        ran.append("A")
        a.send(b"x")  # X (more urgent) becomes ready, but only a new poll can see it
        c.active(EV_TIMEOUT)

    x = Event(base, b, EV_READ, lambda *x: ran.append("X"))
    x.priority_set(0)
    x.add()
    first = Event.timer(base, a_cb)
    first.priority_set(1)
    first.active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == ["A", "C", "X"]


def test_priority_errors(base_factory: BaseFactory) -> None:
    """Out-of-range priorities are refused; ``priority_init``/``priority_set`` are refused while active."""
    base = base_factory()
    with pytest.raises(ValueError):
        base.priority_init(0)
    base.priority_init(4)
    ev = Event.timer(base, _noop)
    assert ev.priority == 2  # the middle queue by default
    with pytest.raises(ValueError):
        ev.priority_set(4)
    with pytest.raises(ValueError):
        ev.priority_set(-1)
    ev.priority_set(3)
    assert ev.priority == 3
    ev.active(EV_TIMEOUT)
    with pytest.raises(EventError):
        ev.priority_set(1)
    with pytest.raises(EventError):
        base.priority_init(2)
    assert run(base) == 1
    base.priority_init(2)
    assert base.npriorities == 2


def test_active(base_factory: BaseFactory) -> None:
    """``active(what)`` on an event that is not pending runs its callback once with ``what``."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    seen: list[tuple[int, int]] = []
    ev = Event(base, a, EV_READ, lambda fd, what, arg: seen.append((fd, what)))
    ev.active(EV_WRITE)
    assert ev.pending(EV_WRITE) == EV_WRITE
    assert run(base) == 1
    assert seen == [(a.fileno(), EV_WRITE)]
    assert ev.pending() == 0


def test_active_flags_ored(base_factory: BaseFactory) -> None:
    """Repeated ``active`` calls before the callback runs OR their flags into one call."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.timer(base, lambda fd, what, arg: seen.append(what))
    ev.active(EV_READ)
    ev.active(EV_WRITE)
    ev.active(EV_READ)
    assert run(base) == 1
    assert seen == [EV_READ | EV_WRITE]


def test_active_signal_ncalls(base_factory: BaseFactory) -> None:
    """``active(EV_SIGNAL, ncalls)`` on a signal event hands ``ncalls`` to the callback (``ev.ncalls``)."""
    base = base_factory()
    seen: list[tuple[int, int, int]] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        seen.append((fd, what, ev.ncalls))

    ev = Event(base, signal.SIGUSR2, EV_SIGNAL, cb, event_self_cbarg())
    ev.active(EV_SIGNAL, 3)
    assert run(base) == 1
    assert seen == [(signal.SIGUSR2, EV_SIGNAL, 3)]
    other = Event.timer(base, cb, event_self_cbarg())
    other.active(EV_TIMEOUT, 5)  # ncalls only matters for signals
    assert run(base) == 1
    assert seen[-1] == (-1, EV_TIMEOUT, 0)


def test_free_active_base(base_factory: BaseFactory) -> None:
    """``free_active_base``: freeing a base with an added or an active event is safe; callbacks never run."""
    _a, b = base_factory.socketpair()
    ran = []
    base1 = base_factory()
    ev1 = Event(base1, b, EV_READ, lambda *x: ran.append(1))
    ev1.add()
    base1.free()
    assert ev1.pending() == 0
    base2 = base_factory()
    ev2 = Event(base2, 0, 0, lambda *x: ran.append(2))
    ev2.active(EV_READ)
    base2.free()
    assert ev2.pending() == 0
    assert ran == []
    base2.free()  # idempotent
    with pytest.raises(EventError):
        ev2.add()
    with pytest.raises(EventError):
        base2.loop()


def test_manipulate_active_events(base_factory: BaseFactory) -> None:
    """``manipulate_active_events``: an active event is pending for its flags; activating twice ORs them."""
    base = base_factory()
    ran = []
    ev = Event(base, -1, EV_TIMEOUT, lambda *x: ran.append(1))
    ev.active(EV_READ)
    assert ev.pending(EV_READ | EV_TIMEOUT | EV_WRITE) == EV_READ
    ev.active(EV_WRITE)
    assert ev.pending(EV_READ | EV_TIMEOUT | EV_WRITE) == EV_READ | EV_WRITE
    assert base.num_events(EVENT_BASE_COUNT_ACTIVE) == 1
    ev.delete()
    assert ev.pending(EV_READ | EV_TIMEOUT | EV_WRITE) == 0
    assert base.num_events() == 0
    assert run(base) == 1
    assert ran == []


def test_delete_active_event(base_factory: BaseFactory) -> None:
    """Deleting an active event, even from another callback of the same pass: its callback does not run."""
    a, b = base_factory.socketpair()
    base = base_factory()
    base.priority_init(2)
    ran: list[str] = []
    victim = Event(base, a, EV_WRITE, lambda *x: ran.append("victim"))
    victim.priority_set(1)

    def killer(fd: int, what: int, arg: Any) -> None:
        ran.append("killer")
        victim.delete()

    k = Event.timer(base, killer)
    k.priority_set(1)
    k.active(EV_TIMEOUT)
    victim.active(EV_WRITE)
    assert run(base) == 1
    assert ran == ["killer"]
    # an fd event that fired, then was deleted by a more urgent callback before its turn
    ran.clear()
    victim.add()
    urgent = Event(base, b, EV_WRITE, killer)
    urgent.priority_set(0)
    urgent.add()
    assert run(base) == 1
    assert ran == ["killer"]
    # deleted before the loop even started
    victim.active(EV_WRITE)
    victim.delete()
    assert run(base) == 1
    assert ran == ["killer"]


def test_reactivate_deleted_active_event(base_factory: BaseFactory) -> None:
    """An active event deleted and activated again runs once, with only the new flags."""
    base = base_factory()
    seen: list[int] = []
    ev = Event.timer(base, lambda fd, what, arg: seen.append(what))
    ev.active(EV_READ)
    ev.delete()
    ev.active(EV_WRITE)
    assert base.num_events(EVENT_BASE_COUNT_ACTIVE) == 1
    assert run(base) == 1
    assert seen == [EV_WRITE]


def test_reactivate_deleted_active_event_other_priority(base_factory: BaseFactory) -> None:
    """The same, for an event in a queue other than the first one."""
    base = base_factory()
    base.priority_init(3)
    seen: list[int] = []
    ev = Event.timer(base, lambda fd, what, arg: seen.append(what))
    ev.priority_set(2)
    ev.active(EV_READ)
    ev.delete()
    ev.active(EV_WRITE)
    ev.delete()
    ev.active(EV_TIMEOUT)
    assert run(base) == 1
    assert seen == [EV_TIMEOUT]


def test_active_then_fd_fires_ors_flags(base_factory: BaseFactory) -> None:
    """An event activated by hand whose fd then fires in the same pass runs once with both flags."""
    a, b = base_factory.socketpair()
    base = base_factory()
    seen: list[int] = []
    ev = Event(base, a, EV_READ | EV_PERSIST, lambda fd, what, arg: seen.append(what))
    ev.add()
    b.send(b"x")
    ev.active(EV_WRITE)
    assert run(base, EVLOOP_ONCE) == 0
    assert seen == [EV_READ | EV_WRITE]
    ev.delete()


def _two_ready(base_factory: BaseFactory, base: Any, cb: Any) -> list[Event]:
    evs: list[Event] = []
    for i in range(2):
        a, b = base_factory.socketpair()
        b.send(b"x")
        evs.append(Event(base, a, EV_READ, cb, i))
    for ev in evs:
        ev.add()
    return evs


def test_fd_fires_for_event_activated_earlier_in_pass(base_factory: BaseFactory) -> None:
    """Two fds fire together; the first callback activates the other event: it runs once, flags OR'd."""
    base = base_factory()
    seen: list[tuple[int, int]] = []

    def cb(fd: int, what: int, i: int) -> None:
        seen.append((i, what))
        if len(seen) == 1:
            evs[1 - i].active(EV_WRITE)

    evs = _two_ready(base_factory, base, cb)
    assert run(base) == 1
    assert len(seen) == 2
    assert seen[0][1] == EV_READ and seen[1][1] == EV_READ | EV_WRITE


def test_fd_fires_for_event_deleted_and_readded_in_pass(base_factory: BaseFactory) -> None:
    """Two fds fire together; the first callback activates, deletes and re-adds the other.

    The other then runs once, with ``EV_READ`` only (the manual activation was deleted).
    """
    base = base_factory()
    seen: list[tuple[int, int]] = []

    def cb(fd: int, what: int, i: int) -> None:
        seen.append((i, what))
        if len(seen) == 1:
            other = evs[1 - i]
            other.active(EV_WRITE)
            other.delete()  # the manual activation is cancelled
            other.add()

    evs = _two_ready(base_factory, base, cb)
    assert run(base, EVLOOP_ONCE) == 0
    assert [w for _, w in seen] == [EV_READ, EV_READ]
    assert sorted(i for i, _ in seen) == [0, 1]
    base.free()


def test_three_events_on_one_fd(base_factory: BaseFactory) -> None:
    """Three events on one fd; deleting them one at a time leaves the rest working."""
    a, b = base_factory.socketpair()
    base = base_factory()
    seen: list[str] = []
    evs = {name: Event(base, a, EV_READ | EV_PERSIST, lambda fd, what, n: seen.append(n), name)
           for name in ("x", "y", "z")}
    for ev in evs.values():
        ev.add()
    b.send(b"!")
    for gone in ("y", "x", "z"):
        seen.clear()
        assert run(base, EVLOOP_ONCE) == 0
        assert sorted(seen) == sorted(evs)
        evs.pop(gone).delete()
    assert base.num_events() == 0


def test_priority_init_from_callback(base_factory: BaseFactory) -> None:
    """``priority_init`` called by the last active callback of a pass takes effect in the running loop."""
    base = base_factory()
    ran: list[str] = []
    late = Event.timer(base, lambda *x: ran.append("late"))

    def first(fd: int, what: int, arg: Any) -> None:
        ran.append("first")
        base.priority_init(3)
        late.priority_set(2)
        late.active(EV_TIMEOUT)

    Event.timer(base, first).active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == ["first", "late"]
    assert base.npriorities == 3


def test_priority_init_shrinking(base_factory: BaseFactory) -> None:
    """Fewer queues than an existing event's priority: refused, or the event still runs (never a crash)."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    base.priority_init(4)
    ran: list[str] = []
    idle = Event.timer(base, lambda fd, what, arg: ran.append("idle"))  # assigned only
    pending = Event.timer(base, lambda fd, what, arg: ran.append("pending"))  # added before
    later = Event.timer(base, lambda fd, what, arg: ran.append("later"))  # added after
    for ev in (idle, pending, later):
        ev.priority_set(3)
    pending.add(1.0)
    try:
        base.priority_init(2)
    except EventError:  # pragma: no cover - refusing is one of the two right answers
        assert base.npriorities == 4
    later.add(2.0)
    idle.active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == ["idle", "pending", "later"]
    assert all(ev.pending() == 0 for ev in (idle, pending, later))


def test_loopexit_from_thread(base_factory: BaseFactory) -> None:
    """``loopexit()`` from another thread wakes a sleeping loop, which ends with ``got_exit()``."""
    a, b = base_factory.socketpair()
    base = base_factory()
    idle = Event(base, a, EV_READ | EV_PERSIST, _noop)
    idle.add()
    t = threading.Timer(0.05, base.loopexit)
    t0 = time.monotonic()
    t.start()
    try:
        assert run(base, limit=10) == 0
    finally:
        t.join()
    assert time.monotonic() - t0 < 5
    assert base.got_exit() and not base.got_break()
    idle.delete()


def test_loopbreak_before_loop_is_forgotten(base_factory: BaseFactory) -> None:
    """A ``loopbreak()`` while no loop runs does not stop the next loop (libevent resets it at loop start)."""
    base = base_factory()
    ran: list[int] = []
    base.loopbreak()
    Event.timer(base, lambda *x: ran.append(1)).active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == [1] and not base.got_break()
