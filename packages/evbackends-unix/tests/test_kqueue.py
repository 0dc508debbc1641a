"""The kqueue backend against a fake ``select.kqueue`` (this machine has no kqueue).

``FakeKqueue`` behaves like a kqueue as far as the backend can tell: it applies the
change list in order (``EV_ADD`` replaces a filter's flags, ``EV_DELETE`` of an absent
filter is ``ENOENT``, a closed fd is ``EBADF``, and a closed fd's filters vanish),
reports a failed change as an ``EV_ERROR`` entry when there is room and fails the call
otherwise, returns at once when it reported errors, and otherwise waits with
``poll()`` on the real fds, reporting ``EV_EOF`` on hang-up and each ``EV_CLEAR``
filter once per rising edge.  Tests can script failures and whole results.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket

import pytest

from evbackends_unix import kqueue as kq_mod
from evbackends_unix.kqueue import (
    ADD_UDATA,
    EV_ADD,
    EV_CLEAR,
    EV_DELETE,
    EV_EOF,
    EV_ERROR,
    FILTER_READ,
    FILTER_WRITE,
    KEvent,
    KqueueBackend,
    kevent,
)
from evcore.backend import BADFD
from evcore.errors import BackendUnavailable
from evcore.flags import EV_CLOSED, EV_ET, EV_READ, EV_WRITE, Feature

R, W, C, ET = int(EV_READ), int(EV_WRITE), int(EV_CLOSED), int(EV_ET)


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


class FakeKqueue:
    """A stand-in for ``select.kqueue()`` over ``select.poll`` (see the module docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, int, float | None]] = []
        self.filters: dict[tuple[int, int], int] = {}
        self.fail: dict[tuple[int, int, int], int] = {}  # (ident, filter, EV_ADD/EV_DELETE) -> errno
        self.script: list[list] = []
        self.raise_next: OSError | None = None
        self.errors: list[tuple[int, int, int]] = []  # every change that failed
        self.close_calls = 0
        self._edges: set[tuple[int, int]] = set()

    def control(self, changes, max_events, timeout=None):
        self.calls.append((list(changes), max_events, timeout))
        if self.raise_next is not None:
            exc, self.raise_next = self.raise_next, None
            raise exc
        out = []
        for ch in changes:
            err = self._apply(ch)
            if err:
                self.errors.append((ch.ident, ch.filter, err))
                if len(out) >= max_events:
                    raise OSError(err, os.strerror(err))
                out.append(kevent(ch.ident, ch.filter, ch.flags | EV_ERROR, 0, err, ch.udata))
        if out:
            return out
        if self.script:
            return self.script.pop(0)
        return self._wait(max_events, timeout)

    def _apply(self, ch) -> int:
        key = (ch.ident, ch.filter)
        if ch.flags & EV_ADD:
            err = self.fail.pop((ch.ident, ch.filter, EV_ADD), 0)
            if not err and _closed(ch.ident):
                err = errno.EBADF
            if not err:
                self.filters[key] = ch.flags
                self._edges.discard(key)
            return err
        assert ch.flags & EV_DELETE
        err = self.fail.pop((ch.ident, ch.filter, EV_DELETE), 0)
        if not err and _closed(ch.ident):
            err = errno.EBADF
        if not err and key not in self.filters:
            err = errno.ENOENT
        self.filters.pop(key, None)
        return err

    def _wait(self, max_events, timeout):
        for key in [k for k in self.filters if _closed(k[0])]:
            del self.filters[key]  # closing an fd removes its knotes
        p = select.poll()
        interest: dict[int, int] = {}
        for fd, filt in self.filters:
            interest[fd] = interest.get(fd, 0) | (select.POLLIN if filt == FILTER_READ else select.POLLOUT)
        for fd, bits in interest.items():
            p.register(fd, bits)
        ready = dict(p.poll(5000 if timeout is None else min(timeout, 5.0) * 1000))  # tests never hang
        out = []
        for key, flags in self.filters.items():
            fd, filt = key
            rev = ready.get(fd, 0)
            want = select.POLLIN if filt == FILTER_READ else select.POLLOUT
            if not rev & (want | select.POLLHUP | select.POLLERR):
                self._edges.discard(key)
                continue
            if flags & EV_CLEAR:
                if key in self._edges:
                    continue
                self._edges.add(key)
            out.append(kevent(fd, filt, EV_EOF if rev & select.POLLHUP else 0))
        return out[:max_events]

    def close(self) -> None:
        self.close_calls += 1


