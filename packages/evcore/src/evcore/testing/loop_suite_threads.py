"""Loop conformance suite, part 5: threads, deferred callbacks and the pool (libevent's ``thread/``).

A base is safe to use from other threads: ``add``/``delete``/``active`` from any
thread wake a loop sleeping in another.  These tests use real threads and wait on
``threading.Event``\\ s with timeouts; the loop itself is bounded by :func:`run`.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

import pytest

from ..event import Event
from ..flags import EV_PERSIST, EV_READ, EV_TIMEOUT, EV_WRITE, EVLOOP_NO_EXIT_ON_EMPTY
from .loop_suite_support import BaseFactory, run

__all__ = [
    "test_thread_basic",
    "test_thread_add_wakes_loop",
    "test_thread_active_wakes_loop",
    "test_thread_delete_wakes_loop",
    "test_thread_delete_waits_for_running_callback",
    "test_delete_from_own_callback_does_not_wait",
    "test_thread_delete_waits_for_fd_callback",
    "test_thread_delete_waits_for_raising_callback",
    "test_deferred_queue_fifo",
    "test_deferred_from_threads",
    "test_deferred_after_pass_callbacks",
    "test_run_in_pool",
    "test_run_in_pool_exception",
    "test_run_in_pool_custom_executor",
    "test_thread_add_delete_stress",
]

_WAIT = 10.0


def _noop(fd: int, what: int, arg: Any) -> None:
    pass


def test_thread_basic(base_factory: BaseFactory) -> None:
    """``thread/basic``: many threads add timers to a base looping in the main thread and wait for them."""
    base = base_factory()
    nthreads, iterations = 8, 25
    lock = threading.Lock()
    count = [0]
    loop_thread = threading.get_ident()
    callback_threads: set[int] = set()

    def worker() -> None:
        done = threading.Event()

        def cb(fd: int, what: int, arg: Any) -> None:
            callback_threads.add(threading.get_ident())
            done.set()

        ev = Event.timer(base, cb)
        for _ in range(iterations):
            done.clear()
            ev.add(0.001)
            fired = done.wait(_WAIT)
            with lock:
                count[0] += fired
        with lock:
            if count[0] == nthreads * iterations:
                base.loopexit()

    keep = Event.timer(base, _noop)
    keep.add(1000)
    threads = [threading.Thread(target=worker) for _ in range(nthreads)]
    for t in threads:
        t.start()
    try:
        assert run(base, limit=30) == 0
    finally:
        for t in threads:
            t.join(_WAIT)
    assert count[0] == nthreads * iterations
    assert callback_threads == {loop_thread}
    keep.delete()


def _sleeping_loop(base: Any, action: Any) -> tuple[int, float]:
    """Run ``base``'s loop in this thread while ``action()`` runs in another after a short pause."""

    def later() -> None:
        time.sleep(0.05)
        action()

    t = threading.Thread(target=later)
    t0 = time.monotonic()
    t.start()
    try:
        rv = run(base, limit=10)
    finally:
        t.join(_WAIT)
    return rv, time.monotonic() - t0


def test_thread_add_wakes_loop(base_factory: BaseFactory) -> None:
    """An event added from another thread, on an fd that is already ready, wakes the sleeping loop."""
    a, _b = base_factory.socketpair()
    idle_a, _idle_b = base_factory.socketpair()
    base = base_factory()
    ran: list[str] = []
    idle = Event(base, idle_a, EV_READ | EV_PERSIST, _noop)
    idle.add()

    def cb(fd: int, what: int, arg: Any) -> None:
        ran.append("write")
        idle.delete()

    ev = Event(base, a, EV_WRITE, cb)
    rv, took = _sleeping_loop(base, ev.add)
    assert rv == 1 and ran == ["write"]
    assert took < 5


def test_thread_active_wakes_loop(base_factory: BaseFactory) -> None:
    """``active`` from another thread wakes the sleeping loop; the callback runs in the loop thread."""
    idle_a, _idle_b = base_factory.socketpair()
    base = base_factory()
    where: list[int] = []
    idle = Event(base, idle_a, EV_READ | EV_PERSIST, _noop)
    idle.add()

    def cb(fd: int, what: int, arg: Any) -> None:
        where.append(threading.get_ident())
        idle.delete()

    ev = Event.timer(base, cb)
    rv, took = _sleeping_loop(base, lambda: ev.active(EV_TIMEOUT))
    assert rv == 1 and where == [threading.get_ident()]
    assert took < 5


