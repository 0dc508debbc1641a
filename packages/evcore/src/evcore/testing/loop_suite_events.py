"""Loop conformance suite, part 7: events and bases as objects -- misuse, errors, introspection.

Mirrors libevent 2.0's ``bad_assign`` and ``bad_reentrant``, the 2.1 introspection
DESIGN.md adopts (``foreach_event``, ``num_events``, ``dump_events``,
``event_self_cbarg``), and evcore's own rules: exceptions from callbacks, context
managers, ``free()``, ``BaseFlag.NOLOCK``, a ``repr`` that never raises.
"""

from __future__ import annotations

import io
import signal
import threading
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
    EVENT_BASE_COUNT_ADDED,
    EVENT_BASE_COUNT_VIRTUAL,
    EVLOOP_NONBLOCK,
    BaseFlag,
)
from . import FakeClock
from .loop_suite_support import BaseFactory, drain, run

__all__ = [
    "test_bad_assign",
    "test_bad_reentrant",
    "test_callback_exception_propagates",
    "test_callback_exception_persistent_event_stays",
    "test_set_exception_handler",
    "test_exception_handler_raising",
    "test_exception_keeps_other_fired_fd_events",
    "test_loopbreak_keeps_other_fired_fd_events",
    "test_handler_raising_keeps_other_fired_fd_events",
    "test_exception_handler_fd_events",
    "test_exception_handler_may_loopbreak",
    "test_deferred_exception_propagates",
    "test_free_from_callback",
    "test_foreach_event",
    "test_num_events",
    "test_dump_events",
    "test_event_assign_selfarg",
    "test_event_assign_reuse",
    "test_event_timer_and_signal_helpers",
    "test_context_manager_base",
    "test_freed_base_refuses_use",
    "test_nolock_base",
    "test_repr_never_raises",
    "test_event_free_idempotent",
]


def _noop(fd: int, what: int, arg: Any) -> None:
    pass