@pytest.fixture
def fake():
    return FakeKqueue()


@pytest.fixture
def be(fake):
    backend = KqueueBackend(None, kqueue_factory=lambda: fake)
    yield backend
    backend.close()


def test_class_facts():
    assert KqueueBackend.name == "kqueue"
    assert KqueueBackend.features == Feature.ET | Feature.O1 | Feature.FDS
    assert KqueueBackend.need_reinit is True
    assert KqueueBackend.changelist is True
    assert KqueueBackend.available() == hasattr(select, "kqueue")


def test_constants_are_the_bsd_values():
    assert (FILTER_READ, FILTER_WRITE) == (-1, -2)
    assert (EV_ADD, EV_DELETE, EV_CLEAR, EV_EOF, EV_ERROR) == (0x1, 0x2, 0x20, 0x8000, 0x4000)


@pytest.mark.skipif(hasattr(select, "kqueue"), reason="this system has a kqueue")
def test_unavailable_here():
    assert kevent is KEvent
    with pytest.raises(BackendUnavailable, match="not supported"):
        KqueueBackend(None)


def test_factory_failure_is_unavailable():
    def broken():
        raise OSError(errno.EMFILE, "Too many open files")

    with pytest.raises(BackendUnavailable, match="cannot create a kqueue"):
        KqueueBackend(None, kqueue_factory=broken)


def test_kevent_stand_in():
    kev = KEvent(3, FILTER_WRITE, EV_ADD | EV_CLEAR, 0, 0, ADD_UDATA)
    assert kev == KEvent(3, FILTER_WRITE, EV_ADD | EV_CLEAR, 0, 0, ADD_UDATA)
    assert kev != KEvent(3, FILTER_READ)
    assert kev != (3, FILTER_WRITE)
    assert "ident=3" in repr(kev) and "flags=0x21" in repr(kev)
    with pytest.raises(TypeError):
        hash(kev)


