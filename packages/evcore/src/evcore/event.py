"""``Event``: one thing to wait for (an fd, a signal, a timeout), as libevent's ``struct event``.

Facts and theory of operation
-----------------------------
An event is *initialised* (assigned to a base, fd, flags and callback), then
*pending* once :meth:`Event.add` registers it, and *active* once what it waits
for happened and its callback is queued.  The state lives in ``_flags``:

* ``F_INSERTED`` -- registered in the base's fd map or signal map;
* ``F_TIMEOUT`` -- has a live timer entry (``_tentry``);
* ``F_ACTIVE`` -- queued in the base's active queue for its priority, with
  ``_res`` holding the bits that fired (OR'd over repeated activations);
* ``F_STALE`` -- deleted while active: its queue slot is left behind and skipped
  when reached (O(1) delete), or removed if it is activated again first;
* ``F_FREED`` -- :meth:`Event.free` was called;
* ``F_ONESHOT`` -- a copy of "not ``EV_PERSIST``", fixed at assignment.

The base holds pending and active events strongly, so an event nobody else
references still fires.  All state changes happen in :class:`evcore.EventBase`
under its lock; the methods here only check arguments and forward.

>>> from evcore import EventBase, Event, EV_TIMEOUT
>>> with EventBase(method="select") as base:
...     fired = []
...     ev = Event.timer(base, lambda fd, what, arg: fired.append(what))
...     ev.add(0)
...     _ = base.loop()
>>> fired == [EV_TIMEOUT]
True
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from threading import get_ident
from typing import TYPE_CHECKING, Any

from . import flags as _flags
from .debug import _state as _debug_state
from .errors import DebugModeError, EventError
from .flags import EV
from .timers import CommonTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .base import EventBase

# plain ints on hot paths: IntFlag operators run Python code
EV_CLOSED = int(_flags.EV_CLOSED)
EV_PERSIST = int(_flags.EV_PERSIST)
EV_READ = int(_flags.EV_READ)
EV_SIGNAL = int(_flags.EV_SIGNAL)
EV_WRITE = int(_flags.EV_WRITE)

__all__ = ["Event", "event_self_cbarg", "Callback"]

Callback = Callable[[int, int, Any], object]

F_INSERTED = 0x01
F_TIMEOUT = 0x02
F_ACTIVE = 0x04
F_STALE = 0x08
F_FREED = 0x20
F_INIT = 0x40
F_ONESHOT = 0x80  # not EV_PERSIST: lets dispatch test one word for the plain case

_SELF_ARG = object()
_IDLE_TIMER = F_INIT | F_ONESHOT
_NOT_TIMER = EV_SIGNAL | EV_READ | EV_WRITE | EV_CLOSED


def event_self_cbarg() -> object:
    """A sentinel: pass it as ``arg`` and the callback receives the event itself.

    >>> from evcore import EventBase, Event
    >>> with EventBase(method="select") as base:
    ...     ev = Event.timer(base, lambda fd, what, arg: None, event_self_cbarg())
    ...     ev.arg is ev
    True
    """
    return _SELF_ARG


def _fileno(fd: Any) -> int:
    if fd is None:
        return -1
    if isinstance(fd, int):
        return fd
    fileno = getattr(fd, "fileno", None)
    if fileno is None:
        raise TypeError(f"fd must be an int, None or have fileno(), not {type(fd).__name__}")
    n = fileno()
    if not isinstance(n, int):
        raise TypeError("fileno() did not return an int")
    return n


class Event:
    """An fd, signal or timer event bound to an :class:`evcore.EventBase`.

    ``callback(fd, what, arg)`` is called in the loop thread; ``fd`` is the int fd
    (the signal number for signals, -1 for timers) and ``what`` a plain int of the
    ``EV_*`` bits that fired (``EV_TIMEOUT`` when the timeout did).

    >>> import socket
    >>> from evcore import EventBase, EV_READ
    >>> a, b = socket.socketpair()
    >>> got = []
    >>> with EventBase(method="select") as base:
    ...     ev = Event(base, a, EV_READ, lambda fd, what, arg: got.append((what, arg)), "hi")
    ...     ev.add()
    ...     _ = b.send(b"x")
    ...     base.loop()
    1
    >>> got == [(EV_READ, "hi")]
    True
    >>> a.close(); b.close()
    """

    __slots__ = (
        "base",
        "fd",
        "events",
        "callback",
        "arg",
        "_fdobj",
        "_flags",
        "_res",
        "_pri",
        "_ncalls",
        "_tentry",
        "_tcommon",
        "_timeout",
        "_last_deadline",
        "__weakref__",
    )

    def __init__(
        self,
        base: EventBase | None = None,
        fd: Any = -1,
        events: int = 0,
        callback: Callback | None = None,
        arg: Any = None,
    ) -> None:
        self._res = 0
        self._ncalls = 0
        self._tentry: list[Any] | None = None
        self._tcommon: CommonTimeout | None = None
        self._timeout: Any = None
        self._last_deadline = 0.0
        if base is None:
            self.base: EventBase | None = None
            self.fd = -1
            self.events = 0
            self.callback: Callback | None = None
            self.arg: Any = None
            self._fdobj: Any = None
            self._flags = 0
            self._pri = 0
        elif type(fd) is int and not events & _NOT_TIMER and callable(callback):
            # fast path for timers (hot in servers that reset idle timeouts)
            self.base = base
            self.fd = fd
            self.events = events
            self.callback = callback
            self.arg = self if arg is _SELF_ARG else arg
            self._fdobj = None
            self._flags = F_INIT if events & EV_PERSIST else F_INIT | F_ONESHOT
            self._pri = base._npri >> 1
        else:
            self._flags = 0
            self.assign(base, fd, events, callback, arg)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def timer(cls, base: EventBase, callback: Callback, arg: Any = None) -> Event:
        """A pure timer event (libevent's ``evtimer_new``).

        >>> from evcore import EventBase
        >>> with EventBase(method="select") as base:
        ...     Event.timer(base, print).fd
        -1
        """
        if cls is not Event or not callable(callback):
            return cls(base, -1, 0, callback, arg)  # subclasses keep their __init__
        ev = cls.__new__(cls)
        ev.base = base
        ev.fd = -1
        ev.events = 0
        ev.callback = callback
        ev.arg = ev if arg is _SELF_ARG else arg
        ev._fdobj = None
        ev._flags = F_INIT | F_ONESHOT
        ev._res = 0
        ev._pri = base._npri >> 1
        ev._ncalls = 0
        ev._tentry = None
        ev._tcommon = None
        ev._timeout = None
        ev._last_deadline = 0.0
        return ev

    @classmethod
    def signal(cls, base: EventBase, signum: int, callback: Callback, arg: Any = None) -> Event:
        """A persistent signal event (libevent's ``evsignal_new``).

        >>> import signal
        >>> from evcore import EventBase, EV_SIGNAL, EV_PERSIST
        >>> with EventBase(method="select") as base:
        ...     ev = Event.signal(base, signal.SIGUSR1, print)
        ...     ev.events == EV_SIGNAL | EV_PERSIST
        True
        """
        return cls(base, signum, EV_SIGNAL | EV_PERSIST, callback, arg)

    def assign(
        self, base: EventBase, fd: Any, events: int, callback: Callback | None, arg: Any = None
    ) -> None:
        """(Re)initialise this event (libevent's ``event_assign``).

        Refuses ``EV_SIGNAL`` combined with ``EV_READ``/``EV_WRITE``/``EV_CLOSED``.
        Re-assigning a pending event is a bug: debug mode raises
        :class:`DebugModeError`; otherwise the event is deleted first.
        """
        if self._flags & (F_INSERTED | F_TIMEOUT | F_ACTIVE):
            if _debug_state["debug"]:
                raise DebugModeError(f"event_assign on an already pending event {self!r}")
            self.delete()
        events = int(events)
        if events & EV_SIGNAL and events & (EV_READ | EV_WRITE | EV_CLOSED):
            raise EventError("EV_SIGNAL cannot be combined with EV_READ, EV_WRITE or EV_CLOSED")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        n = _fileno(fd)
        if events & (EV_READ | EV_WRITE | EV_CLOSED) and n < 0:
            raise EventError(f"an EV_READ/EV_WRITE/EV_CLOSED event needs an fd, got {fd!r}")
        self.base = base
        self.fd = n
        self._fdobj = None if isinstance(fd, int) or fd is None else fd
        self.events = events
        self.callback = callback
        self.arg = self if arg is _SELF_ARG else arg
        self._flags = F_INIT if events & EV_PERSIST else F_INIT | F_ONESHOT
        self._res = 0
        self._ncalls = 0
        self._pri = base._npri // 2
        self._tentry = None
        self._tcommon = None
        self._timeout = None

    # -- the libevent calls ---------------------------------------------------------------
    def _checked_base(self, what: str) -> EventBase:
        base = self.base
        if base is None or not self._flags & F_INIT:
            if self._flags & F_FREED:
                raise (DebugModeError if _debug_state["debug"] else EventError)(
                    f"{what} on a freed event {self!r}"
                )
            raise (DebugModeError if _debug_state["debug"] else EventError)(
                f"{what} on an uninitialised event {self!r}"
            )
        return base

    def add(self, timeout: float | CommonTimeout | None = None) -> None:
        """Make the event pending, optionally with a timeout in seconds (or a common timeout).

        ``add`` on a pending event reschedules its timeout; ``add()`` without a
        timeout leaves an existing timeout in place, as libevent does.
        """
        base = self.base
        if base is None or not self._flags & F_INIT:
            base = self._checked_base("event_add")
        tt = type(timeout)
        idle_timer = self._flags | F_ONESHOT == _IDLE_TIMER and not self.events
        if idle_timer and (tt is float or tt is CommonTimeout):
            # fast path: an idle pure timer (servers arm and cancel these all the time)
            with base._lock:
                if self._flags | F_ONESHOT == _IDLE_TIMER and self._pri < base._npri and not base._freed:
                    now = base._now
                    if now is None:
                        now = base._clock.monotonic()
                    if tt is float:
                        seconds: float = timeout  # type: ignore[assignment]
                        if not seconds >= 0:  # negative or NaN
                            raise ValueError(f"invalid timeout {timeout!r}")
                        entry = [now + seconds, next(base._tseq), self]
                        heappush(base._theap, entry)
                    else:
                        if timeout._owner is not base:  # type: ignore[union-attr]
                            raise EventError("that common timeout belongs to another base")
                        deadline = now + timeout.duration  # type: ignore[union-attr]
                        q = timeout._queue  # type: ignore[union-attr]
                        if not q or q[-1][0] <= deadline:
                            entry = [deadline, self]
                            q.append(entry)
                        else:
                            entry = timeout.push(deadline, self)  # type: ignore[union-attr]
                        self._tcommon = timeout  # type: ignore[assignment]
                    self._tentry = entry
                    self._timeout = timeout
                    self._flags |= F_TIMEOUT
                    base._npending += 1
                    if base._sleeping and base._loop_thread != get_ident():
                        base._notify()
                    return
        base._add_event(self, timeout)

    def delete(self) -> None:
        """Make the event neither pending nor active; its callback will not run.

        Called from another thread while the callback runs, it waits for the
        callback to return (never when called from inside the callback).
        """
        base = self.base
        if base is None:
            if self._flags & F_FREED and _debug_state["debug"]:
                raise DebugModeError(f"event_del on a freed event {self!r}")
            return
        base._del_event(self)

    def del_noblock(self) -> None:
        """Like :meth:`delete`, but never waits for a callback running in another thread.

        libevent 2.1's ``event_del_noblock``: for code that holds a lock the callback
        also takes (bufferevents do), where waiting would deadlock.  The callback may
        then still run once after this returns; it must check its own state.

        >>> from evcore import EventBase
        >>> with EventBase(method="select") as base:
        ...     ev = Event.timer(base, print); ev.add(5.0); ev.del_noblock()
        ...     ev.pending()
        <EV: 0>
        """
        base = self.base
        if base is not None:
            base._del_event(self, False)

    def active(self, what: int, ncalls: int = 1) -> None:
        """Activate the event by hand with ``what`` (flags OR'd over repeated calls).

        ``ncalls`` matters only for signal events (see :attr:`ncalls`).
        """
        self._checked_base("event_active")._activate_event(self, int(what), ncalls)

    def pending(self, what: int = EV_READ | EV_WRITE | EV_SIGNAL | EV_CLOSED | 0x01) -> EV:
        """The flags among ``what`` for which the event is pending (or active).

        >>> from evcore import EventBase, EV_TIMEOUT
        >>> with EventBase(method="select") as base:
        ...     ev = Event.timer(base, print); ev.add(10)
        ...     ev.pending(EV_TIMEOUT), ev.pending(EV_READ)
        (<EV.TIMEOUT: 1>, <EV: 0>)
        """
        fl = self._flags
        bits = 0
        if fl & F_INSERTED:
            bits |= self.events & (EV_READ | EV_WRITE | EV_SIGNAL | EV_CLOSED)
        if fl & F_ACTIVE:
            bits |= self._res
        if fl & F_TIMEOUT:
            bits |= 0x01
        return EV(bits & int(what))

    def deadline(self) -> float | None:
        """The monotonic deadline of the pending timeout, or ``None``."""
        entry = self._tentry
        return None if entry is None else float(entry[0])

    def remove_timer(self) -> None:
        """Cancel only the timeout, leaving fd or signal interest in place."""
        self._checked_base("event_remove_timer")._remove_timer(self)

    def priority_set(self, priority: int) -> None:
        """Set the priority (0 is most urgent); refused while the event is active."""
        base = self._checked_base("event_priority_set")
        if not 0 <= priority < base._npri:
            raise ValueError(f"priority {priority} out of range 0..{base._npri - 1}")
        if self._flags & F_ACTIVE:
            raise EventError("cannot change the priority of an active event")
        self._pri = priority

    @property
    def priority(self) -> int:
        """The event's priority."""
        return self._pri

    @property
    def ncalls(self) -> int:
        """For a signal event: how many deliveries the current callback stands for."""
        return self._ncalls

    @property
    def initialized(self) -> bool:
        """Whether the event has been assigned (and not freed)."""
        return bool(self._flags & F_INIT)

    def free(self, *, block: bool = True) -> None:
        """Delete the event and release its references (idempotent).

        ``block=False`` deletes as :meth:`del_noblock` does.
        """
        if self.base is not None:
            self.base._del_event(self, block)
        self.base = None
        self.callback = None
        self.arg = None
        self._fdobj = None
        self._flags = F_FREED

    def __repr__(self) -> str:
        try:
            fl = self._flags
            state = []
            if fl & F_INSERTED:
                state.append("added")
            if fl & F_TIMEOUT:
                state.append("timeout")
            if fl & F_ACTIVE:
                state.append("active")
            if fl & F_FREED:
                state.append("freed")
            if not fl & (F_INIT | F_FREED):
                state.append("uninitialised")
            cb = getattr(self.callback, "__qualname__", repr(self.callback))
            what = EV(self.events & 0xFF)
            return f"<Event fd={self.fd} events={what!r} cb={cb} {'|'.join(state) or 'idle'}>"
        except Exception:  # pragma: no cover - a repr must never raise
            return f"<Event at {id(self):#x}>"
