"""The epoll backend, driven directly on real socketpairs, pipes and files."""

from __future__ import annotations

import errno
import logging
import os
import resource
import select
import socket
import threading
import time

import pytest

from evbackends_unix import epoll as epoll_mod
from evbackends_unix.epoll import EpollBackend
from evcore.backend import BADFD
from evcore.errors import BackendUnavailable
from evcore.flags import EV, EV_CLOSED, EV_ET, EV_READ, EV_WRITE, Feature

pytestmark = pytest.mark.skipif(not EpollBackend.available(), reason="needs Linux epoll")

R, W, C, ET = int(EV_READ), int(EV_WRITE), int(EV_CLOSED), int(EV_ET)


def fired(backend: EpollBackend, timeout: float | None) -> list[tuple[int, int]]:
    """What one dispatch reported, as a sorted list (a single event comes as a tuple)."""
    return sorted(backend.dispatch(timeout))


@pytest.fixture
def be():
    backend = EpollBackend(None)
    yield backend
    backend.close()


def test_class_facts():
    assert EpollBackend.name == "epoll"
    assert EpollBackend.features == Feature.ET | Feature.O1 | Feature.EARLY_CLOSE
    assert EpollBackend.need_reinit is True
    assert EpollBackend.changelist is True
    assert EpollBackend.available() is True


