"""The backend plug-in interface, and the registry that finds backends.

Facts and theory of operation
-----------------------------
A backend is the thin layer over one OS readiness mechanism (``select``, ``poll``,
``epoll``, ``kqueue``, ``/dev/poll``, io_uring ...).  Following libevent's
``struct eventop``, a backend knows nothing about events, timeouts, signals or
activation: the base keeps the fd -> events bookkeeping and tells the backend only
when the *set of conditions watched on an fd* changes.

Invariants every backend keeps:

* ``add(fd, old, events)`` -- ``old`` is the mask registered for ``fd`` before the
  call (0 when the fd is new to the backend) and ``events`` the bits being added.
  The mask after the call is ``old | events``.  Masks hold ``EV_READ``,
  ``EV_WRITE``, ``EV_CLOSED`` and ``EV_ET`` only; ``EV_ET`` means the whole fd is
  edge-triggered.
* ``delete(fd, old, events)`` -- ``events`` are the bits being removed; the mask after
  the call is ``old & ~events``.  When no READ/WRITE/CLOSED bit remains the fd is
  forgotten.
* ``dispatch(timeout)`` waits at most ``timeout`` seconds (``None``: forever, ``0``:
  poll) and returns an iterable of ``(fd, events)``.  It never runs user code.  It
  may report ``(fd, BADFD)`` for an fd found closed behind the base's back; the base
  then warns and drops that fd's events.  An interrupted wait (``EINTR``) returns
  an empty result.  The base masks ``events`` with each event's own flags, so a
  backend may report more than was asked for (``EPOLLHUP`` as READ|WRITE).
* ``raw_table`` and ``dispatch_raw(timeout)`` (optional, the hot path): a backend
  that sets ``raw_table`` to a list also offers ``dispatch_raw``, which returns
  the kernel's own ``(fd, raw)`` pairs; the base reads ``raw_table[raw]`` to get
  EV bits (or ``BADFD``).  This spares building a translated list on every
  wake-up (epoll uses it).  ``dispatch`` stays the translated form.
* ``stale(fd)`` (optional): the base got a report for an fd it watches nothing
  on (it was deleted meanwhile, or the kernel holds a stale registration).
* ``close()`` releases OS resources; it is idempotent.
* ``need_reinit`` is true when the kernel object does not survive ``fork()`` in a
  usable way (epoll, kqueue): the base then builds a fresh backend in ``reinit()``
  and re-adds every fd.
* ``changelist`` is true when the backend wants the base to coalesce interest
  changes until just before ``dispatch`` (each change costs a system call).  Errors
  from ``add``/``delete`` then surface in the loop, where the base logs them and
  drops that fd's events, as libevent's changelist does.  Backends without it are
  called at once and their errors propagate from :meth:`evcore.Event.add`.

The registry
------------
Backends come from the ``evcore.backends`` entry-point group, and from
:func:`register_backend`.  The built-in ``select`` backend is always registered, so
a vendored copy of evcore (no package metadata) still works.  They are ordered by
libevent's list (evport, kqueue, epoll, devpoll, poll, select); names it does not
know come after ``select`` unless the class sets ``preference``.

>>> "select" in supported_methods()
True
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable
from importlib import metadata
from typing import TYPE_CHECKING, ClassVar

from .flags import Feature

if TYPE_CHECKING:  # pragma: no cover
    from .base import EventBase

__all__ = [
    "Backend",
    "BADFD",
    "register_backend",
    "registered_backends",
    "supported_methods",
]

log = logging.getLogger("evcore")

#: Pseudo-event a backend reports for an fd the kernel says is closed (above every EV bit).
BADFD = 0x100

_LIBEVENT_ORDER = ("evport", "kqueue", "epoll", "devpoll", "poll", "select")


class Backend(abc.ABC):
    """Base class of every readiness backend (libevent's ``eventop``).

    Subclasses set :attr:`name` and :attr:`features` and implement :meth:`add`,
    :meth:`delete` and :meth:`dispatch`.

    >>> class Nothing(Backend):
    ...     name = "nothing"
    ...     def add(self, fd, old, events): pass
    ...     def delete(self, fd, old, events): pass
    ...     def dispatch(self, timeout): return ()
    >>> Nothing(None).dispatch(0)
    ()
    """

    #: The method name users pick it by (``EventBase(method=name)``).
    name: ClassVar[str] = ""
    #: What it offers (:class:`evcore.Feature`).
    features: ClassVar[Feature] = Feature(0)
    #: True when a forked child must rebuild it (see :meth:`EventBase.reinit`).
    need_reinit: ClassVar[bool] = False
    #: True when interest changes should be coalesced until the next dispatch.
    changelist: ClassVar[bool] = False
    #: Optional: kernel bits -> EV bits, for backends that return raw results.
    raw_table: ClassVar[list[int] | None] = None
    #: Lower sorts first; ``None`` uses libevent's order.
    preference: ClassVar[float | None] = None

    @classmethod
    def available(cls) -> bool:
        """Whether this backend can work on this system at all (cheap check).

        >>> Backend.available()
        True
        """
        return True

    def __init__(self, base: EventBase | None) -> None:
        """Prepare the backend for ``base``; may raise :class:`BackendUnavailable`."""
        self.base = base

    @abc.abstractmethod
    def add(self, fd: int, old: int, events: int) -> None:
        """Start watching ``events`` on ``fd``, on top of the ``old`` mask."""

    @abc.abstractmethod
    def delete(self, fd: int, old: int, events: int) -> None:
        """Stop watching ``events`` on ``fd``, which had the ``old`` mask."""

    @abc.abstractmethod
    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Wait up to ``timeout`` seconds; return the ``(fd, events)`` that fired."""

    def stale(self, fd: int) -> None:  # noqa: B027 - optional hook
        """The base got a report for ``fd``, which it does not watch (see the module docs)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need it
        """Release OS resources (idempotent)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


_manual: dict[str, type[Backend]] = {}
_entry_points_loaded: dict[str, type[Backend]] | None = None


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Add a backend class by hand (usable as a decorator); it wins over an entry point.

    >>> from evcore.select_backend import SelectBackend
    >>> register_backend(SelectBackend) is SelectBackend
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, Backend)) or not cls.name:
        raise TypeError(f"{cls!r} is not a named evcore.backend.Backend subclass")
    _manual[cls.name] = cls
    return cls