def test_thread_delete_wakes_loop(base_factory: BaseFactory) -> None:
    """Deleting the last event from another thread wakes the loop, which then returns 1 (nothing pending)."""
    idle_a, _idle_b = base_factory.socketpair()
    base = base_factory()
    idle = Event(base, idle_a, EV_READ | EV_PERSIST, _noop)
    idle.add()
    rv, took = _sleeping_loop(base, idle.delete)
    assert rv == 1
    assert took < 5


def test_thread_delete_waits_for_running_callback(base_factory: BaseFactory) -> None:
    """``delete()`` from another thread while the callback runs returns only after the callback returned."""
    base = base_factory()
    started = threading.Event()
    state: dict[str, Any] = {"finished": False, "seen_finished": None}

    def cb(fd: int, what: int, arg: Any) -> None:
        started.set()
        time.sleep(0.2)
        state["finished"] = True

    ev = Event.timer(base, cb)

    def deleter() -> None:
        if started.wait(_WAIT):
            ev.delete()
            state["seen_finished"] = state["finished"]

    t = threading.Thread(target=deleter)
    t.start()
    ev.active(EV_TIMEOUT)
    try:
        assert run(base) == 1
    finally:
        t.join(_WAIT)
    assert state["seen_finished"] is True


def test_delete_from_own_callback_does_not_wait(base_factory: BaseFactory) -> None:
    """A callback deleting its own event (persistent or not) returns at once."""
    a, _b = base_factory.socketpair()
    base = base_factory()
    calls: list[int] = []

    def cb(fd: int, what: int, ev: Event) -> None:
        ev.delete()
        ev.delete()
        calls.append(what)

    ev = Event(base, a, EV_WRITE | EV_PERSIST, cb)
    ev.arg = ev
    ev.add()
    assert run(base, limit=10) == 1
    assert calls == [EV_WRITE]


def test_deferred_queue_fifo(base_factory: BaseFactory) -> None:
    """``defer`` runs callables in FIFO order, in the loop thread, with their arguments."""
    base = base_factory()
    out: list[tuple[int, int]] = []
    for i in range(100):
        base.defer(lambda i, j: out.append((i, j)), i, i * i)
    assert run(base) == 1
    assert out == [(i, i * i) for i in range(100)]


def test_deferred_from_threads(base_factory: BaseFactory) -> None:
    """``deferred_cb_skew``: callables deferred from several threads all run, each thread's in order."""
    base = base_factory()
    nthreads, per = 4, 50
    out: list[tuple[int, int, int]] = []
    done = threading.Event()
    loop_ident = threading.get_ident()

    def record(t: int, i: int) -> None:
        out.append((t, i, threading.get_ident()))
        if len(out) == nthreads * per:
            done.set()
            base.loopbreak()

    def worker(t: int) -> None:
        for i in range(per):
            base.defer(record, t, i)
            if i % 10 == 0:
                time.sleep(0.001)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
    for t in threads:
        t.start()
    try:
        assert run(base, EVLOOP_NO_EXIT_ON_EMPTY, limit=20) == 0
    finally:
        for t in threads:
            t.join(_WAIT)
    assert done.is_set()
    for n in range(nthreads):
        assert [i for tt, i, _ in out if tt == n] == list(range(per))
    assert {ident for _, _, ident in out} == {loop_ident}


def test_deferred_after_pass_callbacks(base_factory: BaseFactory) -> None:
    """Callables deferred during a pass run after that pass's callbacks (including ones activated in it)."""
    base = base_factory()
    ran: list[str] = []
    b_ev = Event.timer(base, lambda *x: ran.append("B"))

    def a_cb(fd: int, what: int, arg: Any) -> None:
        ran.append("A")
        base.defer(ran.append, "deferred")
        b_ev.active(EV_TIMEOUT)

    Event.timer(base, a_cb).active(EV_TIMEOUT)
    assert run(base) == 1
    assert ran == ["A", "B", "deferred"]


def test_run_in_pool(base_factory: BaseFactory) -> None:
    """``run_in_pool`` runs the function on another thread; its future reaches the loop thread."""
    base = base_factory()
    loop_ident = threading.get_ident()
    got: list[tuple[Any, int, int]] = []

    def work(x: int, y: int) -> tuple[int, int]:
        return x + y, threading.get_ident()

    def done(fut: concurrent.futures.Future[Any]) -> None:
        value, ident = fut.result()
        got.append((value, ident, threading.get_ident()))

    fut = base.run_in_pool(work, 2, 3, callback=done)
    assert isinstance(fut, concurrent.futures.Future)
    assert run(base) == 1  # the pending job kept the loop alive
    assert len(got) == 1
    value, worker_ident, cb_ident = got[0]
    assert value == 5
    assert worker_ident != loop_ident and cb_ident == loop_ident
    assert fut.result() == (5, worker_ident)
    assert base.num_events() == 0


