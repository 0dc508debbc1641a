"""Loop conformance suite, part 6: the process around the loop -- fork, debug mode, configuration.

Mirrors libevent's ``fork``, ``methods``, ``base_features``, ``base_environ`` and
the debug-mode checks of ``regress.c``.  Debug mode is process-wide and cannot be
turned off in evcore's API; the tests here turn it off again through
``evcore.debug``'s state when they finish, so that running the suite without
``--forked`` does not leak it into later tests.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ..backend import supported_methods
from ..base import EventBase
from ..config import EventConfig
from ..debug import _state as _debug_state
from ..debug import debug_mode_enabled, enable_debug_mode
from ..errors import DebugModeError, EventError
from ..event import Event
from ..flags import EV_PERSIST, EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_NONBLOCK, EVLOOP_ONCE, BaseFlag, Feature
from . import FakeClock
from .loop_suite_support import BaseFactory, drain, open_fds, run

__all__ = [
    "test_fork",
    "test_debug_mode_uninitialised_event",
    "test_debug_mode_freed_event",
    "test_debug_mode_reassign_pending",
    "test_debug_mode_fd_closed_behind_back",
    "test_debug_mode_fd_closed_and_reused",
    "test_debug_mode_fd_closed_then_deleted",
    "test_fd_closed_behind_back_reported",
    "test_uninitialised_event_without_debug_mode",
    "test_event_no_env",
    "test_event_show_method",
    "test_require_features_and_avoid_method",
    "test_free_closes_fds_at_once",
    "test_debug_mode_dropped_fd_keeps_timeout",
    "test_add_fd_not_open",
    "test_debug_mode_add_fd_not_open",
    "test_reinit_without_fork",
    "test_reinit_nolock_base",
]

_CHILD_OK = 76


def test_fork(base_factory: BaseFactory) -> None:
    """``fork``: after ``fork()`` + ``reinit()`` in the child, parent and child each get their own events.

    The child keeps an fd event registered before the fork, adds a timer, is woken
    by a thread of its own (``thread/forking``), and answers on its socket; the
    parent keeps its own fd event and a SIGCHLD event, and checks the child's exit
    status (``os._exit(76)`` when all went well).
    """
    p1, p2 = base_factory.socketpair()  # the parent's channel
    c1, c2 = base_factory.socketpair()  # the child's channel
    base = base_factory()
    parent_seen: list[bytes] = []
    child_seen: list[bytes] = []
    state = {"sigchld": 0}

    def child_cb(fd: int, what: int, arg: Any) -> None:
        data = c1.recv(100)
        child_seen.append(data)
        c1.send(b"child saw " + data)

    def parent_cb(fd: int, what: int, arg: Any) -> None:
        parent_seen.append(p1.recv(100))

    def sigchld_cb(fd: int, what: int, ev: Event) -> None:
        state["sigchld"] += 1
        ev.delete()

    child_ev = Event(base, c1, EV_READ, child_cb)
    parent_ev = Event(base, p1, EV_READ, parent_cb)
    sig_ev = Event.signal(base, signal.SIGCHLD, sigchld_cb)
    sig_ev.arg = sig_ev
    for ev in (child_ev, parent_ev, sig_ev):
        ev.add()
    assert run(base, EVLOOP_NONBLOCK) == 0  # the backend has registered everything
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child; coverage still records it
        code = 1
        try:
            base.reinit()
            parent_ev.delete()
            sig_ev.delete()
            ticks: list[int] = []
            Event.timer(base, lambda fd, what, arg: ticks.append(what)).add(0)
            # a thread wakes the child's loop through the child's own wakeup fd
            keep = Event.timer(base, _noop)
            keep.add(3600)

            def woken(fd: int, what: int, arg: Any) -> None:
                ticks.append(-what)
                keep.delete()

            from_thread = Event.timer(base, woken)
            waker = threading.Timer(0.05, from_thread.active, (EV_TIMEOUT,))
            waker.start()
            rv = run(base, limit=10)
            waker.join()
            code = _CHILD_OK if (rv, child_seen, sorted(ticks)) == (1, [b"ping"], [-1, 1]) else 2
            if code != _CHILD_OK:
                print("child:", rv, child_seen, ticks, flush=True)
            base.free()
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    try:
        child_ev.delete()  # that one is the child's now
        p2.send(b"parent")
        c2.send(b"ping")
        assert run(base, limit=20) == 1
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == _CHILD_OK, f"child status {status:#x}"
    assert parent_seen == [b"parent"]
    assert state["sigchld"] == 1
    assert child_seen == []  # the parent never ran the child's callback
    c2.setblocking(True)
    c2.settimeout(10)
    assert c2.recv(100) == b"child saw ping"
    # the parent's base still works
    parent_ev.add()
    p2.send(b"again")
    assert run(base, EVLOOP_ONCE) == 0
    assert parent_seen == [b"parent", b"again"]


@contextmanager
def _debug_mode() -> Iterator[None]:
    was = _debug_state["debug"]
    enable_debug_mode()
    try:
        yield
    finally:
        _debug_state["debug"] = was


def _noop(fd: int, what: int, arg: Any) -> None:
    pass


def test_debug_mode_uninitialised_event(base_factory: BaseFactory) -> None:
    """Debug mode: add, active or remove_timer on a never-assigned event raises ``DebugModeError``."""
    with _debug_mode():
        assert debug_mode_enabled()
        base = base_factory()
        ev = Event()
        calls: list[Callable[[], None]] = [lambda: ev.add(), lambda: ev.add(1.0), lambda: ev.active(EV_READ),
                                           ev.remove_timer]
        for call in calls:
            with pytest.raises(DebugModeError) as info:
                call()
            assert "uninitiali" in str(info.value) and repr(ev) in str(info.value)
        assert base.num_events() == 0


def test_debug_mode_freed_event(base_factory: BaseFactory) -> None:
    """Debug mode: using an event after ``free()`` raises ``DebugModeError`` saying it was freed."""
    with _debug_mode():
        base = base_factory()
        ev = Event.timer(base, _noop)
        ev.add(5)
        ev.free()
        assert base.num_events() == 0
        calls: list[Callable[[], None]] = [lambda: ev.add(1.0), ev.delete, lambda: ev.active(EV_TIMEOUT)]
        for call in calls:
            with pytest.raises(DebugModeError) as info:
                call()
            assert "freed" in str(info.value) and repr(ev) in str(info.value)


def test_debug_mode_reassign_pending(base_factory: BaseFactory) -> None:
    """Debug mode: re-assigning a pending event raises ``DebugModeError``; the event stays as it was."""
    a, b = base_factory.socketpair()
    with _debug_mode():
        base = base_factory()
        ev = Event(base, a, EV_READ, _noop)
        ev.add(5)
        with pytest.raises(DebugModeError) as info:
            ev.assign(base, b, EV_WRITE, _noop)
        assert "pending" in str(info.value)
        assert ev.fd == a.fileno() and ev.events == EV_READ
        assert ev.pending(EV_READ | EV_TIMEOUT) == EV_READ | EV_TIMEOUT
        ev.delete()
        ev.assign(base, b, EV_WRITE, _noop)  # fine once it is not pending
        ev.active(EV_WRITE)
        with pytest.raises(DebugModeError):
            ev.assign(base, b, EV_WRITE, _noop)  # active counts as pending
        assert run(base) == 1


def _close_behind_back(base_factory: BaseFactory) -> tuple[EventBase, Event, Event, int, socket.socket]:
    a, _b = base_factory.socketpair()
    x, y = base_factory.socketpair()
    base = base_factory()
    ev = Event(base, a, EV_READ | EV_PERSIST | base_factory.et, _noop)
    ev.add()
    other = Event(base, x, EV_READ | EV_PERSIST, _noop)  # an innocent bystander
    other.add()
    assert run(base, EVLOOP_NONBLOCK) == 0
    fd = a.fileno()
    a.close()
    return base, ev, other, fd, y


def _warned_about(caplog: Any, fd: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "evcore" and r.levelno == logging.WARNING and f"fd {fd}" in r.getMessage()]


def test_debug_mode_fd_closed_behind_back(base_factory: BaseFactory, caplog: Any) -> None:
    """Debug mode: an fd closed while registered is logged as a warning naming it; its events are dropped."""
    with _debug_mode(), caplog.at_level(logging.WARNING, logger="evcore"):
        base, ev, other, fd, y = _close_behind_back(base_factory)
        assert run(base, EVLOOP_NONBLOCK) == 0
        assert _warned_about(caplog, fd)
        assert ev.pending() == 0
        assert base.num_events() == 1
        # the base goes on working for the other fd
        seen: list[int] = []
        other.callback = lambda fd_, what, arg: seen.append(what)
        y.send(b"x")
        assert run(base, EVLOOP_ONCE) == 0
        assert seen == [EV_READ]
        other.delete()


def test_debug_mode_fd_closed_and_reused(base_factory: BaseFactory, caplog: Any) -> None:
    """Debug mode: an fd closed and reused for another file behind the base's back is reported too."""
    with _debug_mode(), caplog.at_level(logging.WARNING, logger="evcore"):
        base, ev, other, fd, _y = _close_behind_back(base_factory)
        r, w = os.pipe()
        try:
            os.dup2(r, fd)
            assert run(base, EVLOOP_NONBLOCK) == 0
            assert _warned_about(caplog, fd)
            assert ev.pending() == 0
        finally:
            for n in (r, w, fd):
                try:
                    os.close(n)
                except OSError:
                    pass
        other.delete()


