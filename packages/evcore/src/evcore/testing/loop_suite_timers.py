"""Loop conformance suite, part 2: timers on a fake clock (libevent's timeout tests and ``test-time``).

No test here sleeps: the bases run on :class:`evcore.testing.FakeClock`, either
advanced by hand (``loop(EVLOOP_NONBLOCK)`` between steps) or with ``autojump``,
which moves the clock straight to the next deadline.
"""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from ..errors import EventError
from ..event import Event
from ..flags import EV_PERSIST, EV_READ, EV_TIMEOUT, EVLOOP_NONBLOCK, EVLOOP_ONCE, BaseFlag
from ..timers import CommonTimeout
from . import FakeClock
from .loop_suite_support import BaseFactory, run

__all__ = [
    "test_simpletimeout_manual_clock",
    "test_simpletimeout_autojump",
    "test_persistent_timeout",
    "test_persistent_timeout_jump",
    "test_persistent_active_timeout",
    "test_persistent_timeout_rescheduled_on_fd_activity",
    "test_common_timeout",
    "test_common_timeout_mixed_with_heap",
    "test_common_timeout_errors",
    "test_common_timeout_persistent_reinsert_order",
    "test_random_timers_fire_in_order",
    "test_add_reschedules_timeout",
    "test_add_without_timeout_keeps_timeout",
    "test_remove_timer",
    "test_deadline",
    "test_timer_zero_runs_next_pass",
    "test_invalid_timeouts",
    "test_gettimeofday_cached",
    "test_no_cache_time",
    "test_timer_deleted_from_callback_of_earlier_timer",
]


def test_simpletimeout_manual_clock(base_factory: BaseFactory) -> None:
    """``simpletimeout``: a one-shot timer fires after its delay, never before (clock moved by hand)."""
    clock = FakeClock(start=100.0)
    base = base_factory(clock=clock)
    fired: list[tuple[int, float]] = []
    ev = Event.timer(base, lambda fd, what, arg: fired.append((what, clock.monotonic())))
    ev.add(1.0)
    assert run(base, EVLOOP_NONBLOCK) == 0
    clock.advance(0.999)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert fired == []
    clock.advance(0.001)
    assert run(base, EVLOOP_NONBLOCK) == 1  # the last event ran: nothing left (libevent)
    assert fired == [(EV_TIMEOUT, 101.0)]
    assert ev.pending(EV_TIMEOUT) == 0
    assert run(base, EVLOOP_NONBLOCK) == 1


def test_simpletimeout_autojump(base_factory: BaseFactory) -> None:
    """With ``autojump`` the loop jumps the clock to each deadline and runs timers in order."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    fired: list[tuple[str, float]] = []
    for name, delay in (("b", 2.0), ("a", 1.0), ("c", 3600.0)):
        Event.timer(base, lambda fd, what, n: fired.append((n, clock.monotonic())), name).add(delay)
    assert run(base) == 1
    assert fired == [("a", 1.0), ("b", 2.0), ("c", 3600.0)]


def test_persistent_timeout(base_factory: BaseFactory) -> None:
    """``persistent_timeout``: a persistent timer fires at every period, counted from its schedule."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    times: list[float] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        assert what == EV_TIMEOUT
        times.append(clock.monotonic())
        if len(times) == 6:
            base.loopexit()

    ev = Event(base, -1, EV_TIMEOUT | EV_PERSIST, cb)
    ev.add(0.01)
    assert run(base) == 0
    assert times == pytest.approx([0.01 * i for i in range(1, 7)])
    assert ev.pending(EV_TIMEOUT) == EV_TIMEOUT
    assert ev.deadline() == pytest.approx(0.07)
    ev.delete()


def test_persistent_timeout_jump(base_factory: BaseFactory) -> None:
    """``persistent_timeout_jump``: after the clock jumps ahead a persistent timer fires once."""
    clock = FakeClock()
    base = base_factory(clock=clock)
    count = []
    ev = Event(base, -1, EV_PERSIST, lambda fd, what, arg: count.append(clock.monotonic()))
    ev.add(0.1)
    clock.advance(1.0)  # the process "slept" for ten periods
    clock.autojump = True
    base.loopexit(0.05)
    assert run(base) == 0
    assert count == [1.0]
    ev.delete()


