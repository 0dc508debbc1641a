"""The conformance suite catches broken bufferevents: its checks are themselves tested.

Each test feeds the suite's machinery a misbehaviour (a callback with the wrong
argument, one after free(), one inside an API call, events left in a base, a test
body that raises) and asserts the suite reports it instead of passing.
"""

from __future__ import annotations

import socket

import pytest

from evbuffer import BEV_EVENT, Bufferevent
from evbuffer.testing.bev_suite_support import KINDS, BevPairFactory, Feeder, Recorder, Source, bev_test
from evcore import EV_READ, EV_WRITE, Event, EventBase


def test_recorder_reports_wrong_arguments_and_late_or_nested_callbacks() -> None:
    with EventBase(method="select") as base:
        a, b = Bufferevent.pair(base)
        rec = Recorder(b)
        rec.readcb(a, rec)  # another bufferevent
        rec.writecb(b, "not the recorder")  # wrong arg
        with rec.api_call():
            rec.eventcb(b, BEV_EVENT.EOF, rec)  # inside an API call
        b.free()
        rec.readcb(b, rec)  # after free()
        a.free()
    text = " ".join(rec.violations)
    assert "another bufferevent" in text
    assert "got arg" in text
    assert "inside an API call" in text
    assert "after free()" in text
    assert rec.saw(BEV_EVENT.EOF)


def test_factory_reports_events_left_in_a_base() -> None:
    factory = BevPairFactory(KINDS["pair"], "select")
    base = factory.base()
    factory(base)
    Event.timer(base, lambda fd, what, arg: None).add(60.0)  # a leak the suite must notice
    problems = factory.finish()
    assert problems and "still holds 1 events" in problems[0]


def test_wrapped_test_failure_is_not_doubled_by_leak_reports() -> None:
    def test_body(bev_pair_factory: BevPairFactory) -> None:
        bev_pair_factory(bev_pair_factory.base())
        raise ValueError("the test's own failure")

    factory = BevPairFactory(KINDS["pair"], "select")
    with pytest.raises(ValueError, match="own failure"):
        bev_test(test_body)(bev_pair_factory=factory)
    assert factory.quiet


def test_ipv6_listener_when_the_machine_has_ipv6_loopback() -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    factory = BevPairFactory(KINDS["socket-tcp"], "select")
    sock = factory.listener(socket.AF_INET6)
    assert sock.getsockname()[0] == "::1"
    assert factory.finish() == []


def test_feeder_stops_feeding_a_freed_bufferevent() -> None:
    with EventBase(method="select") as base:
        a, b = Bufferevent.pair(base)
        feeder = Feeder(a, Source(1 << 20), high=4096, low=1024)
        a.free()
        feeder.feed()
        assert feeder.feeds == 0
        b.free()
        assert not (a.get_enabled() & EV_WRITE and b.get_enabled() & EV_READ)
