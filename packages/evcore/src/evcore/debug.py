"""Debug mode and the fatal-error callback.

Debug mode (libevent's ``event_enable_debug_mode``) must be turned on before any
base exists.  It then catches: adding or deleting an event that was never
assigned, using an event after :meth:`Event.free`, re-assigning an event that is
still pending, and an fd closed (or closed and reused) behind the base's back
while events are registered on it -- the last by remembering each fd's
``(st_dev, st_ino)`` when it is registered and checking it when the event is
deleted and once per loop iteration.  The first three raise
:class:`evcore.DebugModeError`; the last is a warning on the ``evcore`` logger
naming the fd, after which that fd's events are dropped.

>>> debug_mode_enabled() in (True, False)
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .errors import EventError

__all__ = ["enable_debug_mode", "debug_mode_enabled", "set_fatal_callback", "fatal"]

log = logging.getLogger("evcore")

_state = {"debug": False, "bases": 0}
_fatal_cb: list[Callable[[int], object] | None] = [None]


def enable_debug_mode() -> None:
    """Turn on debug mode for the rest of the process; call before creating a base.

    Raises :class:`evcore.EventError` when a base already exists (as libevent,
    which cannot track events made before).
    """
    if _state["bases"]:
        raise EventError("enable_debug_mode() must be called before any EventBase is created")
    _state["debug"] = True


def debug_mode_enabled() -> bool:
    """Whether :func:`enable_debug_mode` was called.

    >>> isinstance(debug_mode_enabled(), bool)
    True
    """
    return bool(_state["debug"])


def set_fatal_callback(fn: Callable[[int], object] | None) -> None:
    """Call ``fn(err)`` on an unrecoverable internal error instead of raising.

    libevent aborts the process by default; evcore raises :class:`EventError`
    (after logging at CRITICAL) unless a callback is set.

    >>> seen = []
    >>> set_fatal_callback(seen.append)
    >>> fatal("broken invariant", 3)
    >>> seen
    [3]
    >>> set_fatal_callback(None)
    """
    _fatal_cb[0] = fn


def fatal(message: str, err: int = 0) -> None:
    """Report an unrecoverable internal error (see :func:`set_fatal_callback`)."""
    log.critical("evcore: fatal: %s", message)
    cb = _fatal_cb[0]
    if cb is None:
        raise EventError(message)
    cb(err)