def _load_entry_points() -> dict[str, type[Backend]]:
    global _entry_points_loaded
    if _entry_points_loaded is None:
        found: dict[str, type[Backend]] = {}
        for ep in metadata.entry_points(group="evcore.backends"):
            try:
                cls = ep.load()
            except Exception as exc:  # a broken plug-in must not break the core
                log.warning("evcore: cannot load backend %r: %s", ep.name, exc)
                continue
            if isinstance(cls, type) and issubclass(cls, Backend):
                found[cls.name or ep.name] = cls
            else:
                log.warning("evcore: entry point %r is not a Backend subclass", ep.name)
        _entry_points_loaded = found
    return _entry_points_loaded


def _sort_key(cls: type[Backend]) -> tuple[float, str]:
    if cls.preference is not None:
        return (cls.preference, cls.name)
    if cls.name in _LIBEVENT_ORDER:
        return (float(_LIBEVENT_ORDER.index(cls.name)), cls.name)
    return (float(len(_LIBEVENT_ORDER)), cls.name)


def registered_backends() -> list[type[Backend]]:
    """Every known backend class that is available here, best first.

    >>> registered_backends()[-1].name in ("select", "io_uring", "iocp")
    True
    """
    from .select_backend import SelectBackend

    merged: dict[str, type[Backend]] = {"select": SelectBackend}
    merged.update(_load_entry_points())
    merged.update(_manual)
    usable = []
    for cls in merged.values():
        try:
            ok = cls.available()
        except Exception:  # pragma: no cover - defensive against plug-ins
            ok = False
        if ok:
            usable.append(cls)
    return sorted(usable, key=_sort_key)


def supported_methods() -> list[str]:
    """Names of the backends usable here, best first (libevent's order).

    >>> supported_methods()[-1] in ("select", "io_uring", "iocp")
    True
    """
    return [cls.name for cls in registered_backends()]