def test_persistent_active_timeout(base_factory: BaseFactory) -> None:
    """``persistent_active_timeout``: activating a persistent timer by hand restarts its period."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    calls: list[tuple[int, float]] = []
    ev = Event(base, -1, EV_TIMEOUT | EV_PERSIST,
               lambda fd, what, arg: calls.append((what, clock.monotonic())))
    ev.add(0.2)
    base.once(-1, EV_TIMEOUT, lambda fd, what, arg: ev.active(EV_READ), None, 0.1)
    base.loopexit(0.6)
    assert run(base) == 0
    assert [w for w, _ in calls] == [EV_READ, EV_TIMEOUT, EV_TIMEOUT]
    assert [t for _, t in calls] == pytest.approx([0.1, 0.3, 0.5])
    ev.delete()


def test_persistent_timeout_rescheduled_on_fd_activity(base_factory: BaseFactory) -> None:
    """A persistent fd event with a timeout restarts the timeout each time the fd fires (an idle timeout)."""
    a, b = base_factory.socketpair()
    clock = FakeClock()
    base = base_factory(clock=clock)
    calls: list[tuple[int, float]] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        calls.append((what, clock.monotonic()))
        if what & EV_READ:
            b.recv(100)

    ev = Event(base, b, EV_READ | EV_PERSIST, cb)
    ev.add(1.0)
    for _ in range(3):
        clock.advance(0.6)
        a.send(b"x")
        assert run(base, EVLOOP_ONCE) == 0
    assert [w for w, _ in calls] == [EV_READ] * 3
    assert ev.deadline() == pytest.approx(2.8)
    clock.advance(0.999)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert len(calls) == 3
    clock.advance(0.001)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert calls[-1][0] == EV_TIMEOUT and calls[-1][1] == pytest.approx(2.8)
    assert ev.pending(EV_READ | EV_TIMEOUT) == EV_READ | EV_TIMEOUT
    ev.delete()


def test_common_timeout(base_factory: BaseFactory) -> None:
    """``common_timeout``: 100 persistent events on two common timeouts each fire six times, in order."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    ms100 = base.init_common_timeout(0.1)
    ms200 = base.init_common_timeout(0.2)
    assert base.init_common_timeout(0.2) is ms200
    assert isinstance(ms100, CommonTimeout) and ms100 is not ms200
    counts = [0] * 100
    called_at = [0.0] * 100
    order: list[int] = []
    evs: list[Event] = []

    def cb(fd: int, what: int, i: int) -> None:
        assert what == EV_TIMEOUT
        counts[i] += 1
        called_at[i] = clock.monotonic()
        order.append(i)
        if counts[i] >= 6:
            evs[i].delete()

    for i in range(100):
        ev = Event(base, -1, EV_TIMEOUT | EV_PERSIST, cb, i)
        evs.append(ev)
        ev.add(ms100 if i % 2 else ms200)
        assert ev.deadline() == pytest.approx(0.1 if i % 2 else 0.2)
    assert run(base) == 1
    now = clock.monotonic()
    assert now == pytest.approx(1.2)
    assert counts == [6] * 100
    for i in range(100):
        assert called_at[i] == pytest.approx(0.6 if i % 2 else 1.2)
    # within one deadline, events fire in the order they were added
    first = order[:50]
    assert first == list(range(1, 100, 2))
    # the base can be freed with events still in it
    for i in range(100):
        evs[i].add(ms100 if i % 2 else ms200)
    assert base.num_events() == 100
    base.free()
    assert all(ev.pending(EV_TIMEOUT) == 0 for ev in evs)