def test_changes_wait_for_dispatch(be, fake, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(a.fileno(), R, EV_WRITE)
    assert fake.calls == []
    assert [(k.ident, k.filter, k.flags, k.udata) for k in be.pending_changes()] == [
        (a.fileno(), FILTER_READ, EV_ADD, ADD_UDATA),
        (a.fileno(), FILTER_WRITE, EV_ADD, ADD_UDATA),
    ]
    b.send(b"x")
    assert be.dispatch(1.0) == [(a.fileno(), R | W)]  # both filters merged
    assert len(fake.calls) == 1 and len(fake.calls[0][0]) == 2
    assert be.pending_changes() == []
    assert be.dispatch(0) == [(a.fileno(), R | W)]
    assert fake.calls[-1][0] == []


def test_read_and_write_readiness(be, pair):
    a, b = pair()
    c, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(c.fileno(), 0, EV_WRITE)
    assert be.dispatch(0) == [(c.fileno(), W)]
    b.send(b"x")
    assert sorted(be.dispatch(1.0)) == sorted([(a.fileno(), R), (c.fileno(), W)])


def test_delete(be, fake, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    be.dispatch(0)
    be.delete(fd, R | W, EV_WRITE)
    b.send(b"x")
    assert be.dispatch(1.0) == [(fd, R)]
    be.delete(fd, R, EV_READ)
    assert [k.flags for k in be.pending_changes()] == [EV_DELETE]
    assert be.dispatch(0) == []
    assert be.watched() == {} and fake.filters == {}


def test_edge_triggered_uses_ev_clear(be, fake, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ | EV_ET)
    assert be.pending_changes()[0].flags == EV_ADD | EV_CLEAR
    b.send(b"x")
    assert be.dispatch(1.0) == [(a.fileno(), R)]
    assert be.dispatch(0) == []  # one report per edge
    a.recv(10)
    assert be.dispatch(0) == []
    b.send(b"y")
    assert be.dispatch(1.0) == [(a.fileno(), R)]


def test_level_triggered_fires_repeatedly(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    b.send(b"x")
    for _ in range(3):
        assert be.dispatch(0) == [(a.fileno(), R)]


def test_changing_et_re_adds_existing_filters(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_WRITE)
    be.dispatch(0)
    be.add(fd, W, EV_READ | EV_ET)
    flags = [(k.filter, k.flags) for k in be.pending_changes()]
    assert flags == [
        (FILTER_READ, EV_ADD | EV_CLEAR),
        (FILTER_WRITE, EV_DELETE),
        (FILTER_WRITE, EV_ADD | EV_CLEAR),
    ]
    assert be.dispatch(0) == [(fd, W)]
    assert be.dispatch(0) == []  # edge-triggered now
    be.delete(fd, R | W | ET, EV_ET)
    assert [(k.filter, k.flags) for k in be.pending_changes()] == [
        (FILTER_READ, EV_DELETE),
        (FILTER_READ, EV_ADD),
        (FILTER_WRITE, EV_DELETE),
        (FILTER_WRITE, EV_ADD),
    ]
    assert be.dispatch(0) == [(fd, W)]
    assert be.dispatch(0) == [(fd, W)]  # level-triggered again


def test_closed_only_registers_nothing(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_CLOSED)
    assert be.pending_changes() == [] and be.watched() == {}
    b.shutdown(socket.SHUT_WR)
    assert be.dispatch(0) == []


def test_eof_is_readiness(be, pipe):
    r, w = pipe()
    be.add(r, 0, EV_READ)
    os.close(w)
    assert be.dispatch(1.0) == [(r, R)]


def test_eof_with_socket_error_reports_what_is_watched(be, fake, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    be.dispatch(0)
    fake.script.append([kevent(fd, FILTER_WRITE, EV_EOF, errno.ECONNREFUSED)])
    assert be.dispatch(0) == [(fd, R | W)]


def test_results_for_unwatched_fds_and_other_filters_are_skipped(be, fake, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_WRITE)
    be.dispatch(0)
    fake.script.append(
        [
            kevent(fd, FILTER_READ, 0),  # READ is not watched
            kevent(fd + 1000, FILTER_WRITE, 0),  # not ours
            kevent(fd, -4, 0),  # EVFILT_VNODE: never asked for
            kevent(fd, FILTER_WRITE, 0),
        ]
    )
    assert be.dispatch(0) == [(fd, W)]


def test_delete_errors_are_ignored(be, fake, pair, caplog):
    a, _ = pair()
    fd = a.fileno()
    be.delete(fd, R, EV_READ)  # not in the kernel: ENOENT
    fake.fail[(fd, FILTER_WRITE, EV_DELETE)] = errno.EINVAL  # FreeBSD's oddity
    be.delete(fd, W, EV_WRITE)
    with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
        assert be.dispatch(0) == []
    assert caplog.text == ""
    fake.fail[(fd, FILTER_READ, EV_DELETE)] = errno.ENOMEM
    be.delete(fd, R, EV_READ)
    with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
        assert be.dispatch(0) == []
    assert "deleting filter" in caplog.text and "ENOMEM" in caplog.text


def test_delete_of_closed_fd_ignored(be, fake, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    be.dispatch(0)
    a.close()
    be.delete(fd, R, EV_READ)
    assert be.dispatch(0) == []  # EBADF on delete: ignored
    assert fake.errors == [(fd, FILTER_READ, errno.EBADF)]
    assert be.watched() == {}


def test_add_of_closed_fd_is_badfd(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    a.close()  # before the changes reach the kernel
    assert be.dispatch(0) == [(fd, BADFD)]
    assert be.watched() == {}


@pytest.mark.parametrize("err", [errno.EPERM, errno.EPIPE])
def test_add_on_dead_pipe_reports_what_is_watched(be, fake, pipe, err, caplog):
    _r, w = pipe()
    be.add(w, 0, EV_WRITE)
    fake.fail[(w, FILTER_WRITE, EV_ADD)] = err
    with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
        assert be.dispatch(0) == [(w, W)]  # libevent would say READ, which a writer never hears
    assert caplog.text == ""


def test_other_add_errors_are_logged_and_reported(be, fake, pair, caplog):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    fake.fail[(fd, FILTER_READ, EV_ADD)] = 99999  # not an errno at all
    with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
        assert be.dispatch(0) == [(fd, R)]
    assert "adding filter" in caplog.text and "errno 99999" in caplog.text


def test_add_error_for_fd_deleted_in_the_same_batch(be, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    be.delete(fd, R, EV_READ)
    a.close()
    assert be.dispatch(0) == []  # EBADF twice, nothing to tell the base


def test_event_buffer_has_room_for_every_change(be, fake, pair):
    fds = []
    for _ in range(50):
        a, _ = pair()
        be.add(a.fileno(), 0, EV_READ | EV_WRITE)
        fds.append(a.fileno())
    assert len(be.pending_changes()) == 100
    got = be.dispatch(0)
    assert fake.calls[-1][1] == 100
    assert sorted(got) == sorted((fd, W) for fd in fds)


def test_event_buffer_grows_and_stops_at_the_cap(be, fake, monkeypatch):
    assert be.nevents == 64
    fake.script.append([kevent(1000 + i, FILTER_READ, 0) for i in range(64)])
    be.dispatch(0)
    assert be.nevents == 128
    monkeypatch.setattr(kq_mod, "MAX_NEVENTS", 128)
    fake.script.append([kevent(1000 + i, FILTER_READ, 0) for i in range(128)])
    be.dispatch(0)
    assert be.nevents == 128


def test_timeouts_passed_to_kevent(be, fake, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    b.send(b"x")
    for timeout in (None, 0, -3.0, 0.25, 1e12):
        be.dispatch(timeout)
    assert [call[2] for call in fake.calls] == [None, 0, 0, 0.25, kq_mod.MAX_WAIT]


def test_kevent_failure_propagates(be, fake):
    fake.raise_next = OSError(errno.EBADF, "Bad file descriptor")
    with pytest.raises(OSError):
        be.dispatch(0)


def test_close_is_idempotent_and_drops_changes(fake, pair):
    be = KqueueBackend(None, kqueue_factory=lambda: fake)
    a, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert repr(be) == "<KqueueBackend 'kqueue' fds=1>"
    be.close()
    be.close()
    assert fake.close_calls == 1
    assert be.pending_changes() == [] and be.watched() == {}
    assert repr(be) == "<KqueueBackend 'kqueue' closed>"


def test_forked_child_never_closes_the_inherited_kqueue(be, fake, pair, in_child):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.dispatch(0)

    def child() -> int:
        be.close()
        if fake.close_calls != 0 or fake not in kq_mod._orphans:
            return 1
        fresh = KqueueBackend(None, kqueue_factory=FakeKqueue)  # what reinit() builds
        fresh.add(a.fileno(), 0, EV_READ)
        b.send(b"c")
        ok = fresh.dispatch(1.0) == [(a.fileno(), R)]
        fresh.close()
        return 0 if ok and fresh._kq.close_calls == 1 else 2

    assert in_child(child) == 0
    assert a.recv(10) == b"c"
    be.close()
    assert fake.close_calls == 1
