"""The loop of :class:`evcore.EventBase` (libevent's ``event_base_loop``).

See :mod:`evcore.base` for the pass structure and the invariants it keeps.
"""

from __future__ import annotations

from collections import deque
from threading import get_ident
from typing import Any

from ._basestate import (
    _IDENTITY,
    EV_TIMEOUT,
    EVLOOP_NO_EXIT_ON_EMPTY,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
    log,
)
from .backend import BADFD
from .debug import _state as _debug_state
from .errors import EventError
from .event import F_ACTIVE, F_INSERTED, F_ONESHOT, F_STALE, F_TIMEOUT, Event
from .evmap import EventMap
from .timers import CommonTimeout

__all__ = ["Dispatcher"]

_NOT_RUNNING = -1  # no queue running: no activation can be "more urgent"


class Dispatcher(EventMap):
    """The loop: waiting, activating and running callbacks."""

    def loop(self, flags: int = 0) -> int:
        """Run the loop (libevent's ``event_base_loop``).

        Returns 0 after ``loopexit``/``loopbreak``/``EVLOOP_ONCE``/``EVLOOP_NONBLOCK``
        ends it, 1 when no events were pending, -1 when the backend failed beyond
        recovery (logged).  An exception from a callback propagates (see
        :meth:`set_exception_handler`).

        >>> from evcore import *

        >>> with EventBase(method="select") as base:
        ...     base.loop(EVLOOP_NONBLOCK)
        1
        """
        lock = self._lock
        with lock:
            if self._running:
                raise EventError("reentrant invocation of EventBase.loop() is not allowed")
            if self._freed:
                raise EventError("loop() on a freed base")
            self._running = True
            self._loop_thread = get_ident()
            self._gotterm = self._break = False
            if self._sigmap and self._signals is not None and not self._signals.owning:
                self._signals.take()
        lock.acquire()
        try:
            return self._loop(flags)
        finally:
            self._now = None
            self._running = False
            self._sleeping = False
            self._loop_thread = None
            self._current = None
            lock.release()

    def _loop(self, flags: int) -> int:
        lock = self._lock
        be = self._backend
        clock = self._clock
        fake = self._fake_clock
        nonblock = flags & EVLOOP_NONBLOCK
        once = flags & EVLOOP_ONCE
        keep = flags & EVLOOP_NO_EXIT_ON_EMPTY
        table = be.raw_table
        wait = be.dispatch_raw if table is not None else be.dispatch  # type: ignore[attr-defined]
        if table is None:
            table = _IDENTITY
        activeqs = self._activeqs
        debug = _debug_state["debug"]
        while True:
            if self._gotterm or self._break:
                return 0
            self._continue = self._stop_pass = False
            self._attention = self._waiters > 0
            if self._changes:
                # before deciding how long to sleep: a refused fd may leave nothing pending
                self._flush_changes()
            if not (self._npending or self._nactive or self._nvirtual or self._deferred or keep):
                return 1
            if activeqs is not self._activeqs:
                activeqs = self._activeqs
            if self._nactive or self._deferred or nonblock:
                timeout: float | None = 0.0
            else:
                deadline = self._next_deadline()
                if deadline is None:
                    timeout = None
                else:
                    timeout = deadline - clock.monotonic()
                    if timeout < 0:
                        timeout = 0.0
                    elif fake:
                        if getattr(clock, "autojump", False):
                            clock.advance(timeout)
                        timeout = 0.0
            if debug:
                self._debug_check_fds()
            self._now = None
            self._sleeping = True
            lock.release()
            try:
                fired = wait(timeout)
            except OSError as exc:
                lock.acquire()
                self._sleeping = False
                log.error("evcore: %s dispatch failed: %s", self.method, exc)
                return -1
            except BaseException:
                # KeyboardInterrupt, or whatever a Python signal handler raised while the
                # backend waited (PEP 475 runs handlers inside the call): leave loop() with
                # the lock held, as every other exit does, and the base usable
                lock.acquire()
                self._sleeping = False
                raise
            lock.acquire()
            self._sleeping = False
            if self._cache_time:
                self._now = clock.monotonic()
                self._now_wall = None
            it = iter(fired)
            ran = 0
            if not activeqs[0] and len(activeqs) == 1 and not self._stop_pass:
                ran = self._run_direct(it, table)
            self._activate_fired(it, table)
            self._expire_timers(self._now if self._now is not None else clock.monotonic())
            if self._nactive and not self._stop_pass:
                ran += self._process_active()
            if self._deferred:
                self._run_deferred()
            if ran:
                if once and not self._nactive:
                    return 0
            elif nonblock:
                return 0

    def _activate_fired(self, it: Any, table: list[int]) -> None:
        """Queue the events for the ``(fd, raw)`` pairs left in ``it`` (lock held)."""
        fdone = self._fdone
        activeqs = self._activeqs
        n = 0
        for fd, raw in it:
            what = table[raw]
            ev = fdone.get(fd)
            if ev is not None and what < BADFD:
                bits = ev.events & what
                if bits:
                    fl = ev._flags
                    if not fl & (F_ACTIVE | F_STALE):
                        ev._flags = fl | F_ACTIVE
                        ev._res = bits
                        activeqs[ev._pri].append(ev)
                        n += 1
                    elif fl & F_ACTIVE:
                        ev._res |= bits
                    else:
                        self._activate_nolock(ev, bits, 1)
                continue
            self._activate_slow(fd, what)
        self._nactive += n

    def _activate_slow(self, fd: int, what: int) -> None:
        """Several events on ``fd``, an internal fd, or ``BADFD`` (lock held)."""
        evs = self._fdmap.get(fd)
        if evs is None or what >= BADFD:
            handler = self._internal.get(fd)
            if handler is not None:
                handler()
            elif what >= BADFD:
                self._bad_fd(fd)
            else:
                self._backend.stale(fd)
            return
        for ev in evs:
            bits = ev.events & what
            if bits:
                self._activate_nolock(ev, bits, 1)

    def _run_direct(self, it: Any, table: list[int]) -> int:
        """Run the callbacks of fired single-event fds straight from the backend's result.

        Used when there is one priority and nothing was queued before this pass, so
        the order is the one the active queue would give.  An event deleted by an
        earlier callback of the pass is gone from the fd index and is not run, as
        libevent's rule for deleted active events requires.  Anything that is not
        the plain case (several events on the fd, an internal fd, an event already
        active) is queued and runs later in the pass.  When a callback raises or
        asks for a break, the pairs not yet handled are queued, so nothing is lost.
        """
        self._running_pri = 0
        try:
            return self._run_direct_inner(it, table, 0)
        finally:
            self._running_pri = _NOT_RUNNING

    def _run_direct_inner(self, it: Any, table: list[int], count: int) -> int:
        fdone = self._fdone
        lock = self._lock
        release = lock.release
        acquire = lock.acquire
        for fd, raw in it:
            what = table[raw]
            ev = fdone.get(fd)
            if ev is None or what >= BADFD:
                self._activate_slow(fd, what)
                continue
            res = ev.events & what
            if not res:
                continue
            fl = ev._flags
            if fl & (F_ACTIVE | F_STALE | F_TIMEOUT | F_ONESHOT):
                if fl & (F_ACTIVE | F_STALE):
                    if fl & F_ACTIVE:
                        ev._res |= res
                    else:
                        self._activate_nolock(ev, res, 1)
                    continue
                if fl & F_ONESHOT:
                    self._del_nolock(ev)
                else:
                    self._persist_reschedule(ev, res)
            self._current = ev
            count += 1
            release()
            try:
                ev.callback(ev.fd, res, ev.arg)  # type: ignore[misc]
            except BaseException as exc:
                acquire()
                self._callback_raised(exc, ev, it, table)
            else:
                acquire()
                # _current stays stale until the next release point sets it again: the
                # lock is never released without updating it first, so no other thread
                # can see the stale value
                if self._attention:
                    self._current = None
                    if self._waiters:
                        self._cond.notify_all()  # type: ignore[union-attr]
                    if self._stop_pass:
                        break
        self._current = None
        return count

    def _callback_raised(self, exc: BaseException, ev: Event, rest: Any = None, table: Any = None) -> None:
        """A callback raised ``exc`` (lock held): hand it to the exception handler, or re-raise.

        Before the exception leaves, the backend results not yet handled (``rest``, from
        the direct path) are queued, so their events run on the next ``loop()``.
        """
        self._current = None
        if self._waiters:
            self._cond.notify_all()  # type: ignore[union-attr]
        handler = self._exc_handler
        try:
            if handler is None or not isinstance(exc, Exception):
                raise exc
            self._lock.release()
            try:
                handler(self, exc, ev)
            finally:
                self._lock.acquire()
        except BaseException:
            if rest is not None:
                self._activate_fired(rest, table)
            raise

    def _process_active(self) -> int:
        """Run the most urgent non-empty queue; returns how many callbacks ran."""
        for pri, q in enumerate(self._activeqs):
            if q:
                self._running_pri = pri
                try:
                    return self._run_queue(q)
                finally:
                    self._running_pri = _NOT_RUNNING
        return 0  # pragma: no cover - only stale slots were queued

    def _run_queue(self, q: deque[Event]) -> int:
        lock = self._lock
        release = lock.release
        acquire = lock.acquire
        popleft = q.popleft
        count = 0
        while q:
            ev = popleft()
            fl = ev._flags
            if not fl & F_ACTIVE:
                ev._flags = fl & ~F_STALE
                continue
            ev._flags = fl = fl & ~F_ACTIVE
            self._nactive -= 1
            res = ev._res
            if fl & F_ONESHOT:
                if fl & (F_INSERTED | F_TIMEOUT):
                    self._del_nolock(ev)
            elif (fl & F_TIMEOUT or res & EV_TIMEOUT) and ev._timeout is not None:
                self._persist_reschedule(ev, res)
            self._current = ev
            count += 1
            release()
            try:
                ev.callback(ev.fd, res, ev.arg)  # type: ignore[misc]
            except BaseException as exc:
                acquire()
                self._callback_raised(exc, ev)
            else:
                acquire()
                self._current = None
                if self._attention:
                    if self._waiters:
                        self._cond.notify_all()  # type: ignore[union-attr]
                    if self._stop_pass:
                        break
                continue
            if self._stop_pass:
                break
        return count

    def _persist_reschedule(self, ev: Event, res: int) -> None:
        """Restart a persistent event's timeout before its callback runs (libevent's rule)."""
        timeout = ev._timeout
        duration = timeout.duration if type(timeout) is CommonTimeout else float(timeout)
        now = self._mono()
        entry = ev._tentry
        if res & EV_TIMEOUT and entry is None:
            # fired by its timeout: the next deadline counts from the old one
            deadline = ev._last_deadline + duration
        else:
            deadline = now + duration
        if deadline < now:
            deadline = now + duration
        fl = ev._flags
        self._schedule(ev, timeout, deadline)
        if not fl & F_TIMEOUT:
            ev._flags = fl | F_TIMEOUT
            if not fl & F_INSERTED:
                self._npending += 1

    def _run_deferred(self) -> None:
        lock = self._lock
        dq = self._deferred
        for _ in range(len(dq)):
            if not dq:  # pragma: no cover - drained by a reentrant free()
                break
            fn, args = dq.popleft()
            lock.release()
            try:
                fn(*args)
            except Exception as exc:
                handler = self._exc_handler
                if handler is None:
                    raise
                handler(self, exc, None)
            finally:
                lock.acquire()
            if self._break:
                break
