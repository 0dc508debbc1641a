"""Shared pieces of :class:`evcore.EventBase`: constants, the lock stand-in, the state it keeps.

``EventBase`` is assembled from small classes, one concern each (``evmap``: which
events wait for what; ``dispatch``: the loop; ``deferral``, ``introspect``,
``fork``).  They all work on the attributes declared in :class:`BaseState`, which
``EventBase.__init__`` sets.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import flags as _flags
from .backend import BADFD, Backend
from .config import EventConfig
from .event import Event
from .flags import BaseFlag, Feature
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

__all__ = ["BaseState"]

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


class BaseState:
    """The attributes every part of :class:`evcore.EventBase` shares (set in ``EventBase.__init__``)."""

    _config: EventConfig
    flags: BaseFlag
    _lock: Any
    _cond: threading.Condition | None
    _fake_clock: bool
    _clock: Any
    _cache_time: bool
    _now: float | None
    _now_wall: float | None
    _backend_cls: type[Backend] | None
    _backend: Backend
    method: str
    features: Feature
    _fdmap: dict[int, list[Event]]
    _fdone: dict[int, Event]
    _kmask: dict[int, int]
    _changes: dict[int, bool]
    _use_changelist: bool
    _sigmap: dict[int, list[Event]]
    _signals: SignalState | None
    _internal: dict[int, Callable[[], None]]
    _idents: dict[int, tuple[int, int]]
    _timers: TimerHeap
    _theap: list[list[Any]]
    _tseq: Any
    _commons: list[CommonTimeout]
    _npri: int
    _activeqs: list[deque[Event]]
    _nactive: int
    _npending: int
    _nvirtual: int
    _deferred: deque[tuple[Callable[..., Any], tuple[Any, ...]]]
    _running: bool
    _loop_thread: int | None
    _sleeping: bool
    _gotterm: bool
    _break: bool
    _continue: bool
    _stop_pass: bool
    _attention: bool
    _running_pri: int
    _current: Event | None
    _waiters: int
    _exc_handler: Callable[[Any, BaseException, Event | None], object] | None
    _executor: concurrent.futures.Executor | None
    _freed: bool
    _notify_r: int
    _notify_w: int
    _notified: bool
