"""``EventBase``: the loop (libevent's ``event_base``).

Facts and theory of operation
-----------------------------
One pass of :meth:`EventBase.loop` is, as in libevent 2.0's ``event_base_loop``:

1. stop if ``loopexit``/``loopbreak`` were asked for;
2. compute how long to wait: 0 when callbacks are already queued (active events
   or deferred callbacks) or with ``EVLOOP_NONBLOCK``, else until the next timer
   (forever when there is none); leave with 1 when nothing at all is pending
   (unless ``EVLOOP_NO_EXIT_ON_EMPTY``);
3. flush the changelist (coalesced fd interest changes) into the backend, release
   the lock, wait in the backend, retake the lock, refresh the cached time;
4. activate the events whose fds fired, then the events whose timers expired;
5. run the callbacks of the most urgent non-empty priority queue *only*, including
   events activated into that queue while it runs; then the deferred callbacks
   that were queued before they started;
6. ``EVLOOP_ONCE`` ends after a pass that ran callbacks and left none queued;
   ``EVLOOP_NONBLOCK`` ends after a pass that found nothing active.

Invariants (each kept under ``_lock``):

* ``_fdmap[fd]`` lists the inserted events on ``fd``; ``_kmask[fd]`` is the mask the
  backend has been told; ``_changes[fd]`` (changelist) records, for fds whose
  wanted mask may differ from ``_kmask``, whether every event left the fd in
  between (then the fd is deleted and re-added even if the net mask is equal: the
  fd may have been closed and reused, libevent's changelist rule).
* an event is in at most one active queue once (``F_ACTIVE``); an event deleted
  while active leaves a stale slot (``F_STALE``) skipped when reached.
* ``_npending`` counts events that are inserted or have a timer; ``_nactive``
  counts active events; ``_nvirtual`` counts outstanding virtual events (pool
  jobs).  The loop is empty when all three and the deferred queue are zero.
* User callbacks run with the lock released and never inside ``backend.dispatch``.
* A callback that raises leaves the base consistent: everything it touched was
  settled before it ran; the exception leaves ``loop()`` (or goes to the handler
  set by :meth:`set_exception_handler`), and events still queued run on the next
  ``loop()``.
"""

from __future__ import annotations

import concurrent.futures
from heapq import heappush
import logging
import os
import threading
from threading import get_ident
import time
from collections import deque
from collections.abc import Callable
from typing import IO, Any

from . import backend as _backend
from .backend import BADFD, Backend
from .config import EventConfig
from .debug import _state as _debug_state
from .debug import fatal
from .errors import BackendUnavailable, EventError
from .event import F_ACTIVE, F_INIT, F_INSERTED, F_ONESHOT, F_STALE, F_TIMEOUT, Event
from .flags import BaseFlag, Feature
from . import flags as _flags
from .signals import SignalState
from .timers import CommonTimeout, TimerHeap

# plain ints on hot paths: IntFlag operators run Python code
EV_CLOSED = int(_flags.EV_CLOSED)
EV_ET = int(_flags.EV_ET)
EV_PERSIST = int(_flags.EV_PERSIST)
EV_READ = int(_flags.EV_READ)
EV_SIGNAL = int(_flags.EV_SIGNAL)
EV_TIMEOUT = int(_flags.EV_TIMEOUT)
EV_WRITE = int(_flags.EV_WRITE)
EVENT_BASE_COUNT_ACTIVE = int(_flags.EVENT_BASE_COUNT_ACTIVE)
EVENT_BASE_COUNT_ADDED = int(_flags.EVENT_BASE_COUNT_ADDED)
EVENT_BASE_COUNT_VIRTUAL = int(_flags.EVENT_BASE_COUNT_VIRTUAL)
EVLOOP_NO_EXIT_ON_EMPTY = int(_flags.EVLOOP_NO_EXIT_ON_EMPTY)
EVLOOP_NONBLOCK = int(_flags.EVLOOP_NONBLOCK)
EVLOOP_ONCE = int(_flags.EVLOOP_ONCE)

__all__ = ["EventBase"]

log = logging.getLogger("evcore")

_IOMASK = EV_READ | EV_WRITE | EV_CLOSED
_IDENTITY = list(range(2 * BADFD))
_KMASK = _IOMASK | EV_ET
_MAX_COMMON_TIMEOUTS = 256


class _NoLock:
    """Stand-in for the base lock under ``BaseFlag.NOLOCK``."""

    __slots__ = ()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return True

    def release(self) -> None:
        pass

    def __enter__(self) -> bool:
        return True

    def __exit__(self, *exc: object) -> None:
        pass


