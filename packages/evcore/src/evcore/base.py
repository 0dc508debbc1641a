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
import os
import threading
from collections import deque
from collections.abc import Callable
from threading import get_ident
from typing import Any

from . import backend as _backend
from ._basestate import _IOMASK, EV_ET, EV_PERSIST, EV_SIGNAL, EV_TIMEOUT, _Clock, _NoLock, log
from .backend import Backend
from .config import EventConfig
from .debug import _state as _debug_state
from .debug import fatal
from .deferral import Deferral
from .dispatch import Dispatcher
from .errors import BackendUnavailable, EventError
from .event import F_ACTIVE, F_INSERTED, F_STALE, F_TIMEOUT, Event
from .flags import BaseFlag, Feature
from .fork import ForkSupport
from .introspect import Introspection
from .signals import SignalState
from .timers import CommonTimeout, TimerHeap

__all__ = ["EventBase", "fatal"]

_MAX_COMMON_TIMEOUTS = 256


class EventBase(Introspection, Deferral, ForkSupport, Dispatcher):
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
        if config.flags & BaseFlag.NOLOCK:
            self._lock = _NoLock()
            self._cond = None
        else:
            rlock = threading.RLock()
            self._lock = rlock
            self._cond = threading.Condition(rlock)
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
        self._running_pri = -1  # priority of the queue being run (-1: none)
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
        if os.environ.get("EVENT_SHOW_METHOD"):  # IGNORE_ENV covers EVENT_NO* only, as libevent
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

    def gettimeofday_cached(self) -> float:
        """Wall-clock time (``time.time()`` semantics), cached once per loop iteration.

        >>> import time
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
            for ev in self._user_events():
                # libevent writes out of bounds here; clamp to the least urgent queue
                if ev._pri >= npriorities:
                    ev._pri = npriorities - 1
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
            ct = CommonTimeout(seconds, self)
            self._commons.append(ct)
            return ct

    # ------------------------------------------------------------------ add / del
    # ------------------------------------------------------------------ signals
    # ------------------------------------------------------------------ activation
    # ------------------------------------------------------------------ the loop
    # ------------------------------------------------------------------ debug-mode fd checks
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
    def set_exception_handler(
        self, handler: Callable[[EventBase, BaseException, Event | None], object] | None
    ) -> None:
        """Call ``handler(base, exc, event)`` for an exception from a callback and keep looping.

        Without a handler (the default) the exception propagates out of ``loop()``.
        """
        self._exc_handler = handler

    # ------------------------------------------------------------------ introspection
    # ------------------------------------------------------------------ fork
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