def test_read_readiness(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert fired(be, 0) == []
    b.send(b"x")
    assert fired(be, 1.0) == [(a.fileno(), R)]


def test_write_readiness(be, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    assert fired(be, 0) == [(a.fileno(), W)]


def test_read_and_write_at_once(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(a.fileno(), EV_READ, EV_WRITE)  # MOD
    b.send(b"x")
    assert fired(be, 1.0) == [(a.fileno(), R | W)]
    assert be.watched() == {a.fileno(): R | W}


def test_masks_are_plain_ints(be, pair):
    a, _ = pair()
    be.add(a.fileno(), EV(0), EV.WRITE | EV.READ)
    ((fd, what),) = fired(be, 0)
    assert type(what) is int and what == W
    assert type(be.watched()[fd]) is int


def test_timeout_zero_returns_at_once(be, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    t0 = time.monotonic()
    assert fired(be, 0) == []
    assert fired(be, -1.0) == []  # a deadline already passed: poll
    assert time.monotonic() - t0 < 0.5


def test_timeout_float_waits(be, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    t0 = time.monotonic()
    assert fired(be, 0.05) == []
    assert time.monotonic() - t0 >= 0.045


def test_timeout_none_waits_for_readiness(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    timer = threading.Timer(0.05, b.send, (b"x",))
    timer.start()
    t0 = time.monotonic()
    try:
        assert fired(be, None) == [(a.fileno(), R)]
    finally:
        timer.join()
    assert time.monotonic() - t0 >= 0.04


def test_huge_timeout_is_capped(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    b.send(b"x")
    assert fired(be, 1e12) == [(a.fileno(), R)]  # would overflow epoll_wait's int ms


def test_delete_one_bit_then_all(be, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    be.delete(fd, R | W, EV_WRITE)
    b.send(b"x")
    assert fired(be, 0) == [(fd, R)]
    be.delete(fd, R, EV_READ)
    assert fired(be, 0) == []
    assert be.watched() == {}


def test_level_triggered_fires_repeatedly(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    b.send(b"x")
    for _ in range(3):
        assert fired(be, 0) == [(a.fileno(), R)]


def test_edge_triggered_fires_once_per_edge(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ | EV_ET)
    b.send(b"x")
    assert fired(be, 1.0) == [(a.fileno(), R)]
    assert fired(be, 0) == []  # still readable, but no new edge
    b.send(b"y")
    assert fired(be, 1.0) == [(a.fileno(), R)]
    assert fired(be, 0) == []


def test_switching_back_to_level_triggered(be, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_ET)
    b.send(b"x")
    assert fired(be, 1.0) == [(fd, R)]
    be.delete(fd, R | ET, EV_ET)  # MOD without EPOLLET
    assert fired(be, 0) == [(fd, R)]
    assert fired(be, 0) == [(fd, R)]


def test_et_alone_watches_nothing(be, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_ET)
    assert be.watched() == {}
    be.add(a.fileno(), ET, EV_WRITE)
    assert fired(be, 0) == [(a.fileno(), W)]
    be.delete(a.fileno(), W | ET, EV_WRITE)  # only ET left: DEL
    assert be.watched() == {}
    assert fired(be, 0) == []


def test_closed_on_peer_shutdown(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_CLOSED)
    assert fired(be, 0) == []
    b.shutdown(socket.SHUT_WR)
    assert fired(be, 1.0) == [(a.fileno(), C)]


def test_closed_with_read_also_reports_read(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ | EV_CLOSED)
    b.shutdown(socket.SHUT_WR)
    assert fired(be, 1.0) == [(a.fileno(), R | C)]


def test_hup_maps_to_everything_watched(be, pipe):
    r, w = pipe()
    be.add(r, 0, EV_READ | EV_WRITE)  # WRITE on a read end: only HUP can report it
    os.close(w)
    assert fired(be, 1.0) == [(r, R | W)]


def test_hup_reports_closed_when_only_closed_is_watched(be, pipe):
    # A pipe reports EPOLLHUP without EPOLLRDHUP; libevent would report nothing and spin.
    r, w = pipe()
    be.add(r, 0, EV_CLOSED)
    os.close(w)
    assert fired(be, 1.0) == [(r, C)]


def test_err_maps_to_what_is_watched(be, pipe):
    r, w = pipe()
    be.add(w, 0, EV_READ)  # the write end never reads: only EPOLLERR reports READ
    assert fired(be, 0) == []
    os.close(r)
    assert fired(be, 1.0) == [(w, R)]


def test_mod_enoent_retried_as_add(be, pair, caplog):
    caplog.set_level(logging.DEBUG, logger="evbackends_unix")
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    a.close()  # the kernel drops the registration silently
    c, _ = pair()
    if c.fileno() != fd:  # pragma: no cover - the lowest free fd is reused on Linux
        pytest.skip("fd number not reused")
    be.add(fd, EV_READ, EV_WRITE)  # MOD -> ENOENT -> ADD
    assert fired(be, 0) == [(fd, W)]
    assert "MOD of fd" in caplog.text


def test_add_eexist_retried_as_mod(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    be.add(fd, 0, EV_WRITE)  # the caller believes fd is new: ADD -> EEXIST -> MOD
    assert fired(be, 0) == [(fd, W)]
    assert be.watched() == {fd: W}


def test_retry_that_fails_too_raises(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be._ep.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
    with pytest.raises(OSError) as info:
        be.add(fd, 0, EV_READ)  # ADD -> EEXIST -> MOD of an exclusive entry -> EINVAL
    assert info.value.errno == errno.EINVAL
    assert fd not in be.watched()


def test_mod_enoent_then_add_failing_raises(be):
    other = select.epoll()
    try:
        other.register(be.fileno(), select.EPOLLIN)  # other watches be's epoll
        with pytest.raises(OSError) as info:
            # MOD of other in be -> ENOENT -> ADD would make a cycle -> ELOOP
            be.add(other.fileno(), EV_READ, EV_WRITE)
        assert info.value.errno == errno.ELOOP
        assert be.watched() == {}
    finally:
        other.close()


def test_regular_file_raises_eperm(be, tmp_path):
    with open(tmp_path / "f", "wb") as f:
        with pytest.raises(PermissionError) as info:
            be.add(f.fileno(), 0, EV_READ)
        assert info.value.errno == errno.EPERM
        assert "regular files" in str(info.value)
        assert be.watched() == {}
        be.delete(f.fileno(), R, EV_READ)  # DEL -> EPERM: ignored


def test_other_add_errors_propagate(be, pipe):
    r, _w = pipe()
    os.close(r)
    with pytest.raises(OSError) as info:
        be.add(r, 0, EV_READ)
    assert info.value.errno == errno.EBADF


def test_delete_errors_other_than_gone_propagate(be):
    with pytest.raises(OSError) as info:
        be.delete(be.fileno(), R, EV_READ)  # DEL of the epoll fd itself: EINVAL
    assert info.value.errno == errno.EINVAL


def test_delete_of_closed_fd_ignored(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    a.close()
    be.delete(fd, R, EV_READ)  # DEL -> EBADF: ignored
    be.delete(99999, R, EV_READ)  # never registered: EBADF/ENOENT, ignored
    assert be.watched() == {}


def test_delete_of_unregistered_fd_ignored(be, pair):
    a, _ = pair()
    be.delete(a.fileno(), R, EV_READ)  # ENOENT
    assert be.watched() == {}


def test_delete_to_mod_on_reused_fd(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    a.close()
    c, _ = pair()
    if c.fileno() != fd:  # pragma: no cover
        pytest.skip("fd number not reused")
    be.delete(fd, R | W, EV_READ)  # MOD -> ENOENT -> ADD
    assert fired(be, 0) == [(fd, W)]


def test_result_grows_past_32(be, pair):
    fds = []
    for _ in range(40):
        a, b = pair()
        b.send(b"x")
        be.add(a.fileno(), 0, EV_READ)
        fds.append(a.fileno())
    assert be.maxevents == 32
    first = fired(be, 1.0)
    assert len(first) == 32
    assert be.maxevents == 64
    second = fired(be, 1.0)
    assert sorted(fd for fd, _ in second) == sorted(fds)
    assert be.maxevents == 64


def test_growth_stops_at_the_cap(be, pair, monkeypatch):
    monkeypatch.setattr(epoll_mod, "MAX_MAXEVENTS", 32)
    for _ in range(33):
        a, b = pair()
        b.send(b"x")
        be.add(a.fileno(), 0, EV_READ)
    assert len(fired(be, 1.0)) == 32
    assert be.maxevents == 32


def test_close_is_idempotent(pair):
    be = EpollBackend(None)
    a, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert repr(be) == "<EpollBackend 'epoll' fds=1>"
    be.close()
    be.close()
    assert repr(be) == "<EpollBackend 'epoll' closed>"
    assert be.watched() == {}


def test_context_manager_closes(pair):
    with EpollBackend(None) as be:
        fileno = be.fileno()
    with pytest.raises(OSError):
        os.fstat(fileno)


def test_unavailable_without_epoll(monkeypatch):
    monkeypatch.delattr(select, "epoll")
    assert EpollBackend.available() is False
    with pytest.raises(BackendUnavailable, match="not supported"):
        EpollBackend(None)


def _fill_fd_table() -> list[int]:
    """Lower RLIMIT_NOFILE and take every free fd, so the next open fails with EMFILE."""
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
    taken = []
    for _ in range(highest + 8):
        try:
            taken.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE
            break
    return taken


def test_emfile_at_creation_is_unavailable():
    taken = _fill_fd_table()  # the test runs forked: the limit dies with it
    try:
        with pytest.raises(BackendUnavailable, match="cannot create"):
            EpollBackend(None)
    finally:
        for fd in taken:
            os.close(fd)


def _stale_registration(be, pair):
    """Register an fd, then close it while a dup keeps its file open (epoll's known trap)."""
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    dup = os.dup(fd)
    a.close()
    be.delete(fd, R, EV_READ)  # DEL -> EBADF, ignored: the kernel keeps the entry
    b.send(b"x")
    return fd, dup


def test_stale_registration_is_dropped_by_a_rebuild(be, pair, caplog):
    keep, peer = pair()
    be.add(keep.fileno(), 0, EV_READ)
    stale, dup = _stale_registration(be, pair)
    try:
        old_epfd = be.fileno()
        assert fired(be, 1.0) == []  # unknown fd skipped once
        assert be.fileno() == old_epfd
        with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
            assert fired(be, 1.0) == []  # seen again: rebuild
        assert "rebuilding" in caplog.text and str(stale) in caplog.text
        assert fired(be, 0) == []  # gone for good
        peer.send(b"y")
        assert fired(be, 1.0) == [(keep.fileno(), R)]  # what we watch survived
    finally:
        os.close(dup)


def test_unknown_fd_once_is_not_a_rebuild(be, pair):
    a, b = pair()
    c, d = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(c.fileno(), 0, EV_READ)
    b.send(b"x")
    d.send(b"x")
    be._masks.pop(c.fileno())  # as if another thread deleted c while epoll_wait returned it
    assert fired(be, 1.0) == [(a.fileno(), R)]
    be._ep.unregister(c.fileno())
    assert fired(be, 1.0) == [(a.fileno(), R)]  # the fast path again
    assert be.watched() == {a.fileno(): R}


def test_rebuild_reports_fds_closed_behind_our_back(be, pair):
    gone, _ = pair()
    gone_fd = gone.fileno()
    be.add(gone_fd, 0, EV_READ)
    _stale, dup = _stale_registration(be, pair)
    gone.close()  # closed without delete(): epoll forgets it, the backend does not
    try:
        assert fired(be, 1.0) == []
        assert fired(be, 1.0) == [(gone_fd, BADFD)]
        assert be.watched() == {}
    finally:
        os.close(dup)


def test_rebuild_failing_keeps_the_old_set(be, pair, caplog):
    _stale, dup = _stale_registration(be, pair)
    taken = []
    try:
        assert fired(be, 1.0) == []
        taken = _fill_fd_table()
        with caplog.at_level(logging.ERROR, logger="evbackends_unix"):
            assert fired(be, 1.0) == []
        assert "cannot rebuild" in caplog.text
    finally:
        for fd in taken:
            os.close(fd)
        os.close(dup)


def test_fork_child_builds_a_new_backend(be, pair, in_child):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)

    def child() -> int:
        fresh = EpollBackend(None)
        fresh.add(a.fileno(), 0, EV_READ)
        b.send(b"c")
        ok = fired(fresh, 1.0) == [(a.fileno(), R)]
        fresh.close()
        be.close()  # only the child's copy of the parent's epoll fd
        return 0 if ok else 1

    assert in_child(child) == 0
    assert a.recv(10) == b"c"
    b.send(b"p")
    assert fired(be, 1.0) == [(a.fileno(), R)]  # the parent's set is intact


def test_unexpected_bits_take_the_slow_path(be, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    b.send(b"x")
    be._ep.modify(fd, select.EPOLLIN | select.EPOLLRDNORM)  # a revents bit the table lacks
    assert fired(be, 0) == [(fd, R)]
    be._ep.modify(fd, select.EPOLLRDNORM)  # only that bit: nothing the fd watches
    assert fired(be, 0) == []
