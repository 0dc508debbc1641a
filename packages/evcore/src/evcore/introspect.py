"""Looking inside a base: foreach_event, num_events, dump_events."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from ._basestate import (
    EV_CLOSED,
    EV_ET,
    EV_PERSIST,
    EV_READ,
    EV_SIGNAL,
    EV_WRITE,
    EVENT_BASE_COUNT_ACTIVE,
    EVENT_BASE_COUNT_ADDED,
    EVENT_BASE_COUNT_VIRTUAL,
)
from .event import F_ACTIVE, F_INSERTED, F_TIMEOUT, Event
from .evmap import EventMap

__all__ = ["Introspection"]


class Introspection(EventMap):
    """Looking inside a base: foreach_event, num_events, dump_events."""

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

        >>> from evcore import *

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

        >>> from evcore import *

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
                for bit, name in (
                    (EV_READ, "Read"),
                    (EV_WRITE, "Write"),
                    (EV_CLOSED, "EOF"),
                    (EV_SIGNAL, "Signal"),
                    (EV_PERSIST, "Persist"),
                    (EV_ET, "ET"),
                ):
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
