"""Which events wait for what: the fd, signal and timer maps of an event base (libevent's evmap.c).

Facts and theory of operation
-----------------------------
* ``_fdmap[fd]`` lists the inserted events on an fd and ``_fdone[fd]`` is the
  event when there is exactly one (the dispatch fast path reads only that);
  ``_kmask[fd]`` is the mask the backend was told.
* Interest changes go through ``_changes`` (libevent's changelist): for a backend
  with ``changelist`` they are applied just before the next dispatch, so
  disable-then-enable within one pass costs no system call; other backends get
  them at once, and their errors reach ``Event.add``.  When every event leaves an
  fd the fd is deleted and re-added even if the net mask ends up equal: it may
  have been closed and reused in between.
* Every method here runs with the base lock held.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from heapq import heappush
from threading import get_ident
from typing import Any

from ._basestate import (
    _IOMASK,
    _KMASK,
    EV_ET,
    EV_READ,
    EV_SIGNAL,
    EV_TIMEOUT,
    BaseState,
    log,
)
from .debug import _state as _debug_state
from .errors import EventError
from .event import F_ACTIVE, F_INIT, F_INSERTED, F_ONESHOT, F_STALE, F_TIMEOUT, Event
from .signals import SignalState
from .timers import CommonTimeout

__all__ = ["EventMap"]


class EventMap(BaseState):
    """Event registration, activation and timer scheduling (lock held)."""

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

    # ------------------------------------------------------------------ time
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

    def _mono(self) -> float:
        now = self._now
        if now is not None:
            return now
        return float(self._clock.monotonic())

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
            if timeout._owner is not self:
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
        """Activate the events whose timers are due at ``now`` (heap first, then common queues)."""
        heap = self._theap
        due: list[Event] | None = self._timers.pop_due(now) if heap and heap[0][0] <= now else None
        for ct in self._commons:
            q = ct._queue
            if q and q[0][0] <= now:
                if due is None:
                    due = []
                ct.pop_due(now, due)
        if not due:
            return
        n = 0
        queues = self._activeqs
        for ev in due:
            ev._last_deadline = ev._tentry[0]  # type: ignore[index]
            ev._tentry = None
            ev._tcommon = None
            fl = ev._flags & ~F_TIMEOUT
            if not fl & F_INSERTED:
                self._npending -= 1
            elif fl & F_ONESHOT:
                # a one-shot fd or signal event whose timeout fired is no longer pending
                ev._flags = fl
                self._remove_inserted(ev)
                fl = ev._flags
                self._npending -= 1
            if fl & (F_ACTIVE | F_STALE):
                ev._flags = fl
                self._activate_nolock(ev, EV_TIMEOUT, 1)
            else:
                ev._flags = fl | F_ACTIVE
                ev._res = EV_TIMEOUT
                queues[ev._pri].append(ev)
                n += 1
        self._nactive += n

    def _add_event(self, ev: Event, timeout: Any) -> None:
        with self._lock:
            if ev._pri >= self._npri:  # made before priority_init() shrank the queues
                ev._pri = self._npri - 1
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
                elif tt is CommonTimeout and timeout._owner is self and ev._tentry is None:
                    # inline common-timeout scheduling: O(1) append in deadline order
                    now = self._now
                    if now is None:
                        now = self._clock.monotonic()
                    deadline = now + timeout.duration
                    q = timeout._queue
                    if not q or q[-1][0] <= deadline:
                        entry = [deadline, ev]
                        q.append(entry)
                    else:
                        entry = timeout.push(deadline, ev)
                    ev._tentry = entry
                    ev._tcommon = timeout
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
        if not evs:
            del self._fdmap[fd]
            del self._fdone[fd]
            # every event left the fd: re-register it even if the net mask ends up
            # the same, since the fd may be closed and reused before the next dispatch
            self._changes[fd] = True
            if _debug_state["debug"]:
                self._check_ident(fd, forget=True)
        else:
            if len(evs) == 1:
                self._fdone[fd] = evs[0]
            if fd not in self._changes:
                self._changes[fd] = False
        if not self._use_changelist and not self._sleeping:
            try:
                self._apply_change(fd)
            except OSError:
                self._kmask.pop(fd, None)

    def _del_event(self, ev: Event, wait: bool = True) -> None:
        with self._lock:
            if wait and self._current is ev and self._loop_thread != get_ident() and self._cond is not None:
                self._waiters += 1
                self._attention = True
                try:
                    while self._current is ev:
                        self._cond.wait()
                finally:
                    self._waiters -= 1
            fl = ev._flags
            if fl & ~F_ONESHOT == F_INIT | F_TIMEOUT:
                # fast path: a pending pure timer (lazy deletion, O(1))
                entry = ev._tentry
                common = ev._tcommon
                if common is None:
                    entry[2] = None  # type: ignore[index]
                    timers = self._timers
                    timers._dead += 1
                    if timers._dead > 64 and timers._dead * 2 > len(self._theap):
                        timers.compact()
                else:
                    entry[1] = None  # type: ignore[index]
                    ev._tcommon = None
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

    def _activate_event(self, ev: Event, what: int, ncalls: int) -> None:
        with self._lock:
            if ev._pri >= self._npri:  # made before priority_init() shrank the queues
                ev._pri = self._npri - 1
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
        if ev._pri < self._running_pri:
            # a more urgent event than the queue being run: finish this callback, then
            # go back to the top so the urgent queue runs first (libevent 2.0.22)
            self._continue = self._stop_pass = self._attention = True
        ev._res = what
        ev._ncalls = ncalls if what & EV_SIGNAL else 0
        self._activeqs[ev._pri].append(ev)
        self._nactive += 1

    def _bad_fd(self, fd: int) -> None:
        log.warning("evcore: fd %d was closed behind the base's back (EBADF); dropping its events", fd)
        self._drop_fd(fd)

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
            log.warning("evcore: debug mode: fd %d was closed and reused while events were registered", fd)
            return False
        return True

    def _debug_check_fds(self) -> None:
        for fd in list(self._fdmap):
            if not self._check_ident(fd):
                self._drop_fd(fd)
