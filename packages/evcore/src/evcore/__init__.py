"""evcore: libevent 2.0's event loop for Python.

A low-level "tell me when this fd is ready" interface with libevent's semantics:
an :class:`EventBase` runs a loop over the best readiness backend available,
and :class:`Event` objects wait for fds, signals and timeouts.

>>> import evcore
>>> with evcore.EventBase() as base:
...     ev = evcore.Event.timer(base, lambda fd, what, arg: print("tick"))
...     ev.add(0.01)
...     base.dispatch()
tick
1
"""

from __future__ import annotations

from .backend import Backend, register_backend, supported_methods
from .base import EventBase
from .config import EventConfig
from .debug import debug_mode_enabled, enable_debug_mode, set_fatal_callback
from .errors import BackendUnavailable, DebugModeError, EventError
from .event import Event, event_self_cbarg
from .flags import (
    EV,
    EV_CLOSED,
    EV_ET,
    EV_PERSIST,
    EV_READ,
    EV_SIGNAL,
    EV_TIMEOUT,
    EV_WRITE,
    EVENT_BASE_COUNT_ACTIVE,
    EVENT_BASE_COUNT_ADDED,
    EVENT_BASE_COUNT_VIRTUAL,
    EVLOOP_NO_EXIT_ON_EMPTY,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
    BaseFlag,
    Feature,
    LoopFlag,
)
from .timers import CommonTimeout

__version__ = "0.1.0"

__all__ = [
    "EV",
    "EV_CLOSED",
    "EV_ET",
    "EV_PERSIST",
    "EV_READ",
    "EV_SIGNAL",
    "EV_TIMEOUT",
    "EV_WRITE",
    "EVENT_BASE_COUNT_ACTIVE",
    "EVENT_BASE_COUNT_ADDED",
    "EVENT_BASE_COUNT_VIRTUAL",
    "EVLOOP_NO_EXIT_ON_EMPTY",
    "EVLOOP_NONBLOCK",
    "EVLOOP_ONCE",
    "Backend",
    "BackendUnavailable",
    "BaseFlag",
    "CommonTimeout",
    "DebugModeError",
    "Event",
    "EventBase",
    "EventConfig",
    "EventError",
    "Feature",
    "LoopFlag",
    "__version__",
    "debug_mode_enabled",
    "enable_debug_mode",
    "event_self_cbarg",
    "register_backend",
    "set_fatal_callback",
    "supported_methods",
]