class _Clock:
    """The real clock: ``time.monotonic`` and ``time.time``."""

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


class EventBase:
    """An event loop over one backend (libevent's ``event_base``).

    >>> base = EventBase(method="select")
    >>> base.method, base.loop()
    ('select', 1)
    >>> base.free()
    """

    def __init__(
        self,
        config: EventConfig | None = None,
        *,
        method: str | None = None,
        clock: Any = None,
    ) -> None:
        if config is None:
            config = EventConfig()
        if method is not None:
            only = EventConfig()
            only.avoided = set(config.avoided)
            only.features = config.features
            only.flags = config.flags | BaseFlag.IGNORE_ENV
            only.only = method
            config = only
        self._config = config
        self.flags = config.flags
        self._lock: Any = _NoLock() if config.flags & BaseFlag.NOLOCK else threading.RLock()
        self._cond = threading.Condition(self._lock) if not config.flags & BaseFlag.NOLOCK else None
        self._fake_clock = clock is not None
        self._clock: Any = clock if clock is not None else _Clock
        self._cache_time = not config.flags & BaseFlag.NO_CACHE_TIME
        self._now: float | None = None
        self._now_wall: float | None = None
        self._backend_cls: type[Backend] | None = None
        self._backend: Backend = self._make_backend(config)
        self.method: str = self._backend.name
        self.features = Feature(self._backend.features)
        # event bookkeeping
        self._fdmap: dict[int, list[Event]] = {}
        self._fdone: dict[int, Event] = {}  # fds with exactly one event: the dispatch fast path
        self._kmask: dict[int, int] = {}
        self._changes: dict[int, bool] = {}
        self._use_changelist = self._backend.changelist
        self._sigmap: dict[int, list[Event]] = {}
        self._signals: SignalState | None = None
        self._internal: dict[int, Callable[[], None]] = {}
        self._idents: dict[int, tuple[int, int]] = {}
        self._timers = TimerHeap()
        self._theap = self._timers._heap
        self._tseq = self._timers._seq
        self._commons: list[CommonTimeout] = []
        self._npri = 1
        self._activeqs: list[deque[Event]] = [deque()]
        self._nactive = 0
        self._npending = 0
        self._nvirtual = 0
        self._deferred: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        # loop control
        self._running = False
        self._loop_thread: int | None = None
        self._sleeping = False
        self._gotterm = False
        self._break = False
        self._continue = False
        self._stop_pass = False
        self._attention = False  # stop_pass or waiters: one check per callback
        self._current: Event | None = None
        self._waiters = 0
        self._exc_handler: Callable[[EventBase, BaseException, Event | None], object] | None = None
        self._executor: concurrent.futures.Executor | None = None
        self._freed = False
        # cross-thread wakeup
        self._notify_r = -1
        self._notify_w = -1
        self._notified = False
        if not config.flags & BaseFlag.NOLOCK:
            self._make_notify()
        _debug_state["bases"] += 1
        if os.environ.get("EVENT_SHOW_METHOD") and not config.flags & BaseFlag.IGNORE_ENV:
            log.warning("libevent using: %s", self.method)

    # ------------------------------------------------------------------ setup
    def _make_backend(self, config: EventConfig) -> Backend:
        tried = []
        for cls in _backend.registered_backends():
            if not config.allows(cls.name, Feature(cls.features)):
                continue
            try:
                be = cls(self)
            except (BackendUnavailable, OSError) as exc:
                tried.append(f"{cls.name}: {exc}")
                continue
            self._backend_cls = cls
            return be
        detail = f" (tried {'; '.join(tried)})" if tried else ""
        raise EventError(f"no event backend satisfies {config!r}{detail}")

    def _make_notify(self) -> None:
        if hasattr(os, "eventfd"):
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._notify_r = self._notify_w = fd
        else:  # pragma: no cover - non-Linux
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._notify_r, self._notify_w = r, w
        self._add_internal(self._notify_r, self._drain_notify)

    def _add_internal(self, fd: int, handler: Callable[[], None]) -> None:
        self._internal[fd] = handler
        self._backend.add(fd, 0, EV_READ)

    def _drain_notify(self) -> None:
        try:
            os.read(self._notify_r, 8 if self._notify_r == self._notify_w else 4096)
        except (BlockingIOError, InterruptedError):
            pass
        self._notified = False

    def _notify(self) -> None:
        """Wake a loop sleeping in another thread (called with the lock held)."""
        if self._notified or self._notify_w < 0:
            return
        self._notified = True
        try:
            if self._notify_r == self._notify_w:
                os.eventfd_write(self._notify_w, 1)
            else:  # pragma: no cover - non-Linux
                os.write(self._notify_w, b"\0")
        except (BlockingIOError, InterruptedError):  # pragma: no cover - already pending
            pass

    # ------------------------------------------------------------------ time
    def _mono(self) -> float:
        now = self._now
        if now is not None:
            return now
        return float(self._clock.monotonic())

    def _update_time(self) -> None:
        if self._cache_time:
            self._now = float(self._clock.monotonic())
            self._now_wall = None

    def gettimeofday_cached(self) -> float:
        """Wall-clock time (``time.time()`` semantics), cached once per loop iteration.

        >>> with EventBase(method="select") as base:
        ...     abs(base.gettimeofday_cached() - time.time()) < 5
        True
        """
        if self._now is not None and self._now_wall is not None:
            return self._now_wall
        wall = float(self._clock.time())
        if self._now is not None:
            self._now_wall = wall
        return wall

    def update_cache_time(self) -> None:
        """Refresh the cached time now (only meaningful inside a callback)."""
        if self._now is not None:
            self._now = float(self._clock.monotonic())
            self._now_wall = None

    # ------------------------------------------------------------------ priorities
    def priority_init(self, npriorities: int) -> None:
        """Use ``npriorities`` priority queues (0 most urgent); events default to the middle one.

        Refused while events are active, as libevent.

        >>> with EventBase(method="select") as base:
        ...     base.priority_init(3)
        ...     base.npriorities
        3
        """
        if not 1 <= npriorities <= 256:
            raise ValueError("npriorities must be between 1 and 256")
        with self._lock:
            if self._nactive:
                raise EventError("cannot change priorities while events are active")
            self._npri = npriorities
            self._activeqs = [deque() for _ in range(npriorities)]

    @property
    def npriorities(self) -> int:
        """The number of priority queues."""
        return self._npri

    # ------------------------------------------------------------------ timers
    def init_common_timeout(self, seconds: float) -> CommonTimeout:
        """A shared duration for many events: O(1) scheduling (libevent's common timeouts).

        The same duration returns the same object.

        >>> with EventBase(method="select") as base:
        ...     base.init_common_timeout(5) is base.init_common_timeout(5.0)
        True
        """
        seconds = float(seconds)
        if seconds < 0:
            raise ValueError("a common timeout cannot be negative")
        with self._lock:
            for ct in self._commons:
                if ct.duration == seconds:
                    return ct
            if len(self._commons) >= _MAX_COMMON_TIMEOUTS:
                raise EventError(f"at most {_MAX_COMMON_TIMEOUTS} common timeouts per base")
            ct = CommonTimeout(seconds)
            self._commons.append(ct)
            return ct

    def _schedule(self, ev: Event, timeout: Any, deadline: float | None = None) -> None:
        """Put ``ev``'s timer at ``deadline`` (or now + timeout). Lock held."""
        entry = ev._tentry
        if entry is not None:
            common = ev._tcommon
            if common is None:
                self._timers.cancel(entry)
            else:
                common.cancel(entry)
        if type(timeout) is CommonTimeout:
            if timeout not in self._commons:
                raise EventError("that common timeout belongs to another base")
            if deadline is None:
                deadline = self._mono() + timeout.duration
            ev._tentry = timeout.push(deadline, ev)
            ev._tcommon = timeout
        else:
            if deadline is None:
                seconds = float(timeout)
                if seconds != seconds or seconds < 0:
                    raise ValueError(f"invalid timeout {timeout!r}")
                deadline = self._mono() + seconds
            ev._tentry = self._timers.push(deadline, ev)
            ev._tcommon = None
        ev._timeout = timeout

    def _unschedule(self, ev: Event) -> None:
        entry = ev._tentry
        if entry is not None:
            common = ev._tcommon
            if common is None:
                self._timers.cancel(entry)
            else:
                common.cancel(entry)
            ev._tentry = None
            ev._tcommon = None
        ev._timeout = None

    def _next_deadline(self) -> float | None:
        best = self._timers.next_deadline()
        for ct in self._commons:
            d = ct.next_deadline()
            if d is not None and (best is None or d < best):
                best = d
        return best

    def _expire_timers(self, now: float) -> None:
        due = self._timers.pop_due(now)
        for ct in self._commons:
            ct.pop_due(now, due)
        for ev in due:
            ev._last_deadline = ev._tentry[0]  # type: ignore[index]
            ev._tentry = None
            ev._tcommon = None
            fl = ev._flags & ~F_TIMEOUT
            if not ev.events & EV_PERSIST and fl & F_INSERTED:
                self._remove_inserted(ev)
                fl = ev._flags & ~F_TIMEOUT
            ev._flags = fl
            if not fl & F_INSERTED:
                self._npending -= 1
            self._activate_nolock(ev, EV_TIMEOUT, 1)

    # ------------------------------------------------------------------ add / del
    def _add_event(self, ev: Event, timeout: Any) -> None:
        with self._lock:
            fl = ev._flags
            if self._freed:
                raise EventError("event_add on a freed base")
            newly = not fl & (F_INSERTED | F_TIMEOUT)
            if not fl & F_INSERTED and ev.events & (_IOMASK | EV_SIGNAL):
                if ev.events & EV_SIGNAL:
                    self._sig_add(ev)
                else:
                    self._io_add(ev)
                fl = ev._flags = ev._flags | F_INSERTED
            if timeout is not None:
                tt = type(timeout)
                if tt is float or tt is int:
                    # inline heap scheduling: the common case for one-off timeouts
                    if not timeout >= 0:
                        raise ValueError(f"invalid timeout {timeout!r}")
                    entry = ev._tentry
                    if entry is not None:
                        if ev._tcommon is None:
                            self._timers.cancel(entry)
                        else:
                            ev._tcommon.cancel(entry)
                        ev._tcommon = None
                    now = self._now
                    if now is None:
                        now = self._clock.monotonic()
                    entry = [now + timeout, next(self._tseq), ev]
                    heappush(self._theap, entry)
                    ev._tentry = entry
                    ev._timeout = timeout
                else:
                    self._schedule(ev, timeout)
                fl = ev._flags = fl | F_TIMEOUT
            if newly and fl & (F_INSERTED | F_TIMEOUT):
                self._npending += 1
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def _io_add(self, ev: Event) -> None:
        fd = ev.fd
        evs = self._fdmap.get(fd)
        if evs is None:
            evs = self._fdmap[fd] = [ev]
            self._fdone[fd] = ev
            if _debug_state["debug"]:
                self._remember_ident(fd)
        else:
            if (evs[0].events ^ ev.events) & EV_ET:
                raise EventError(f"cannot mix edge-triggered and level-triggered events on fd {fd}")
            evs.append(ev)
            self._fdone.pop(fd, None)
        if fd not in self._changes:
            self._changes[fd] = False
        if not self._use_changelist and not self._sleeping:
            try:
                self._apply_change(fd)
            except OSError:
                evs.remove(ev)
                if not evs:
                    del self._fdmap[fd]
                    self._fdone.pop(fd, None)
                    self._idents.pop(fd, None)
                elif len(evs) == 1:
                    self._fdone[fd] = evs[0]
                self._changes.pop(fd, None)
                raise

    def _wanted_mask(self, fd: int) -> int:
        evs = self._fdmap.get(fd)
        if not evs:
            return 0
        mask = 0
        for e in evs:
            mask |= e.events
        return mask & _KMASK

    def _apply_change(self, fd: int) -> None:
        reset = self._changes.pop(fd)
        old = self._kmask.get(fd, 0)
        new = self._wanted_mask(fd)
        be = self._backend
        if reset and old and new:
            self._kmask.pop(fd, None)
            be.delete(fd, old, old)
            old = 0
        if new == old:
            return
        removed = old & ~new
        added = new & ~old
        if removed & _IOMASK and not new & _IOMASK:
            self._kmask.pop(fd, None)
            be.delete(fd, old, old)
            return
        if removed:
            be.delete(fd, old, removed)
            old &= ~removed
            self._kmask[fd] = old
        if added:
            be.add(fd, old, added)
        self._kmask[fd] = new

    def _flush_changes(self) -> None:
        changes = self._changes
        while changes:
            fd = next(iter(changes))
            try:
                self._apply_change(fd)
            except OSError as exc:
                log.warning("evcore: fd %d: %s; dropping its events", fd, exc)
                self._drop_fd(fd)

    def _drop_fd(self, fd: int) -> None:
        """Forget every event on ``fd`` (closed behind our back, or refused by the kernel)."""
        self._changes.pop(fd, None)
        old = self._kmask.pop(fd, 0)
        if old:
            try:
                self._backend.delete(fd, old, old)
            except OSError:
                pass
        self._fdone.pop(fd, None)
        for ev in self._fdmap.pop(fd, ()):
            fl = ev._flags & ~F_INSERTED
            ev._flags = fl
            if not fl & F_TIMEOUT:
                self._npending -= 1
        self._idents.pop(fd, None)

    def _remove_inserted(self, ev: Event) -> None:
        """Take ``ev`` out of the fd or signal map (lock held)."""
        ev._flags &= ~F_INSERTED
        fd = ev.fd
        if ev.events & EV_SIGNAL:
            evs = self._sigmap.get(fd)
            if evs is not None and ev in evs:
                evs.remove(ev)
                if not evs:
                    del self._sigmap[fd]
                    if self._signals is not None:
                        self._signals.unwatch(fd)
            return
        evs = self._fdmap.get(fd)
        if evs is None or ev not in evs:  # pragma: no cover - dropped by _drop_fd already
            return
        evs.remove(ev)
        if len(evs) == 1:
            self._fdone[fd] = evs[0]
        elif not evs:
            del self._fdmap[fd]
            del self._fdone[fd]
            # every event left the fd: re-register it even if the net mask ends up
            # the same, since the fd may be closed and reused before the next dispatch
            self._changes[fd] = True
            if _debug_state["debug"]:
                self._check_ident(fd, forget=True)
        elif fd not in self._changes:
            self._changes[fd] = False
        if not self._use_changelist and not self._sleeping:
            try:
                self._apply_change(fd)
            except OSError:
                self._kmask.pop(fd, None)

    def _del_event(self, ev: Event) -> None:
        with self._lock:
            if self._current is ev and self._loop_thread != get_ident() and self._cond is not None:
                self._waiters += 1
                self._attention = True
                try:
                    while self._current is ev:
                        self._cond.wait()
                finally:
                    self._waiters -= 1
            fl = ev._flags
            if fl & ~F_ONESHOT == F_INIT | F_TIMEOUT and ev._tcommon is None:
                # fast path: a pending pure timer
                self._timers.cancel(ev._tentry)  # type: ignore[arg-type]
                ev._tentry = None
                ev._timeout = None
                ev._flags = fl & ~F_TIMEOUT
                self._npending -= 1
            elif fl & (F_INSERTED | F_TIMEOUT | F_ACTIVE):
                self._del_nolock(ev)
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def _del_nolock(self, ev: Event) -> None:
        fl = ev._flags
        if fl & F_ACTIVE:
            ev._flags = fl = (fl & ~F_ACTIVE) | F_STALE
            self._nactive -= 1
        if fl & (F_INSERTED | F_TIMEOUT):
            self._npending -= 1
            if fl & F_TIMEOUT:
                self._unschedule(ev)
            if fl & F_INSERTED:
                self._remove_inserted(ev)
            ev._flags &= ~(F_INSERTED | F_TIMEOUT)

    def _remove_timer(self, ev: Event) -> None:
        with self._lock:
            fl = ev._flags
            if fl & F_TIMEOUT:
                self._unschedule(ev)
                ev._flags = fl & ~F_TIMEOUT
                if not fl & F_INSERTED:
                    self._npending -= 1

    # ------------------------------------------------------------------ signals
    def _sig_add(self, ev: Event) -> None:
        signum = ev.fd
        if self._signals is None:
            self._signals = SignalState()
            self._add_internal(self._signals.rfd, self._read_signals)
        evs = self._sigmap.get(signum)
        if evs is None:
            self._signals.watch(signum)
            self._sigmap[signum] = [ev]
        else:
            if not self._signals.owning:
                self._signals.watch(signum)
            evs.append(ev)

    def _read_signals(self) -> None:
        assert self._signals is not None
        for signum, count in self._signals.read().items():
            for ev in list(self._sigmap.get(signum, ())):
                self._activate_nolock(ev, EV_SIGNAL, count)

    # ------------------------------------------------------------------ activation
    def _activate_event(self, ev: Event, what: int, ncalls: int) -> None:
        with self._lock:
            self._activate_nolock(ev, what, ncalls)
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def _activate_nolock(self, ev: Event, what: int, ncalls: int) -> None:
        fl = ev._flags
        if fl & F_ACTIVE:
            ev._res |= what
            if what & EV_SIGNAL:
                ev._ncalls += ncalls
            return
        if fl & F_STALE:
            for q in self._activeqs:
                try:
                    q.remove(ev)
                    break
                except ValueError:
                    continue
            fl &= ~F_STALE
        ev._flags = fl | F_ACTIVE
        ev._res = what
        ev._ncalls = ncalls if what & EV_SIGNAL else 0
        self._activeqs[ev._pri].append(ev)
        self._nactive += 1

    # ------------------------------------------------------------------ the loop
    def loop(self, flags: int = 0) -> int:
        """Run the loop (libevent's ``event_base_loop``).

        Returns 0 after ``loopexit``/``loopbreak``/``EVLOOP_ONCE``/``EVLOOP_NONBLOCK``
        ends it, 1 when no events were pending, -1 when the backend failed beyond
        recovery (logged).  An exception from a callback propagates (see
        :meth:`set_exception_handler`).

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
        fdmap = self._fdmap
        fdone = self._fdone
        table = be.raw_table or _IDENTITY
        internal = self._internal
        activeqs = self._activeqs
        debug = _debug_state["debug"]
        while True:
            if self._gotterm or self._break:
                return 0
            self._continue = self._stop_pass = False
            self._attention = self._waiters > 0
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
            if self._changes:
                self._flush_changes()
            if debug:
                self._debug_check_fds()
            self._now = None
            self._sleeping = True
            lock.release()
            try:
                fired = be.dispatch(timeout)
            except OSError as exc:
                lock.acquire()
                self._sleeping = False
                log.error("evcore: %s dispatch failed: %s", self.method, exc)
                return -1
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
            if self._nactive:
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
        fdone = self._fdone
        lock = self._lock
        release = lock.release
        acquire = lock.acquire
        count = 0
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
                self._current = None
                if self._waiters:
                    self._cond.notify_all()  # type: ignore[union-attr]
                handler = self._exc_handler
                if handler is None or not isinstance(exc, Exception):
                    self._activate_fired(it, table)
                    raise
                release()
                try:
                    handler(self, exc, ev)
                except BaseException:
                    acquire()
                    self._activate_fired(it, table)
                    raise
                acquire()
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

    def _process_active(self) -> int:
        """Run the most urgent non-empty queue; returns how many callbacks ran."""
        for q in self._activeqs:
            if q:
                return self._run_queue(q)
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
            if not ev.events & EV_PERSIST:
                if fl & (F_INSERTED | F_TIMEOUT):
                    self._del_nolock(ev)
            elif fl & F_TIMEOUT or res & EV_TIMEOUT:
                if ev._timeout is not None:
                    self._persist_reschedule(ev, res)
            self._current = ev
            count += 1
            release()
            try:
                ev.callback(ev.fd, res, ev.arg)  # type: ignore[misc]
            except BaseException as exc:
                acquire()
                self._current = None
                if self._waiters:
                    self._cond.notify_all()  # type: ignore[union-attr]
                handler = self._exc_handler
                if handler is None or not isinstance(exc, Exception):
                    raise
                release()
                try:
                    handler(self, exc, ev)
                finally:
                    acquire()
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

    def _bad_fd(self, fd: int) -> None:
        log.warning("evcore: fd %d was closed behind the base's back (EBADF); dropping its events", fd)
        self._drop_fd(fd)

    # ------------------------------------------------------------------ debug-mode fd checks
    def _remember_ident(self, fd: int) -> None:
        try:
            st = os.fstat(fd)
        except OSError:
            return
        self._idents[fd] = (st.st_dev, st.st_ino)

    def _check_ident(self, fd: int, forget: bool = False) -> bool:
        ident = self._idents.pop(fd, None) if forget else self._idents.get(fd)
        if ident is None:
            return True
        try:
            st = os.fstat(fd)
        except OSError:
            log.warning("evcore: debug mode: fd %d was closed while events were registered on it", fd)
            return False
        if (st.st_dev, st.st_ino) != ident:
            log.warning("evcore: debug mode: fd %d was closed and reused while events were registered on it", fd)
            return False
        return True

    def _debug_check_fds(self) -> None:
        for fd in list(self._fdmap):
            if not self._check_ident(fd):
                self._drop_fd(fd)

    # ------------------------------------------------------------------ loop control
    def dispatch(self) -> int:
        """``loop(0)`` (libevent's ``event_base_dispatch``)."""
        return self.loop(0)

    def loopexit(self, delay: float | None = None) -> None:
        """End the loop after ``delay`` seconds (now if ``None``), once the current pass finishes.

        >>> with EventBase(method="select") as base:
        ...     base.loopexit(0.01)
        ...     base.loop(), base.got_exit()
        (0, True)
        """

        def _exit(fd: int, what: int, arg: Any) -> None:
            self._gotterm = True

        self.once(-1, EV_TIMEOUT, _exit, None, delay)

    def loopbreak(self) -> None:
        """End the loop after the callback that is running now (from any thread)."""
        with self._lock:
            self._break = self._stop_pass = self._attention = True
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def loopcontinue(self) -> None:
        """Stop running the current queue and go back to polling (libevent 2.1)."""
        with self._lock:
            self._continue = self._stop_pass = self._attention = True

    def got_exit(self) -> bool:
        """Whether the last loop ended through :meth:`loopexit`."""
        return self._gotterm

    def got_break(self) -> bool:
        """Whether the last loop ended through :meth:`loopbreak`."""
        return self._break

    def once(
        self,
        fd: Any,
        events: int,
        callback: Callable[[int, int, Any], object],
        arg: Any = None,
        timeout: float | CommonTimeout | None = None,
    ) -> None:
        """Run ``callback(fd, what, arg)`` once when ``events`` fire or ``timeout`` passes.

        With no fd events and no timeout it runs on the next pass.  ``EV_SIGNAL`` and
        ``EV_PERSIST`` are refused, as in libevent.

        >>> with EventBase(method="select") as base:
        ...     base.once(-1, EV_TIMEOUT, lambda fd, what, arg: print("once", arg), "x", 0.0)
        ...     base.loop()
        once x
        1
        """
        events = int(events)
        if events & (EV_SIGNAL | EV_PERSIST):
            raise EventError("once() does not take EV_SIGNAL or EV_PERSIST")
        ev = Event(self, fd if events & _IOMASK else -1, events & (_IOMASK | EV_ET), None)

        def _fire(fdn: int, what: int, _arg: Any) -> None:
            ev.callback = None
            callback(fdn, what, arg)

        ev.callback = _fire
        if events & _IOMASK or timeout is not None:
            ev.add(timeout)
        else:
            ev.active(EV_TIMEOUT)

    # ------------------------------------------------------------------ threads and deferral
    def defer(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` in the loop thread after this pass's callbacks (FIFO; any thread).

        >>> with EventBase(method="select") as base:
        ...     base.defer(print, "deferred")
        ...     base.loop()
        deferred
        1
        """
        with self._lock:
            self._deferred.append((fn, args))
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def run_in_pool(
        self,
        fn: Callable[..., Any],
        *args: Any,
        callback: Callable[[concurrent.futures.Future[Any]], object] | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on an executor thread; deliver the finished future to ``callback`` in the loop.

        The pending job keeps the loop running (a virtual event).  An exception
        raised by ``fn`` is in the future, never lost.

        >>> with EventBase(method="select") as base:
        ...     fut = base.run_in_pool(sum, [1, 2, 3], callback=lambda f: print(f.result()))
        ...     base.loop()
        6
        1
        """
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="evcore-pool"
                    )
                executor = self._executor
        with self._lock:
            self._nvirtual += 1
        future = executor.submit(fn, *args)

        def _deliver(fut: concurrent.futures.Future[Any]) -> None:
            with self._lock:
                self._nvirtual -= 1
            if callback is not None:
                callback(fut)

        future.add_done_callback(lambda fut: self.defer(_deliver, fut))
        return future

    def set_exception_handler(
        self, handler: Callable[[EventBase, BaseException, Event | None], object] | None
    ) -> None:
        """Call ``handler(base, exc, event)`` for an exception from a callback and keep looping.

        Without a handler (the default) the exception propagates out of ``loop()``.
        """
        self._exc_handler = handler

    # ------------------------------------------------------------------ introspection
    def _user_events(self) -> list[Event]:
        seen: dict[int, Event] = {}
        for evs in self._fdmap.values():
            for ev in evs:
                seen[id(ev)] = ev
        for evs in self._sigmap.values():
            for ev in evs:
                seen[id(ev)] = ev
        for ev in self._timers.items():
            seen[id(ev)] = ev
        for ct in self._commons:
            for ev in ct.items():
                seen[id(ev)] = ev
        for q in self._activeqs:
            for ev in q:
                if ev._flags & F_ACTIVE:
                    seen[id(ev)] = ev
        return list(seen.values())

    def foreach_event(self, fn: Callable[[Event], Any]) -> Any:
        """Call ``fn(event)`` for every added or active event; stop at the first true result and return it.

        >>> with EventBase(method="select") as base:
        ...     Event.timer(base, print).add(5)
        ...     base.foreach_event(lambda ev: ev.fd)
        -1
        """
        with self._lock:
            events = self._user_events()
        for ev in events:
            r = fn(ev)
            if r:
                return r
        return 0

    def num_events(
        self, flags: int = EVENT_BASE_COUNT_ACTIVE | EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_VIRTUAL
    ) -> int:
        """Count active (1), virtual (2) and/or added (4) events, as libevent 2.1.

        >>> with EventBase(method="select") as base:
        ...     Event.timer(base, print).add(5)
        ...     base.num_events(EVENT_BASE_COUNT_ADDED)
        1
        """
        n = 0
        if flags & EVENT_BASE_COUNT_ACTIVE:
            n += self._nactive
        if flags & EVENT_BASE_COUNT_VIRTUAL:
            n += self._nvirtual
        if flags & EVENT_BASE_COUNT_ADDED:
            n += self._npending
        return n

    def dump_events(self, file: IO[str]) -> None:
        """Write one line per inserted and one per active event to ``file`` (libevent's format, roughly)."""
        with self._lock:
            events = self._user_events()
        file.write("Inserted events:\n")
        for ev in events:
            if ev._flags & (F_INSERTED | F_TIMEOUT):
                parts = []
                for bit, name in ((EV_READ, "Read"), (EV_WRITE, "Write"), (EV_CLOSED, "EOF"),
                                  (EV_SIGNAL, "Signal"), (EV_PERSIST, "Persist"), (EV_ET, "ET")):
                    if ev.events & bit:
                        parts.append(f" {name}")
                dl = ev.deadline()
                tail = f" Timeout={dl:.6f}" if dl is not None else ""
                kind = "sig" if ev.events & EV_SIGNAL else "fd"
                file.write(f"  {ev!r} [{kind} {ev.fd}]{''.join(parts)}{tail}\n")
        file.write("Active events:\n")
        for ev in events:
            if ev._flags & F_ACTIVE:
                file.write(f"  {ev!r} [fd {ev.fd}] res={ev._res:#x}\n")

    # ------------------------------------------------------------------ fork
    def reinit(self) -> None:
        """Make the base usable in a forked child (libevent's ``event_reinit``).

        Rebuilds the backend when it does not survive ``fork()`` and re-adds every
        fd; replaces the thread-wakeup and signal pipes, which parent and child
        would otherwise share.
        """
        with self._lock:
            old_be = self._backend
            if old_be.need_reinit:
                try:
                    old_be.close()
                except OSError:  # pragma: no cover
                    pass
                assert self._backend_cls is not None
                self._backend = self._backend_cls(self)
                self._kmask.clear()
                for fd in self._fdmap:
                    self._changes[fd] = False
            # new private wakeup fds
            for fd in list(self._internal):
                if not old_be.need_reinit:
                    try:
                        self._backend.delete(fd, EV_READ, EV_READ)
                    except OSError:  # pragma: no cover
                        pass
            self._internal.clear()
            if self._notify_r >= 0:
                os.close(self._notify_r)
                if self._notify_w != self._notify_r:  # pragma: no cover - non-Linux
                    os.close(self._notify_w)
                self._notify_r = self._notify_w = -1
                self._notified = False
                self._make_notify()
            if self._signals is not None:
                old_sig = self._signals
                watched = list(self._sigmap)
                old_sig.close()
                self._signals = SignalState()
                self._add_internal(self._signals.rfd, self._read_signals)
                for signum in watched:
                    self._signals.watch(signum)
            if not self._use_changelist:
                self._flush_changes()

    # ------------------------------------------------------------------ teardown
    def free(self) -> None:
        """Release the backend, pipes and signal handlers now (idempotent).

        Events still pending are dropped, not run; their callbacks never run.
        """
        with self._lock:
            if self._freed:
                return
            self._freed = True
            for ev in self._user_events():
                fl = ev._flags
                if fl & F_TIMEOUT:
                    self._unschedule(ev)
                ev._flags = fl & ~(F_INSERTED | F_TIMEOUT | F_ACTIVE | F_STALE)
            for q in self._activeqs:
                q.clear()
            self._fdmap.clear()
            self._fdone.clear()
            self._sigmap.clear()
            self._changes.clear()
            self._kmask.clear()
            self._timers.clear()
            for ct in self._commons:
                ct.clear()
            self._deferred.clear()
            self._nactive = self._npending = 0
            if self._signals is not None:
                self._signals.close()
                self._signals = None
            if self._notify_r >= 0:
                os.close(self._notify_r)
                if self._notify_w != self._notify_r:  # pragma: no cover - non-Linux
                    os.close(self._notify_w)
                self._notify_r = self._notify_w = -1
            self._internal.clear()
            self._backend.close()
            executor, self._executor = self._executor, None
            _debug_state["bases"] = max(0, _debug_state["bases"] - 1)
        if executor is not None:
            executor.shutdown(wait=False)

    def __enter__(self) -> EventBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        try:
            return (
                f"<EventBase method={self.method!r} events={self._npending} "
                f"active={self._nactive} running={self._running}{' freed' if self._freed else ''}>"
            )
        except Exception:  # pragma: no cover - a repr must never raise
            return f"<EventBase at {id(self):#x}>"

    def _virtual_add(self) -> None:
        """Count an outstanding operation that should keep the loop alive (libevent's virtual events)."""
        with self._lock:
            self._nvirtual += 1

    def _virtual_del(self) -> None:
        """Undo :meth:`_virtual_add`."""
        with self._lock:
            self._nvirtual -= 1
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()


__all__ += ["fatal"]