def test_debug_mode_fd_closed_then_deleted(base_factory: BaseFactory, caplog: Any) -> None:
    """Debug mode: deleting an event whose fd was closed behind the base's back warns at the delete."""
    with _debug_mode(), caplog.at_level(logging.WARNING, logger="evcore"):
        base, ev, other, fd, _y = _close_behind_back(base_factory)
        ev.delete()
        assert _warned_about(caplog, fd)
        assert base.num_events() == 1
        other.delete()
        assert run(base) == 1


def test_fd_closed_behind_back_reported(base_factory: BaseFactory, caplog: Any) -> None:
    """Without debug mode: where the kernel reports a closed fd (EBADF, POLLNVAL) the base warns and drops it.

    Backends with ``Feature.O1`` (epoll, kqueue) are never told: the kernel drops the
    closed fd silently, so there the event just never fires.  Either way the loop
    keeps working for other fds.
    """
    with caplog.at_level(logging.WARNING, logger="evcore"):
        base, ev, other, fd, y = _close_behind_back(base_factory)
        assert run(base, EVLOOP_NONBLOCK) == 0
        warned = _warned_about(caplog, fd)
        if not base.features & Feature.O1:
            assert warned
        if warned:
            assert ev.pending() == 0
        seen: list[int] = []
        other.callback = lambda fd_, what, arg: seen.append(what)
        y.send(b"x")
        assert run(base, EVLOOP_ONCE) == 0
        assert seen == [EV_READ]
        other.delete()
        ev.delete()


