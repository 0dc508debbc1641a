"""The poll backend, driven directly on real socketpairs and pipes."""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time

import pytest

from evbackends_unix.poll import PollBackend
from evcore.backend import BADFD
from evcore.flags import EV, EV_CLOSED, EV_ET, EV_READ, EV_WRITE, Feature

pytestmark = pytest.mark.skipif(not PollBackend.available(), reason="needs select.poll")

R, W, C, ET = int(EV_READ), int(EV_WRITE), int(EV_CLOSED), int(EV_ET)


@pytest.fixture
def be():
    backend = PollBackend(None)
    yield backend
    backend.close()


def test_class_facts():
    assert PollBackend.name == "poll"
    assert PollBackend.features == Feature.FDS
    assert PollBackend.need_reinit is False
    assert PollBackend.changelist is False
    assert PollBackend.available() is True


def test_unavailable_without_poll(monkeypatch):
    monkeypatch.delattr(select, "poll")
    assert PollBackend.available() is False


def test_read_readiness(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert be.dispatch(0) == []
    b.send(b"x")
    assert be.dispatch(1.0) == [(a.fileno(), R)]


def test_write_readiness(be, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    assert be.dispatch(0) == [(a.fileno(), W)]


def test_read_and_write_at_once(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(a.fileno(), EV_READ, EV_WRITE)
    b.send(b"x")
    assert be.dispatch(1.0) == [(a.fileno(), R | W)]
    assert be.watched() == {a.fileno(): R | W}


def test_masks_are_plain_ints(be, pair):
    a, _ = pair()
    be.add(a.fileno(), EV(0), EV.WRITE)
    ((_, what),) = be.dispatch(0)
    assert type(what) is int


def test_level_triggered_even_with_et(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ | EV_ET)
    b.send(b"x")
    for _ in range(3):
        assert be.dispatch(0) == [(a.fileno(), R)]


def test_timeouts(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    t0 = time.monotonic()
    assert be.dispatch(0) == []
    assert be.dispatch(-5) == []
    assert time.monotonic() - t0 < 0.5
    t0 = time.monotonic()
    assert be.dispatch(0.05) == []
    assert time.monotonic() - t0 >= 0.045
    timer = threading.Timer(0.05, b.send, (b"x",))
    timer.start()
    try:
        assert be.dispatch(None) == [(a.fileno(), R)]
    finally:
        timer.join()
    assert be.dispatch(1e12) == [(a.fileno(), R)]  # capped, not an OverflowError


def test_delete(be, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    be.delete(fd, R | W, EV_WRITE)
    b.send(b"x")
    assert be.dispatch(0) == [(fd, R)]
    be.delete(fd, R, EV_READ)
    assert be.dispatch(0) == []
    assert be.watched() == {}
    be.delete(fd, R, EV_READ)  # unknown now: ignored


def test_negative_fd_refused(be):
    with pytest.raises(OSError) as info:
        be.add(-1, 0, EV_READ)
    assert info.value.errno == errno.EBADF


def test_closed_only_stays_out_of_the_poll_set(be, pipe):
    r, w = pipe()
    be.add(r, 0, EV_CLOSED)
    os.close(w)
    assert be.dispatch(0) == []  # no POLLHUP spin: the fd is not polled at all
    be.add(r, C, EV_READ)
    assert be.dispatch(1.0) == [(r, R)]
    be.delete(r, R | C, EV_READ)  # only CLOSED left: out again
    assert be.dispatch(0) == []


def test_closed_never_fires_on_shutdown(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_WRITE | EV_CLOSED)
    b.shutdown(socket.SHUT_WR)
    assert be.dispatch(0) == [(a.fileno(), W)]


def test_hup_maps_to_read_and_write_watched(be, pipe):
    r, w = pipe()
    be.add(r, 0, EV_READ | EV_WRITE)
    os.close(w)
    assert be.dispatch(1.0) == [(r, R | W)]


def test_err_maps_to_what_is_watched(be, pipe):
    r, w = pipe()
    be.add(w, 0, EV_READ)
    assert be.dispatch(0) == []
    os.close(r)
    assert be.dispatch(1.0) == [(w, R)]


def test_pollnval_reported_as_badfd_and_forgotten(be, pipe):
    r, _w = pipe()
    be.add(r, 0, EV_READ)
    os.close(r)
    assert be.dispatch(1.0) == [(r, BADFD)]
    assert be.watched() == {}
    assert be.dispatch(0) == []


def test_many_fds(be, pair):
    fds = []
    for _ in range(40):
        a, b = pair()
        b.send(b"x")
        be.add(a.fileno(), 0, EV_READ)
        fds.append(a.fileno())
    assert sorted(fd for fd, _ in be.dispatch(1.0)) == sorted(fds)


def test_close_is_idempotent(pair):
    be = PollBackend(None)
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    b.send(b"x")
    be.close()
    be.close()
    assert be.watched() == {}
    assert be.dispatch(0) == []
    assert repr(be) == "<PollBackend 'poll' closed>"


def test_survives_fork(be, pair, in_child):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)

    def child() -> int:
        b.send(b"c")
        ok = be.dispatch(1.0) == [(a.fileno(), R)]  # nothing in the kernel to rebuild
        fresh = PollBackend(None)
        fresh.add(a.fileno(), 0, EV_READ)
        ok = ok and fresh.dispatch(1.0) == [(a.fileno(), R)]
        fresh.close()
        return 0 if ok else 1

    assert in_child(child) == 0
    assert a.recv(10) == b"c"
    assert be.dispatch(0) == []


def test_results_for_fds_no_longer_watched_are_skipped(be, pair, pipe):
    # as if another thread deleted them while poll() waited
    a, b = pair()
    r, _w = pipe()
    os.close(r)
    be._poll.register(a.fileno(), select.POLLIN)
    be._poll.register(r, select.POLLIN)
    b.send(b"x")
    assert be.dispatch(0) == []