def test_common_timeout_mixed_with_heap(base_factory: BaseFactory) -> None:
    """Common timeouts and ordinary ones fire in deadline order together; reset moves an event's slot."""
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    ct = base.init_common_timeout(0.2)
    fired: list[tuple[str, float]] = []

    def mk(name: str) -> Event:
        return Event.timer(base, lambda fd, what, n: fired.append((n, clock.monotonic())), name)

    mk("heap-0.1").add(0.1)
    c1 = mk("common-1")
    c1.add(ct)
    mk("heap-0.15").add(0.15)
    mk("common-2").add(ct)
    mk("heap-0.25").add(0.25)
    late = mk("common-3")
    late.add(ct)
    # moving one event within the common queue: 0.05 later, so it now fires after heap-0.25
    clock.autojump = False
    clock.advance(0.06)
    assert run(base, EVLOOP_NONBLOCK) == 0
    c1.add(ct)  # rescheduled: now due at 0.26
    clock.autojump = True
    assert run(base) == 1
    names = [n for n, _ in fired]
    assert names == ["heap-0.1", "heap-0.15", "common-2", "common-3", "heap-0.25", "common-1"]
    times = [t for _, t in fired]
    assert times == sorted(times)
    assert times[-1] == pytest.approx(0.26)


def test_common_timeout_errors(base_factory: BaseFactory) -> None:
    """Negative common timeouts, another base's, and a 257th are refused."""
    base = base_factory(clock=FakeClock())
    other = base_factory(clock=FakeClock())
    with pytest.raises(ValueError):
        base.init_common_timeout(-1)
    foreign = other.init_common_timeout(1.0)
    ev = Event.timer(base, lambda *args: None)
    with pytest.raises(EventError):
        ev.add(foreign)
    assert ev.pending(EV_TIMEOUT) == 0
    assert base.num_events() == 0
    zero = base.init_common_timeout(0)
    ev.add(zero)
    assert run(base) == 1
    for i in range(1, 256):  # libevent's limit: 256 common timeouts per base
        base.init_common_timeout(i / 1000)
    assert base.init_common_timeout(0.255) is base.init_common_timeout(0.255)
    with pytest.raises(EventError):
        base.init_common_timeout(1000.0)


def test_random_timers_fire_in_order(base_factory: BaseFactory) -> None:
    """``test-time``: many random timers, re-added and deleted at random, fire in order and never early."""
    rng = random.Random(1234)
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock)
    fired: list[tuple[float, float]] = []
    deleted: set[int] = set()
    evs = []

    def cb(fd: int, what: int, i: int) -> None:
        assert i not in deleted
        fired.append((due[i], clock.monotonic()))

    due: dict[int, float] = {}
    for i in range(500):
        ev = Event.timer(base, cb, i)
        evs.append(ev)
        t = rng.uniform(0, 10)
        ev.add(t)
        due[i] = t
    for i in rng.sample(range(500), 100):
        evs[i].delete()
        deleted.add(i)
    for i in rng.sample(sorted(set(range(500)) - deleted), 100):
        t = rng.uniform(0, 10)
        evs[i].add(t)
        due[i] = t
    assert run(base) == 1
    assert len(fired) == 400
    for want, at in fired:
        assert at >= want  # never early
    ats = [at for _, at in fired]
    assert ats == sorted(ats)
    assert sorted(w for w, _ in fired) == [w for w, _ in fired]


def test_add_reschedules_timeout(base_factory: BaseFactory) -> None:
    """``add`` on a pending event reschedules its timeout from now."""
    clock = FakeClock()
    base = base_factory(clock=clock)
    fired: list[float] = []
    ev = Event.timer(base, lambda fd, what, arg: fired.append(clock.monotonic()))
    ev.add(1.0)
    clock.advance(0.5)
    ev.add(1.0)
    assert ev.deadline() == 1.5
    clock.advance(0.5)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert fired == []
    clock.advance(0.5)
    assert run(base, EVLOOP_NONBLOCK) == 1  # the last event ran: nothing left (libevent)
    assert fired == [1.5]
    # earlier is fine too
    ev.add(5.0)
    ev.add(0.25)
    assert ev.deadline() == 1.75
    assert base.num_events() == 1
    ev.delete()