def test_run_in_pool_exception(base_factory: BaseFactory) -> None:
    """An exception raised by the pooled function is in the future, never lost; no callback works too."""
    base = base_factory()
    futs: list[concurrent.futures.Future[Any]] = []

    def boom() -> None:
        raise ZeroDivisionError("in the pool")

    fut = base.run_in_pool(boom, callback=futs.append)
    bare = base.run_in_pool(lambda: 42)
    assert run(base) == 1
    assert futs == [fut]
    assert isinstance(fut.exception(), ZeroDivisionError)
    assert bare.result(0) == 42


def test_run_in_pool_custom_executor(base_factory: BaseFactory) -> None:
    """``run_in_pool(..., executor=ex)`` uses the given executor."""
    base = base_factory()
    names: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="suite-exec") as ex:
        base.run_in_pool(lambda: threading.current_thread().name, callback=lambda f: names.append(f.result()),
                         executor=ex)
        assert run(base) == 1
    assert len(names) == 1 and names[0].startswith("suite-exec")


def _delete_while_running(
    base: Any, ev: Event, started: threading.Event, state: dict[str, Any]
) -> threading.Thread:
    def deleter() -> None:
        if started.wait(_WAIT):
            ev.delete()
            state["seen_finished"] = state["finished"]

    t = threading.Thread(target=deleter)
    t.start()
    return t


def test_thread_delete_waits_for_fd_callback(base_factory: BaseFactory) -> None:
    """The same for an fd event (run straight from the backend's result where the base does that)."""
    a, b = base_factory.socketpair()
    base = base_factory()
    started = threading.Event()
    state: dict[str, Any] = {"finished": False, "seen_finished": None}

    def cb(fd: int, what: int, arg: Any) -> None:
        started.set()
        time.sleep(0.2)
        state["finished"] = True

    ev = Event(base, a, EV_WRITE | EV_PERSIST, cb)
    ev.add()
    t = _delete_while_running(base, ev, started, state)
    try:
        assert run(base) == 1  # the delete took the only event away
    finally:
        t.join(_WAIT)
    assert state["seen_finished"] is True


def test_thread_delete_waits_for_raising_callback(base_factory: BaseFactory) -> None:
    """A waiting ``delete()`` is released when the callback raises instead of returning."""
    base = base_factory()
    started = threading.Event()
    state: dict[str, Any] = {"finished": False, "seen_finished": None}

    def cb(fd: int, what: int, arg: Any) -> None:
        started.set()
        time.sleep(0.2)
        state["finished"] = True
        raise OSError("callback failed")

    ev = Event.timer(base, cb)
    ev.active(EV_TIMEOUT)
    t = _delete_while_running(base, ev, started, state)
    try:
        with pytest.raises(OSError, match="callback failed"):
            run(base)
    finally:
        t.join(_WAIT)
    assert state["seen_finished"] is True
    assert base.num_events() == 0


def test_thread_add_delete_stress(base_factory: BaseFactory) -> None:
    """Threads adding, activating and deleting fd events and timers during the loop leave it consistent."""
    base = base_factory()
    nthreads, rounds = 4, 300
    pairs = [base_factory.socketpair() for _ in range(nthreads)]
    fired = [0] * nthreads
    errors: list[BaseException] = []

    def cb(fd: int, what: int, i: int) -> None:
        fired[i] += 1

    looping = threading.Event()

    def worker(i: int) -> None:
        a, b = pairs[i]
        try:
            io_ev = Event(base, a, EV_WRITE | EV_PERSIST, cb, i)
            timer = Event.timer(base, cb, i)
            looping.wait(_WAIT)
            for n in range(rounds):
                io_ev.add()
                timer.add(0.0005)
                if n % 3 == 0:
                    timer.active(EV_TIMEOUT)
                time.sleep(0.0002)  # give the loop a chance to run them
                io_ev.delete()
                if n % 2:
                    timer.delete()
            io_ev.delete()
            timer.delete()
        except BaseException as exc:
            errors.append(exc)

    keep = Event.timer(base, _noop)
    keep.add(3600)
    Event.timer(base, lambda *x: looping.set()).add(0)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]

    def stopper() -> None:
        for t in threads:
            t.join(_WAIT * 3)
        keep.delete()

    for t in threads:
        t.start()
    watcher = threading.Thread(target=stopper)
    watcher.start()
    try:
        assert run(base, limit=60) == 1
    finally:
        watcher.join(_WAIT * 4)
    assert errors == []
    assert base.num_events() == 0
    assert sum(fired) > 0
