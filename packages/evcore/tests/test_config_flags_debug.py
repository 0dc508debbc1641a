"""Unit tests of :mod:`evcore.config`, :mod:`evcore.flags`, :mod:`evcore.debug` and :mod:`evcore.errors`."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import evcore
from evcore import (
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
    Event,
    EventBase,
    EventConfig,
    EventError,
    Feature,
    LoopFlag,
)
from evcore.debug import _state, enable_debug_mode, fatal, set_fatal_callback


def test_flag_values_match_libevent() -> None:
    """The numeric values are libevent's (event2/event.h), as ``IntFlag``s with C-name aliases."""
    assert (EV_TIMEOUT, EV_READ, EV_WRITE, EV_SIGNAL, EV_PERSIST, EV_ET, EV_CLOSED) == (
        0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80)
    assert (EVLOOP_ONCE, EVLOOP_NONBLOCK, EVLOOP_NO_EXIT_ON_EMPTY) == (1, 2, 4)
    assert (Feature.ET, Feature.O1, Feature.FDS, Feature.EARLY_CLOSE) == (1, 2, 4, 8)
    assert (BaseFlag.NOLOCK, BaseFlag.IGNORE_ENV, BaseFlag.STARTUP_IOCP, BaseFlag.NO_CACHE_TIME,
            BaseFlag.EPOLL_USE_CHANGELIST, BaseFlag.PRECISE_TIMER) == (1, 2, 4, 8, 0x10, 0x20)
    assert (EVENT_BASE_COUNT_ACTIVE, EVENT_BASE_COUNT_VIRTUAL, EVENT_BASE_COUNT_ADDED) == (1, 2, 4)
    assert EV_READ is EV.READ and EVLOOP_ONCE is LoopFlag.ONCE
    for flag in (EV, Feature, BaseFlag, LoopFlag):
        assert issubclass(flag, int)


def test_plain_ints_accepted_everywhere() -> None:
    """Plain ints work wherever flags are taken (events, loop flags, config, num_events)."""
    cfg = EventConfig()
    cfg.require_features(0)
    cfg.set_flag(8)  # NO_CACHE_TIME
    assert cfg.flags == BaseFlag.NO_CACHE_TIME
    with EventBase(cfg, method="select") as base:
        seen: list[int] = []
        ev = Event(base, -1, 0x10, lambda fd, what, arg: seen.append(what))  # EV_PERSIST as an int
        ev.add(0.0)
        ev.active(2)
        assert base.num_events(4) == 1 and base.num_events(1) == 1
        assert base.loop(1 | 2) == 0
        assert seen and seen[0] & 2
        assert ev.pending(1) == 1
        ev.delete()


def test_config_allows() -> None:
    """``allows`` honours ``only``, avoided methods, required features and ``EVENT_NO*``."""
    cfg = EventConfig()
    assert cfg.allows("select", Feature.FDS)
    cfg.avoid_method("select")
    assert not cfg.allows("select", Feature.FDS)
    cfg.require_features(Feature.ET)
    cfg.require_features(Feature.O1)
    assert cfg.features == Feature.ET | Feature.O1
    assert not cfg.allows("epoll", Feature.ET)
    assert cfg.allows("epoll", Feature.ET | Feature.O1 | Feature.EARLY_CLOSE)
    cfg.only = "kqueue"
    assert not cfg.allows("epoll", Feature.ET | Feature.O1)
    assert "select" in repr(cfg) and "ET" in repr(cfg)


def test_config_environment(monkeypatch: Any) -> None:
    """``EVENT_NO<METHOD>`` (any non-empty value) removes a method unless ``IGNORE_ENV``."""
    cfg = EventConfig()
    monkeypatch.setenv("EVENT_NOSELECT", "1")
    assert not cfg.allows("select", Feature.FDS)
    monkeypatch.setenv("EVENT_NOSELECT", "")
    assert cfg.allows("select", Feature.FDS)
    monkeypatch.setenv("EVENT_NOSELECT", "yes")
    cfg.set_flag(BaseFlag.IGNORE_ENV)
    assert cfg.allows("select", Feature.FDS)


def test_nothing_fits_is_event_error(monkeypatch: Any) -> None:
    """No backend satisfying the config: ``EventError`` naming the config."""
    cfg = EventConfig()
    for m in evcore.supported_methods():
        cfg.avoid_method(m)
    with pytest.raises(EventError, match="no event backend"):
        EventBase(cfg)
    with pytest.raises(EventError):
        EventBase(method="no-such-method")


def test_methods_default_is_first_supported(monkeypatch: Any) -> None:
    """``methods``: the default base uses the first supported method; avoiding it picks another."""
    methods = evcore.supported_methods()
    assert "select" in methods
    for m in methods:
        monkeypatch.delenv("EVENT_NO" + m.upper(), raising=False)
    with EventBase() as base:
        assert base.method == methods[0]
    cfg = EventConfig()
    cfg.avoid_method(methods[0])
    cfg.set_flag(BaseFlag.IGNORE_ENV)
    if len(methods) > 1:
        with EventBase(cfg) as base:
            assert base.method == methods[1]
    else:
        with pytest.raises(EventError):
            EventBase(cfg)


def test_base_features() -> None:
    """``base_features``: requiring ET gives a base with ET, or none at all."""
    cfg = EventConfig()
    cfg.require_features(Feature.ET)
    try:
        base = EventBase(cfg)
    except EventError:
        with EventBase() as plain:
            assert not plain.features & Feature.ET
    else:
        with base:
            assert base.features & Feature.ET


def test_version() -> None:
    """``version``: the package reports a version string."""
    assert isinstance(evcore.__version__, str) and evcore.__version__.count(".") >= 1


def test_enable_debug_mode_after_base_refused() -> None:
    """``enable_debug_mode`` after a base exists raises ``EventError``; after it is freed it works."""
    was = _state["debug"]
    base = EventBase(method="select")
    try:
        with pytest.raises(EventError, match="before any EventBase"):
            enable_debug_mode()
    finally:
        base.free()
    try:
        enable_debug_mode()
        assert evcore.debug_mode_enabled()
    finally:
        _state["debug"] = was


def test_fatal_callback(caplog: Any) -> None:
    """``fatal`` logs at CRITICAL; it raises ``EventError`` unless a fatal callback is set."""
    with caplog.at_level(logging.CRITICAL, logger="evcore"):
        with pytest.raises(EventError, match="broken"):
            fatal("broken", 5)
        seen: list[int] = []
        set_fatal_callback(seen.append)
        try:
            fatal("broken again", 7)
        finally:
            set_fatal_callback(None)
        assert seen == [7]
    assert [r.levelno for r in caplog.records] == [logging.CRITICAL, logging.CRITICAL]
    assert evcore.set_fatal_callback is set_fatal_callback


def test_error_hierarchy() -> None:
    """One exception base for the package; OS failures stay ``OSError``."""
    assert issubclass(evcore.DebugModeError, EventError)
    assert issubclass(evcore.BackendUnavailable, EventError)
    assert not issubclass(EventError, OSError)