def test_bad_assign(base_factory: BaseFactory) -> None:
    """``bad_assign``: ``EV_SIGNAL|EV_READ`` (and an fd event without an fd) are refused; the base is fine."""
    base = base_factory()
    with pytest.raises(EventError):
        Event(base, -1, EV_SIGNAL | EV_READ, _noop)
    ev = Event()
    with pytest.raises(EventError):
        ev.assign(base, signal.SIGUSR1, EV_SIGNAL | EV_WRITE, _noop)
    assert not ev.initialized
    with pytest.raises(EventError):
        Event(base, -1, EV_READ, _noop)
    with pytest.raises(TypeError):
        Event(base, -1, 0, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Event(base, 1.5, EV_READ, _noop)

    class BadFileno:
        def fileno(self) -> str:
            return "three"

    with pytest.raises(TypeError):
        Event(base, BadFileno(), EV_READ, _noop)
    none_fd = Event(base, None, 0, _noop)
    assert none_fd.fd == -1
    assert base.num_events() == 0
    assert run(base) == 1


def test_bad_reentrant(base_factory: BaseFactory) -> None:
    """``bad_reentrant``: ``loop()`` from inside a callback raises ``EventError``; the outer loop goes on."""
    base = base_factory()
    caught: list[BaseException] = []

    def cb(fd: int, what: int, arg: Any) -> None:
        try:
            base.loop()
        except EventError as exc:
            caught.append(exc)
        try:
            base.dispatch()
        except EventError as exc:
            caught.append(exc)

    Event(base, -1, 0, cb).active(EV_WRITE)
    assert run(base) == 1
    assert len(caught) == 2
    assert "reentrant" in str(caught[0]).lower()


def test_callback_exception_propagates(base_factory: BaseFactory) -> None:
    """An exception from a callback leaves ``loop()``; the rest of the pass runs on the next ``loop()``."""
    base = base_factory()
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "b":
            raise ValueError("boom")

    for name in "abc":
        Event.timer(base, cb, name).active(EV_TIMEOUT)
    with pytest.raises(ValueError, match="boom"):
        base.loop()
    assert ran == ["a", "b"]
    assert base.num_events() == 1  # c is still active
    assert run(base) == 1
    assert ran == ["a", "b", "c"]
    assert base.num_events() == 0


def test_callback_exception_persistent_event_stays(base_factory: BaseFactory) -> None:
    """A persistent event whose callback raised is still pending and fires again."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    calls: list[int] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        calls.append(what)
        if len(calls) == 1:
            raise RuntimeError("first time")
        ev.delete()

    ev = Event(base, a, EV_WRITE | EV_PERSIST, cb, event_self_cbarg())
    ev.add()
    with pytest.raises(RuntimeError):
        base.loop()
    assert ev.pending(EV_WRITE) == EV_WRITE
    assert run(base) == 1
    assert calls == [EV_WRITE, EV_WRITE]


def test_set_exception_handler(base_factory: BaseFactory) -> None:
    """``set_exception_handler(fn)``: the loop calls ``fn(base, exc, event)`` and goes on."""
    base = base_factory()
    handled: list[tuple[Any, str, Any]] = []
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "b":
            raise KeyError(name)

    def deferred_boom() -> None:
        raise LookupError("deferred")

    base.set_exception_handler(lambda b, exc, ev: handled.append((b, type(exc).__name__, ev)))
    evs = [Event.timer(base, cb, name) for name in "abc"]
    for ev in evs:
        ev.active(EV_TIMEOUT)
    base.defer(deferred_boom)
    assert run(base) == 1
    assert ran == ["a", "b", "c"]
    assert handled == [(base, "KeyError", evs[1]), (base, "LookupError", None)]
    base.set_exception_handler(None)
    evs[1].active(EV_TIMEOUT)
    with pytest.raises(KeyError):
        base.loop()


def test_foreach_event(base_factory: BaseFactory) -> None:
    """``foreach_event(fn)`` visits every added or active event and stops at the first true result."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    r = Event(base, a, EV_READ, _noop)
    t = Event.timer(base, _noop)
    act = Event.timer(base, _noop)
    idle = Event.timer(base, _noop)  # neither added nor active: not visited
    r.add()
    t.add(60)
    act.active(EV_TIMEOUT)
    seen: list[Event] = []
    assert base.foreach_event(lambda ev: seen.append(ev)) == 0
    assert {id(e) for e in seen} == {id(r), id(t), id(act)}
    assert idle not in seen
    visits: list[Event] = []

    def stop(ev: Event) -> Any:
        visits.append(ev)
        return "found"

    assert base.foreach_event(stop) == "found"
    assert len(visits) == 1
    for ev in (r, t, act):
        ev.delete()


def test_num_events(base_factory: BaseFactory) -> None:
    """``num_events`` counts active (1), virtual (2) and added (4) events."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    assert base.num_events() == 0
    r = Event(base, a, EV_READ, _noop)
    r.add()
    t = Event.timer(base, _noop)
    t.add(60)
    act = Event.timer(base, _noop)
    act.active(EV_TIMEOUT)
    assert base.num_events(EVENT_BASE_COUNT_ADDED) == 2
    assert base.num_events(EVENT_BASE_COUNT_ACTIVE) == 1
    assert base.num_events(EVENT_BASE_COUNT_VIRTUAL) == 0
    assert base.num_events() == 3
    gate = threading.Event()
    done: list[Any] = []
    base.run_in_pool(gate.wait, 10, callback=done.append)
    assert base.num_events(EVENT_BASE_COUNT_VIRTUAL) == 1
    gate.set()
    r.delete()
    t.delete()
    assert run(base) == 1
    assert len(done) == 1 and done[0].result() is True
    assert base.num_events() == 0


def test_dump_events(base_factory: BaseFactory) -> None:
    """``dump_events(file)`` lists inserted and active events."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    r = Event(base, a, EV_READ | EV_PERSIST, _noop)
    r.add(30)
    act = Event.timer(base, _noop)
    act.active(EV_TIMEOUT)
    out = io.StringIO()
    base.dump_events(out)
    text = out.getvalue()
    assert "Inserted events:" in text and "Active events:" in text
    inserted, active = text.split("Active events:")
    assert f"fd {a.fileno()}" in inserted and "Read" in inserted and "Persist" in inserted
    assert "Timeout=" in inserted
    assert repr(act) in active or "fd -1" in active
    r.delete()
    act.delete()


def test_event_assign_selfarg(base_factory: BaseFactory) -> None:
    """``event_assign_selfarg``: ``event_self_cbarg()`` as ``arg`` hands the callback the event itself."""
    base = base_factory()
    got: list[Any] = []
    ev = Event()
    ev.assign(base, -1, 0, lambda fd, what, arg: got.append(arg), event_self_cbarg())
    assert ev.arg is ev
    ev.active(EV_TIMEOUT)
    assert run(base) == 1
    assert got == [ev]


def test_event_assign_reuse(base_factory: BaseFactory) -> None:
    """An idle event can be re-assigned (another base, fd, callback); outside debug mode a pending one too."""
    a, b = base_factory.socketpair()
    base1 = base_factory()
    base2 = base_factory()
    ran: list[str] = []
    ev = Event(base1, a, EV_READ, lambda *x: ran.append("1"))
    ev.assign(base2, b, EV_WRITE, lambda *x: ran.append("2"))
    assert ev.base is base2 and ev.fd == b.fileno() and ev.events == EV_WRITE
    ev.add()
    assert run(base1) == 1
    assert run(base2) == 1
    assert ran == ["2"]
    from ..debug import debug_mode_enabled

    if not debug_mode_enabled():
        ev.add()
        ev.assign(base1, -1, 0, lambda *x: ran.append("3"))  # pending: deleted first
        assert base2.num_events() == 0
        ev.active(EV_TIMEOUT)
        assert run(base1) == 1
        assert ran == ["2", "3"]


def test_event_timer_and_signal_helpers(base_factory: BaseFactory) -> None:
    """``Event.timer`` is a pure timer (fd -1, no flags); ``Event.signal`` is ``EV_SIGNAL|EV_PERSIST``."""
    base = base_factory()
    t = Event.timer(base, _noop, "arg")
    assert (t.fd, t.events, t.arg, t.base) == (-1, 0, "arg", base)
    assert t.initialized
    s = Event.signal(base, signal.SIGUSR1, _noop)
    assert (s.fd, s.events) == (signal.SIGUSR1, EV_SIGNAL | EV_PERSIST)
    assert s.callback is _noop


def test_context_manager_base(base_factory: BaseFactory) -> None:
    """A base is a context manager: leaving the block frees it, even with events pending."""
    a, _b = base_factory.socketpair()
    with base_factory() as base:
        ev = Event(base, a, EV_READ, _noop)
        ev.add()
        assert base.num_events() == 1
    assert ev.pending() == 0
    with pytest.raises(EventError):
        base.loop()
    with pytest.raises(EventError):
        Event.timer(base, _noop).add(1)


def test_freed_base_refuses_use(base_factory: BaseFactory) -> None:
    """After ``free()`` adding and looping raise ``EventError``; a second ``free()`` is harmless."""
    base = base_factory()
    ev = Event.timer(base, _noop)
    base.free()
    with pytest.raises(EventError):
        ev.add(1.0)
    with pytest.raises(EventError):
        base.loop()
    base.free()
    assert "freed" in repr(base)


def test_nolock_base(base_factory: BaseFactory) -> None:
    """A ``BaseFlag.NOLOCK`` base runs fd events, timers, deferred callbacks and loopbreak in one thread."""
    a, b = base_factory.socketpair()
    clock = FakeClock(autojump=True)
    base = base_factory(clock=clock, flags=BaseFlag.NOLOCK)
    assert base.flags & BaseFlag.NOLOCK
    ran: list[str] = []

    def rd(fd: int, what: int, arg: Any) -> None:
        ran.append("read")
        a.recv(10)
        base.defer(ran.append, "deferred")

    def brk(fd: int, what: int, arg: Any) -> None:
        ran.append("break")
        base.loopbreak()

    Event(base, a, EV_READ, rd).add()
    Event.timer(base, lambda *x: ran.append("timer")).add(1.0)
    Event.timer(base, brk).add(2.0)
    keep = Event.timer(base, _noop)
    keep.add(3.0)
    b.send(b"x")
    assert run(base) == 0
    assert ran == ["read", "timer", "deferred", "break"]
    keep.delete()


class _Nasty:
    """A callback whose every attribute lookup and repr raises."""

    def __call__(self, fd: int, what: int, arg: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("no attributes here")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


def test_repr_never_raises(base_factory: BaseFactory) -> None:
    """``repr`` of bases and events in every state returns a string and never raises."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    reps = [repr(base), repr(Event())]
    ev = Event(base, a, EV_READ | EV_PERSIST, _noop)
    reps.append(repr(ev))
    ev.add(5)
    reps.append(repr(ev))
    ev.active(EV_READ)
    reps.append(repr(ev))
    ev.delete()
    nasty = Event(base, -1, 0, _Nasty())
    reps.append(repr(nasty))
    nasty.active(EV_TIMEOUT)
    reps.append(repr(nasty))
    nasty.delete()
    ev.free()
    reps.append(repr(ev))
    base.free()
    reps.append(repr(base))
    assert all(isinstance(r, str) and r for r in reps)
    assert base.method in reps[0]


def test_event_free_idempotent(base_factory: BaseFactory) -> None:
    """``Event.free()`` deletes a pending event and can be called twice; the freed event is uninitialised."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    ev = Event(base, a, EV_READ, _noop)
    ev.add()
    ev.free()
    ev.free()
    assert not ev.initialized
    assert base.num_events() == 0
    ev.delete()  # outside debug mode: harmless


def test_exception_handler_raising(base_factory: BaseFactory) -> None:
    """An exception handler that raises: its exception leaves ``loop()``; the rest still runs later."""
    base = base_factory()
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "a":
            raise KeyError(name)

    def handler(b: Any, exc: BaseException, ev: Any) -> None:
        raise RuntimeError("handler gave up") from exc

    base.set_exception_handler(handler)
    for name in "abc":
        Event.timer(base, cb, name).active(EV_TIMEOUT)
    with pytest.raises(RuntimeError, match="handler gave up"):
        base.loop()
    assert ran == ["a"]
    assert run(base) == 1
    assert ran == ["a", "b", "c"]


def _ready_events(f: BaseFactory, base: Any, cb: Any, n: int = 3) -> list[Any]:
    socks = []
    for i in range(n):
        a, b = f.socketpair()
        b.send(b"x")
        ev = Event(base, a, EV_READ | f.et, cb, i)
        ev.add()
        socks.append(a)
    return socks


def _interrupted_round(f: BaseFactory, npri: int, how: str) -> None:
    base = f()
    base.priority_init(npri)
    ran: list[int] = []

    def cb(fd: int, what: int, i: int) -> None:
        ran.append(i)
        if len(ran) == 1:
            if how == "raise":
                raise ValueError("first one raises")
            base.loopbreak()

    socks = _ready_events(f, base, cb)
    if how == "handler-raises":
        def handler(b: Any, exc: BaseException, ev: Any) -> None:
            raise RuntimeError("the handler re-raises") from exc

        base.set_exception_handler(handler)
        how = "raise"
        expected: type[BaseException] = RuntimeError
    else:
        expected = ValueError
    if how == "raise":
        with pytest.raises(expected):
            run(base)
    else:
        assert run(base) == 0
        assert base.got_break()
    assert len(ran) == 1
    for s in socks:
        drain(s)
    assert run(base, EVLOOP_NONBLOCK) == 1
    assert sorted(ran) == [0, 1, 2]
    base.free()


def test_exception_keeps_other_fired_fd_events(io_base_factory: BaseFactory) -> None:
    """A callback raising while several fds fired: the others' callbacks run on the next ``loop()``.

    The sockets are drained before that next loop, so the events run because they
    were still active, not because the fds are still ready (which an
    edge-triggered backend would not report again anyway).  Checked with one
    priority queue and with several.
    """
    for npri in (1, 3):
        _interrupted_round(io_base_factory, npri, "raise")


def test_loopbreak_keeps_other_fired_fd_events(io_base_factory: BaseFactory) -> None:
    """``loopbreak`` while several fds fired: the others stay active and run on the next ``loop()``."""
    for npri in (1, 3):
        _interrupted_round(io_base_factory, npri, "break")


def test_handler_raising_keeps_other_fired_fd_events(io_base_factory: BaseFactory) -> None:
    """An exception handler raising while several fds fired: the others still run on the next ``loop()``."""
    for npri in (1, 3):
        _interrupted_round(io_base_factory, npri, "handler-raises")


def test_exception_handler_fd_events(io_base_factory: BaseFactory) -> None:
    """With an exception handler, fd callbacks that raise are reported and the pass goes on."""
    f = io_base_factory
    base = f()
    ran: list[int] = []
    handled: list[tuple[str, int]] = []

    def cb(fd: int, what: int, i: int) -> None:
        ran.append(i)
        raise LookupError(i)

    def handler(b: Any, exc: BaseException, ev: Event | None) -> None:
        assert ev is not None
        handled.append((type(exc).__name__, ev.arg))

    base.set_exception_handler(handler)
    _ready_events(f, base, cb)
    assert run(base) == 1
    assert sorted(ran) == [0, 1, 2]
    assert sorted(handled) == [("LookupError", 0), ("LookupError", 1), ("LookupError", 2)]


def test_exception_handler_may_loopbreak(base_factory: BaseFactory) -> None:
    """A handler may call ``loopbreak``: the loop ends after that callback; the rest runs next loop."""
    base = base_factory()
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "a":
            raise KeyError(name)

    base.set_exception_handler(lambda b, exc, ev: b.loopbreak())
    for name in "abc":
        Event.timer(base, cb, name).active(EV_TIMEOUT)
    assert run(base) == 0
    assert base.got_break() and ran == ["a"]
    assert run(base) == 1
    assert ran == ["a", "b", "c"]


def test_deferred_exception_propagates(base_factory: BaseFactory) -> None:
    """A deferred callable that raises: the exception leaves ``loop()``; the later ones run next time."""
    base = base_factory()
    ran: list[str] = []

    def boom() -> None:
        ran.append("boom")
        raise ArithmeticError("deferred")

    base.defer(ran.append, "first")
    base.defer(boom)
    base.defer(ran.append, "last")
    with pytest.raises(ArithmeticError):
        base.loop()
    assert ran == ["first", "boom"]
    assert run(base) == 1
    assert ran == ["first", "boom", "last"]


def test_free_from_callback(base_factory: BaseFactory) -> None:
    """``free()`` from inside a callback: the loop ends at once; nothing else runs; the base is freed."""
    a, b = base_factory.socketpair()
    base = base_factory()
    ran: list[str] = []

    def cb(fd: int, what: int, name: str) -> None:
        ran.append(name)
        if name == "freer":
            base.free()

    Event.timer(base, cb, "freer").active(EV_TIMEOUT)
    Event.timer(base, cb, "second").active(EV_TIMEOUT)
    Event(base, a, EV_READ | EV_PERSIST, cb, "io").add()
    Event.timer(base, cb, "timer").add(5)
    base.defer(cb, -1, 0, "deferred")
    b.send(b"x")
    assert run(base) == 1
    assert ran == ["freer"]
    assert "freed" in repr(base)
    with pytest.raises(EventError):
        base.loop()
