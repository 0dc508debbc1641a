"""Timer benchmarks: many one-shot timers, half of them cancelled before they fire.

Facts and theory of operation
-----------------------------
Every scenario schedules ``n`` one-shot timers one after another, cancels a seeded
random half of them (after all are scheduled, before any could run), then lets the
loop run until every remaining timer has fired.  The cost per timer is the time from
the first schedule to the return of the loop, divided by ``n`` (all timers, cancelled
ones included).

Scenarios (each run on a fresh loop/base):

``random``
    deadlines drawn uniformly from ``[0, spread)`` (seeded): evcore's heap
    (``Event.timer(base, cb).add(seconds)``, ``ev.delete()``) against asyncio's
    ``loop.call_later(seconds, cb)`` / ``handle.cancel()`` and uvloop's.
``equal``
    every timer gets the same duration: evcore with a common timeout
    (``t = base.init_common_timeout(d)``, created before the clock starts, then
    ``ev.add(t)``), evcore's heap with the plain float, asyncio and uvloop.
``*-reuse``
    the evcore rows again with the events created before the clock starts, so only
    ``add``/``delete``/firing is timed: libevent's usual pattern (an event per
    connection, re-armed again and again; ``call_later`` has no such counterpart, it
    makes a new handle each time).  Information only: the targets are judged on the
    rows that create an event per timer, as ``call_later`` creates a handle.
``sched-cancel`` and ``sched-cancel-equal``
    schedule all ``n`` then cancel all ``n``; no timer fires.  One non-blocking loop
    pass follows inside the measured window, because asyncio cancels lazily and pays
    for dropping cancelled handles in its next ``_run_once``; evcore pays at
    ``delete()``.  Counting the pass charges each implementation its whole bill.

Wall time and CPU time (``time.process_time``: user + system time of this process) are
both recorded.  The targets are judged on **CPU time**: the last timers' deadlines lie
up to ``spread`` seconds after the last schedule, so the wall time of the fire
scenarios includes an idle tail that the benchmark sets, not the implementation, and
that would pull every ratio toward 1.  CPU time is also what other processes sharing
the machine disturb least.  The callbacks are equally lean: count, and stop the loop
when the last expected timer fires.  After the clock stops the loop runs again
(untimed) past every deadline, and the number of callbacks must equal the number of
timers not cancelled, so a cancelled timer that fires is caught.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TimerWork", "TimerImpl", "implementations", "SCENARIOS"]

SCENARIOS = ("random", "equal", "sched-cancel", "sched-cancel-equal")


class TimerWork:
    """The seeded input of one scenario: durations and which indices get cancelled."""

    def __init__(self, scenario: str, n: int, spread: float, seed: int) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown timer scenario {scenario!r}")
        rng = random.Random(seed)
        self.scenario = scenario
        self.n = n
        self.spread = spread
        self.equal = scenario.endswith("equal")
        self.fire = not scenario.startswith("sched-cancel")
        if self.equal:
            self.durations = [spread] * n
        else:
            self.durations = [rng.random() * spread for _ in range(n)]
        if self.fire:
            self.cancel = sorted(rng.sample(range(n), n // 2))
        else:
            self.cancel = list(range(n))
        self.expected = n - len(self.cancel)


#: A run: work -> (wall seconds, cpu seconds), both for all ``work.n`` timers.
RunFn = Callable[[TimerWork], tuple[float, float]]


class TimerImpl:
    """One way of scheduling timers: a name, the scenarios it runs, a run function."""

    def __init__(self, name: str, scenarios: tuple[str, ...], run: RunFn) -> None:
        self.name = name
        self.scenarios = scenarios
        self.run = run

    def __repr__(self) -> str:
        return f"<TimerImpl {self.name}>"


def _check(name: str, fired: int, work: TimerWork) -> None:
    if fired != work.expected:
        raise AssertionError(f"{name}/{work.scenario}: {fired} timers fired, expected {work.expected}")


# ---------------------------------------------------------------------------
# evcore


def _evcore_run(common: bool, reuse: bool = False) -> RunFn:
    def run(work: TimerWork) -> tuple[float, float]:
        import evcore

        base = evcore.EventBase()
        timer = evcore.Event.timer
        target = work.expected
        fired = 0

        def cb(fd: int, what: int, arg: Any) -> None:
            nonlocal fired
            fired += 1
            if fired == target:
                stop()

        stop = base.loopbreak
        durations: list[Any]
        if common:
            durations = [base.init_common_timeout(work.spread)] * work.n
        else:
            durations = work.durations
        events: list[Any] = []
        append = events.append
        cancel = work.cancel
        if reuse:
            events = [timer(base, cb) for _ in range(work.n)]
        try:
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            if reuse:
                for ev, d in zip(events, durations, strict=True):
                    ev.add(d)
            else:
                for d in durations:
                    ev = timer(base, cb)
                    ev.add(d)
                    append(ev)
            for i in cancel:
                events[i].delete()
            if work.fire:
                base.loop()
            else:
                base.loop(evcore.EVLOOP_NONBLOCK)
            t1 = time.perf_counter()
            c1 = time.process_time()
            # untimed: let anything still pending run, then check the count
            base.loop()
        finally:
            base.free()
        _check("evcore", fired, work)
        return t1 - t0, c1 - c0

    return run


def evcore_impls() -> list[TimerImpl]:
    """evcore's heap timers and its common timeouts, or none when evcore is missing."""
    try:
        import evcore  # noqa: F401
    except ImportError:
        return []
    equal = ("equal", "sched-cancel-equal")
    return [
        TimerImpl("evcore", SCENARIOS, _evcore_run(common=False)),
        TimerImpl("evcore-common", equal, _evcore_run(common=True)),
        TimerImpl("evcore-reuse", SCENARIOS, _evcore_run(common=False, reuse=True)),
        TimerImpl("evcore-common-reuse", equal, _evcore_run(common=True, reuse=True)),
    ]


# ---------------------------------------------------------------------------
# asyncio and uvloop


def _asyncio_run(new_loop: Callable[[], asyncio.AbstractEventLoop]) -> RunFn:
    def run(work: TimerWork) -> tuple[float, float]:
        loop = new_loop()
        target = work.expected
        fired = 0

        def cb() -> None:
            nonlocal fired
            fired += 1
            if fired == target:
                stop()

        stop = loop.stop
        call_later = loop.call_later
        handles: list[Any] = []
        append = handles.append
        cancel = work.cancel
        try:
            gc.collect()
            c0 = time.process_time()
            t0 = time.perf_counter()
            for d in work.durations:
                append(call_later(d, cb))
            for i in cancel:
                handles[i].cancel()
            if not work.fire:
                loop.call_soon(stop)
            loop.run_forever()
            t1 = time.perf_counter()
            c1 = time.process_time()
            # untimed: run past every deadline, then check the count
            loop.call_later(work.spread + 0.01, loop.stop)
            loop.run_forever()
        finally:
            loop.close()
        _check("asyncio", fired, work)
        return t1 - t0, c1 - c0

    return run


def reference_impls() -> list[TimerImpl]:
    """asyncio, and uvloop when importable."""
    out = [TimerImpl("asyncio", SCENARIOS, _asyncio_run(asyncio.SelectorEventLoop))]
    try:
        import uvloop
    except ImportError:
        pass
    else:
        out.append(TimerImpl("uvloop", SCENARIOS, _asyncio_run(uvloop.new_event_loop)))
    return out


def implementations() -> list[TimerImpl]:
    """Every timer implementation available in this process, references first."""
    return reference_impls() + evcore_impls()
