"""Flag and constant types shared by the whole of evcore.

Every flag set is an :class:`enum.IntFlag` with libevent 2.0/2.1's numeric values, so
plain ints (``EV_READ | EV_PERSIST``) and the enum members (``EV.READ | EV.PERSIST``)
mix freely.

>>> EV.READ | EV.PERSIST == EV_READ | EV_PERSIST
True
>>> int(LoopFlag.NONBLOCK)
2
"""

from __future__ import annotations

import enum

__all__ = [
    "EV",
    "Feature",
    "BaseFlag",
    "LoopFlag",
    "EV_TIMEOUT",
    "EV_READ",
    "EV_WRITE",
    "EV_SIGNAL",
    "EV_PERSIST",
    "EV_ET",
    "EV_CLOSED",
    "EVLOOP_ONCE",
    "EVLOOP_NONBLOCK",
    "EVLOOP_NO_EXIT_ON_EMPTY",
    "EVENT_BASE_COUNT_ACTIVE",
    "EVENT_BASE_COUNT_VIRTUAL",
    "EVENT_BASE_COUNT_ADDED",
]


class EV(enum.IntFlag):
    """What an event waits for, and what fired (libevent's ``EV_*``).

    >>> EV.READ in (EV.READ | EV.WRITE)
    True
    """

    TIMEOUT = 0x01
    READ = 0x02
    WRITE = 0x04
    SIGNAL = 0x08
    PERSIST = 0x10
    ET = 0x20
    CLOSED = 0x80


class Feature(enum.IntFlag):
    """Capabilities a backend may offer (libevent's ``EV_FEATURE_*``).

    >>> Feature.ET | Feature.O1
    <Feature.ET|O1: 3>
    """

    ET = 0x01
    O1 = 0x02
    FDS = 0x04
    EARLY_CLOSE = 0x08


class BaseFlag(enum.IntFlag):
    """Options for :class:`evcore.EventConfig` (libevent's ``EVENT_BASE_FLAG_*``).

    >>> BaseFlag.NOLOCK.value
    1
    """

    NOLOCK = 0x01
    IGNORE_ENV = 0x02
    STARTUP_IOCP = 0x04
    NO_CACHE_TIME = 0x08
    EPOLL_USE_CHANGELIST = 0x10
    PRECISE_TIMER = 0x20


class LoopFlag(enum.IntFlag):
    """Flags for :meth:`evcore.EventBase.loop` (libevent's ``EVLOOP_*``).

    >>> LoopFlag.ONCE | LoopFlag.NONBLOCK
    <LoopFlag.ONCE|NONBLOCK: 3>
    """

    ONCE = 0x01
    NONBLOCK = 0x02
    NO_EXIT_ON_EMPTY = 0x04


EV_TIMEOUT = EV.TIMEOUT
EV_READ = EV.READ
EV_WRITE = EV.WRITE
EV_SIGNAL = EV.SIGNAL
EV_PERSIST = EV.PERSIST
EV_ET = EV.ET
EV_CLOSED = EV.CLOSED

EVLOOP_ONCE = LoopFlag.ONCE
EVLOOP_NONBLOCK = LoopFlag.NONBLOCK
EVLOOP_NO_EXIT_ON_EMPTY = LoopFlag.NO_EXIT_ON_EMPTY

EVENT_BASE_COUNT_ACTIVE = 1
EVENT_BASE_COUNT_VIRTUAL = 2
EVENT_BASE_COUNT_ADDED = 4