def test_add_without_timeout_keeps_timeout(base_factory: BaseFactory) -> None:
    """``add()`` with no timeout on an event that has one leaves that timeout in place (libevent)."""
    a, _b = base_factory.socketpair()
    clock = FakeClock()
    base = base_factory(clock=clock)
    fired: list[int] = []
    ev = Event(base, a, EV_READ, lambda fd, what, arg: fired.append(what))
    ev.add(2.0)
    ev.add()
    assert ev.pending(EV_READ | EV_TIMEOUT) == EV_READ | EV_TIMEOUT
    assert ev.deadline() == 2.0
    clock.advance(2.0)
    assert run(base, EVLOOP_NONBLOCK) == 1
    assert fired == [EV_TIMEOUT]
    assert base.num_events() == 0


def test_remove_timer(base_factory: BaseFactory) -> None:
    """``remove_timer`` cancels only the timeout; fd interest stays, and a pure timer stops counting."""
    a, b = base_factory.socketpair()
    clock = FakeClock()
    base = base_factory(clock=clock)
    fired: list[int] = []
    ev = Event(base, a, EV_READ | EV_PERSIST, lambda fd, what, arg: fired.append(what))
    ev.add(1.0)
    ev.remove_timer()
    assert ev.pending(EV_READ | EV_TIMEOUT) == EV_READ
    assert ev.deadline() is None
    clock.advance(5.0)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert fired == []
    b.send(b"x")
    assert run(base, EVLOOP_ONCE) == 0
    assert fired == [EV_READ]
    ev.delete()
    t = Event.timer(base, lambda fd, what, arg: fired.append(-1))
    t.add(1.0)
    assert base.num_events() == 1
    t.remove_timer()
    assert base.num_events() == 0
    t.remove_timer()  # nothing to remove: harmless
    assert run(base) == 1
    assert fired == [EV_READ]


def test_deadline(base_factory: BaseFactory) -> None:
    """``deadline()``: the monotonic deadline of the pending timeout, or ``None``."""
    clock = FakeClock(start=10.0)
    base = base_factory(clock=clock)
    ct = base.init_common_timeout(3.0)
    ev = Event.timer(base, lambda *args: None)
    assert ev.deadline() is None
    ev.add(0.5)
    assert ev.deadline() == 10.5
    ev.add(ct)
    assert ev.deadline() == 13.0
    ev.add(0.25)  # from a common timeout back to the heap
    assert ev.deadline() == 10.25
    ev.add(ct)
    ev.add(ct)  # and re-added in the same common timeout
    assert ev.deadline() == 13.0
    ev.delete()
    assert ev.deadline() is None
    ev.add(1.0)
    clock.advance(1.0)
    assert run(base, EVLOOP_NONBLOCK) == 1  # the last event ran: nothing left (libevent)
    assert ev.deadline() is None  # fired: no longer pending


def test_timer_zero_runs_next_pass(base_factory: BaseFactory) -> None:
    """A zero timeout fires on the next pass without advancing the clock; a timer may re-add itself."""
    clock = FakeClock()
    base = base_factory(clock=clock)
    n = []

    def cb(fd: int, what: int, ev: Event) -> None:
        n.append(what)
        if len(n) < 5:
            ev.add(0)

    ev = Event.timer(base, cb)
    ev.arg = ev
    ev.add(0)
    assert run(base) == 1
    assert n == [EV_TIMEOUT] * 5
    assert clock.monotonic() == 0.0


def test_invalid_timeouts(base_factory: BaseFactory) -> None:
    """Negative and NaN timeouts are refused and leave the event as it was; any real number works."""
    base = base_factory(clock=FakeClock())
    ev = Event.timer(base, lambda *args: None)
    bads: list[Any] = [-1.0, float("nan"), -1, Fraction(-1, 2), Decimal("NaN")]
    for bad in bads:
        with pytest.raises(ValueError):
            ev.add(bad)
        assert ev.pending(EV_TIMEOUT) == 0
    assert base.num_events() == 0
    goods: list[tuple[Any, float]] = [(Fraction(1, 2), 0.5), (Decimal("0.25"), 0.25), (2, 2.0), (True, 1.0)]
    for good, deadline in goods:
        ev.add(good)
        assert ev.deadline() == deadline
    ev.delete()


