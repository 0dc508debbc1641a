"""The suite's own machinery (:mod:`evcore.testing.loop_suite_support`): fixtures, watchdog, leak checks."""

from __future__ import annotations

import socket
import struct

import pytest

from evcore import EV_READ, Event
from evcore.testing.loop_suite import (
    BackendParam,
    BaseFactory,
    backend_params,
    drain,
    make_base_fixture,
    open_fds,
    run,
    suite_test,
)


def test_run_watchdog_fails_a_hung_loop() -> None:
    """``run`` breaks a loop that would never return and fails with a message naming it."""
    f = BaseFactory("select")
    a, b = f.socketpair()
    base = f()
    ev = Event(base, a, EV_READ, lambda *x: None)  # never ready
    ev.add()
    with pytest.raises(AssertionError, match="did not return within"):
        run(base, limit=0.1)
    ev.delete()
    assert f.finish() == []


def test_drain_reset_and_limit() -> None:
    """``drain`` stops at a connection reset (as EOF) and at its byte limit."""
    f = BaseFactory("select")
    a, b = f.socketpair(socket.AF_INET)
    b.sendall(b"x" * 1000)
    assert drain(a, limit=10) == (b"x" * 1000, False)  # one recv may exceed the limit; then it stops
    b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    b.close()
    a.setblocking(True)
    a.settimeout(5)
    assert drain(a) == (b"", True)
    f.finish()


def test_factory_leave_teardown_and_problems() -> None:
    """Leftovers are reported unless ``leave``d; teardown callbacks run; owned sockets close."""
    f = BaseFactory("select")
    left = f()
    Event.timer(left, print).add(10)
    f.leave(left)
    leaky = f()
    Event.timer(leaky, print).add(10)
    freed = f()
    freed.free()
    ran: list[str] = []
    f.on_teardown(lambda: ran.append("cleanup"))
    f.on_teardown(lambda: 1 / 0)  # a failing cleanup does not stop the others
    s = f.own(socket.socket())
    problems = f.finish()
    assert len(problems) == 1 and "left with 1 events" in problems[0]
    assert ran == ["cleanup"]
    assert s.fileno() == -1
    assert left._freed and leaky._freed
    assert "select" in repr(f)
    assert f.finish() == []


def test_factory_inet6_pair() -> None:
    """``socketpair(AF_INET6)`` connects over ::1 where the host has IPv6."""
    f = BaseFactory("select")
    try:
        a, b = f.socketpair(socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    a.sendall(b"v6")
    b.setblocking(True)
    assert b.recv(2) == b"v6"
    f.finish()


def test_backend_params() -> None:
    """Parametrization ids, defaults, and a method unknown to the registry (no features, no -et)."""
    ids = [p.id for p in backend_params(edge_triggered=True)]
    assert "select" in ids
    assert [p.id for p in backend_params(["nosuch"], edge_triggered=True)] == ["nosuch"]
    assert repr(BackendParam("epoll", et=True)) == "BackendParam('epoll', et=True)"
    assert BaseFactory("nosuch").features == 0


def test_make_base_fixture_names() -> None:
    """The fixture is named after its kind unless told."""
    for fx, name in ((make_base_fixture(["select"]), "base_factory"),
                     (make_base_fixture(["select"], edge_triggered=True), "io_base_factory"),
                     (make_base_fixture(["select"], name="mine"), "mine")):
        assert fx.name == name


def test_suite_test_marks_failed_bodies_quiet() -> None:
    """``suite_test``: a failing body makes its factories quiet; a passing one checks for leftovers."""

    def body_fails(base_factory: BaseFactory) -> None:
        Event.timer(base_factory(), print).add(10)
        raise KeyError("the real failure")

    def body_leaks(base_factory: BaseFactory) -> None:
        Event.timer(base_factory(), print).add(10)

    f = BaseFactory("select")
    with pytest.raises(KeyError):
        suite_test(body_fails)(base_factory=f)
    assert f.quiet
    f.finish()
    g = BaseFactory("select")
    with pytest.raises(AssertionError, match="left with"):
        suite_test(body_leaks)(g)
    assert suite_test(body_leaks).__wrapped__ is body_leaks  # type: ignore[attr-defined]


def test_open_fds_sees_new_fds() -> None:
    """``open_fds`` reports an fd while it is open and not after it is closed."""
    s = socket.socket()
    fd = s.fileno()
    assert fd in open_fds()
    s.close()
    assert fd not in open_fds()