def test_uninitialised_event_without_debug_mode(base_factory: BaseFactory) -> None:
    """Outside debug mode misuse of an unassigned event is still an ``EventError`` (never a crash)."""
    base = base_factory()
    ev = Event()
    assert not ev.initialized
    with pytest.raises(EventError):
        ev.add()
    with pytest.raises(EventError):
        ev.active(EV_READ)
    ev.delete()  # nothing to delete: harmless
    assert ev.pending() == 0
    assert run(base) == 1


def _only(method: str) -> EventConfig:
    cfg = EventConfig()
    for m in supported_methods():
        if m != method:
            cfg.avoid_method(m)
    return cfg


def test_event_no_env(base_factory: BaseFactory, monkeypatch: Any) -> None:
    """``base_environ``: ``EVENT_NO<METHOD>`` removes the backend; ``BaseFlag.IGNORE_ENV`` brings it back."""
    m = base_factory.method
    for other in supported_methods():
        monkeypatch.delenv("EVENT_NO" + other.upper(), raising=False)
    with EventBase(_only(m)) as base:
        assert base.method == m
    monkeypatch.setenv("EVENT_NO" + m.upper(), "1")
    with pytest.raises(EventError):
        EventBase(_only(m))
    cfg = _only(m)
    cfg.set_flag(BaseFlag.IGNORE_ENV)
    with EventBase(cfg) as base:
        assert base.method == m
    if supported_methods() == [m]:  # pragma: no cover - evcore alone: nothing else to fall back on
        with pytest.raises(EventError):
            EventBase()
        return
    with EventBase() as base:  # the default choice skips it
        assert base.method != m