def test_gettimeofday_cached(base_factory: BaseFactory) -> None:
    """``gettimeofday_cached`` is wall-clock time cached once per pass; ``update_cache_time`` refreshes it."""
    clock = FakeClock(start=0.0, start_wall=1_000.0)
    base = base_factory(clock=clock)
    assert base.gettimeofday_cached() == 1_000.0
    clock.advance(1.0)
    assert base.gettimeofday_cached() == 1_001.0  # outside the loop: the live clock
    seen: list[float] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        seen.append(base.gettimeofday_cached())
        clock.advance(5.0)
        seen.append(base.gettimeofday_cached())  # still the pass's time
        base.update_cache_time()
        seen.append(base.gettimeofday_cached())

    Event.timer(base, cb).add(0)
    assert run(base) == 1
    assert seen == [1_001.0, 1_001.0, 1_006.0]
    base.update_cache_time()  # outside a loop: harmless
    assert base.gettimeofday_cached() == 1_006.0


def test_no_cache_time(base_factory: BaseFactory) -> None:
    """With ``BaseFlag.NO_CACHE_TIME`` the time read in a callback is always current."""
    clock = FakeClock(start_wall=50.0)
    base = base_factory(clock=clock, flags=BaseFlag.NO_CACHE_TIME)
    seen: list[float] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        seen.append(base.gettimeofday_cached())
        clock.advance(2.0)
        seen.append(base.gettimeofday_cached())

    Event.timer(base, cb).add(0)
    assert run(base) == 1
    assert seen == [50.0, 52.0]


def test_timer_deleted_from_callback_of_earlier_timer(base_factory: BaseFactory) -> None:
    """A timer deleted by a callback in the same pass, before it ran, never runs."""
    clock = FakeClock()
    base = base_factory(clock=clock)
    ran: list[str] = []
    second = Event.timer(base, lambda fd, what, arg: ran.append("second"))

    def first_cb(fd: int, what: int, arg: Any) -> None:
        ran.append("first")
        second.delete()

    Event.timer(base, first_cb).add(1.0)
    second.add(1.0)
    clock.advance(1.0)
    assert run(base, EVLOOP_NONBLOCK) == 1  # the last event ran: nothing left (libevent)
    assert ran == ["first"]
    assert base.num_events() == 0


def test_common_timeout_persistent_reinsert_order(base_factory: BaseFactory) -> None:
    """A persistent event on a common timeout, fired late, is rescheduled from its old deadline.

    That deadline can be earlier than others already queued on the same common
    timeout; it still fires first (libevent inserts it in order).
    """
    clock = FakeClock()
    base = base_factory(clock=clock)
    ct = base.init_common_timeout(1.0)
    fired: list[tuple[str, float]] = []
    a = Event(base, -1, EV_PERSIST, lambda fd, what, n: fired.append((n, clock.monotonic())), "a")
    a.add(ct)  # due 1.0
    clock.advance(0.9)
    b = Event.timer(base, lambda fd, what, n: fired.append((n, clock.monotonic())), "b")
    b.add(ct)  # due 1.9
    clock.advance(0.95)  # now 1.85: a is late
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert fired == [("a", 1.85)]
    assert a.deadline() == pytest.approx(2.0)  # 1.0 + 1.0, not 1.85 + 1.0
    clock.autojump = True
    base.loopexit(1.5)  # until 3.35
    assert run(base) == 0
    names = [n for n, _ in fired]
    assert names == ["a", "b", "a", "a"]
    assert [t for _, t in fired][1:] == pytest.approx([1.9, 2.0, 3.0])
    a.delete()