def test_event_show_method(base_factory: BaseFactory, monkeypatch: Any, caplog: Any) -> None:
    """``EVENT_SHOW_METHOD`` logs the backend chosen on the ``evcore`` logger (as libevent prints it)."""
    m = base_factory.method
    with caplog.at_level(logging.DEBUG, logger="evcore"):
        with EventBase(_only(m)):
            pass
        assert not [r for r in caplog.records if m in r.getMessage()]
        monkeypatch.setenv("EVENT_SHOW_METHOD", "1")
        with EventBase(_only(m)):
            pass
        assert [r for r in caplog.records if r.name == "evcore" and m in r.getMessage()]
        caplog.clear()
        base_factory()  # EventBase(method=...) shows it as well
        assert [r for r in caplog.records if r.name == "evcore" and m in r.getMessage()]


def test_require_features_and_avoid_method(base_factory: BaseFactory) -> None:
    """``base_features``/``methods``: required features pick a fitting backend; else ``EventError``."""
    m = base_factory.method
    feats = base_factory.features
    cfg = _only(m)
    cfg.set_flag(BaseFlag.IGNORE_ENV)
    cfg.require_features(feats)
    with EventBase(cfg) as base:
        assert base.method == m
        assert base.features == feats
    missing = ~feats & (Feature.ET | Feature.O1 | Feature.FDS | Feature.EARLY_CLOSE)
    if missing:  # pragma: no branch - no backend of ours offers every feature
        cfg.require_features(missing)
        with pytest.raises(EventError):
            EventBase(cfg)
    cfg2 = _only(m)
    cfg2.avoid_method(m)
    with pytest.raises(EventError):
        EventBase(cfg2)
    with pytest.raises(EventError):
        EventBase(cfg2, method=m)
    # requiring what this backend offers never picks a backend lacking it
    cfg3 = EventConfig()
    cfg3.set_flag(BaseFlag.IGNORE_ENV)
    cfg3.require_features(feats)
    with EventBase(cfg3) as base:
        assert base.features & feats == feats


def test_free_closes_fds_at_once(base_factory: BaseFactory) -> None:
    """``free()`` closes every fd the base opened (backend, wakeup, signal pipe) before it returns."""
    a, _b = base_factory.socketpair()
    before = open_fds()
    base = base_factory()
    Event(base, a, EV_READ, _noop).add()
    Event.signal(base, signal.SIGUSR1, _noop).add()
    base.defer(lambda: None)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert open_fds() - before
    base.free()
    assert open_fds() - before == set()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    drain(a)


def test_debug_mode_dropped_fd_keeps_timeout(base_factory: BaseFactory, caplog: Any) -> None:
    """An event dropped for a closed fd keeps its timeout: it still fires with ``EV_TIMEOUT``."""
    a, b = base_factory.socketpair()
    with _debug_mode(), caplog.at_level(logging.WARNING, logger="evcore"):
        clock = FakeClock()
        base = base_factory(clock=clock)
        seen: list[int] = []
        ev = Event(base, a, EV_READ | EV_PERSIST, lambda fd, what, arg: seen.append(what))
        ev.add(5.0)
        assert run(base, EVLOOP_NONBLOCK) == 0
        fd = a.fileno()
        a.close()
        assert run(base, EVLOOP_NONBLOCK) == 0
        assert _warned_about(caplog, fd)
        assert ev.pending(EV_READ | EV_TIMEOUT) == EV_TIMEOUT
        assert base.num_events() == 1
        clock.advance(5.0)
        assert run(base, EVLOOP_NONBLOCK) == 0
        assert seen == [EV_TIMEOUT]
        ev.delete()


def _add_fd_not_open(base_factory: BaseFactory, caplog: Any) -> None:
    base = base_factory()  # first: the base's own fds must not reuse the closed number
    a, b = base_factory.socketpair()
    x, y = base_factory.socketpair()
    fd = a.fileno()
    a.close()
    ev = Event(base, fd, EV_READ, _noop)
    with caplog.at_level(logging.WARNING, logger="evcore"):
        try:
            ev.add()
        except OSError:  # pragma: no cover - a backend checking fds at add (none of ours does)
            assert ev.pending() == 0
        else:
            seen: list[int] = []
            other = Event(base, x, EV_READ, lambda fd_, what, arg: seen.append(what))
            other.add()
            y.send(b"x")
            run(base, EVLOOP_ONCE)
            run(base, EVLOOP_NONBLOCK)  # in case the warning came in a pass of its own
            assert _warned_about(caplog, fd)
            assert ev.pending() == 0
            assert seen == [EV_READ]
    assert base.num_events() == 0


def test_add_fd_not_open(base_factory: BaseFactory, caplog: Any) -> None:
    """An event on an fd that is not open: ``OSError`` from ``add``, or a warning naming it and dropped."""
    _add_fd_not_open(base_factory, caplog)


def test_debug_mode_add_fd_not_open(base_factory: BaseFactory, caplog: Any) -> None:
    """The same in debug mode (the fd cannot be identified when it is added)."""
    with _debug_mode():
        _add_fd_not_open(base_factory, caplog)


def _reinit_roundtrip(base_factory: BaseFactory, flags: int) -> None:
    a, b = base_factory.socketpair()
    clock = FakeClock()
    base = base_factory(clock=clock, flags=flags)
    seen: list[str] = []
    def rd_cb(fd: int, what: int, arg: Any) -> None:
        seen.append("read")
        a.recv(10)

    rd = Event(base, a, EV_READ | EV_PERSIST, rd_cb)
    rd.add()
    t = Event.timer(base, lambda *x: seen.append("timer"))
    t.add(1.0)
    sig = Event.signal(base, signal.SIGUSR2, lambda *x: seen.append("signal"))
    sig.add()
    assert run(base, EVLOOP_NONBLOCK) == 0
    base.reinit()
    base.reinit()  # twice is fine
    b.send(b"x")
    signal.raise_signal(signal.SIGUSR2)
    clock.advance(1.0)
    assert run(base, EVLOOP_NONBLOCK) == 0
    assert sorted(seen) == ["read", "signal", "timer"]
    rd.delete()
    sig.delete()


def test_reinit_without_fork(base_factory: BaseFactory) -> None:
    """``reinit()`` in the same process (libevent allows it) keeps fd, timer and signal events working."""
    _reinit_roundtrip(base_factory, 0)


def test_reinit_nolock_base(base_factory: BaseFactory) -> None:
    """The same on a ``BaseFlag.NOLOCK`` base (no thread-wakeup fd to replace)."""
    _reinit_roundtrip(base_factory, BaseFlag.NOLOCK)
