"""The /dev/poll backend against a fake ``select.devpoll`` (this machine has no /dev/poll).

``FakeDevpoll`` behaves like CPython's ``devpoll`` over the Solaris driver as far as
the backend can tell: ``register``/``modify``/``unregister`` only buffer ``pollfd``
records (``modify`` is ``POLLREMOVE`` + the new mask); the buffer is written at the
next ``poll()``, or early when it is full; a written record ORs its events into the
fd's cached interest and only ``POLLREMOVE`` takes them away; a failed write drops
the whole buffer and raises.  ``poll()`` then waits with ``select.poll`` on the real
fds (so a closed fd reports ``POLLNVAL``).  Tests can script failures and results.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket

import pytest

from evbackends_unix import devpoll as dp_mod
from evbackends_unix.devpoll import DevpollBackend
from evcore.backend import BADFD
from evcore.errors import BackendUnavailable
from evcore.flags import EV_CLOSED, EV_ET, EV_READ, EV_WRITE, Feature

R, W, C, ET = int(EV_READ), int(EV_WRITE), int(EV_CLOSED), int(EV_ET)
POLLREMOVE = 0x0800  # Solaris <sys/devpoll.h>
IN, OUT = select.POLLIN, select.POLLOUT


class FakeDevpoll:
    """A stand-in for ``select.devpoll()`` (see the module docstring)."""

    def __init__(self, buffer_size: int = 1000) -> None:
        self.buffer_size = buffer_size
        self.buffer: list[tuple[int, int]] = []
        self.written: list[tuple[int, int]] = []
        self.interest: dict[int, int] = {}
        self.fail_write: OSError | None = None
        self.script: list[list[tuple[int, int]]] = []
        self.timeouts: list[float | None] = []
        self.close_calls = 0

    def register(self, fd: int, mask: int = IN | OUT) -> None:
        self._record(fd, mask)

    def modify(self, fd: int, mask: int = IN | OUT) -> None:
        self._record(fd, POLLREMOVE)
        self._record(fd, mask)

    def unregister(self, fd: int) -> None:
        self._record(fd, POLLREMOVE)

    def _record(self, fd: int, events: int) -> None:
        if len(self.buffer) >= self.buffer_size:
            self._write()
        self.buffer.append((fd, events))

    def _write(self) -> None:
        records, self.buffer = self.buffer, []
        if self.fail_write is not None:
            exc, self.fail_write = self.fail_write, None
            raise exc
        for fd, events in records:
            if events == POLLREMOVE:
                self.interest.pop(fd, None)
            else:
                self.interest[fd] = self.interest.get(fd, 0) | events
        self.written.extend(records)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        self.timeouts.append(timeout)
        self._write()
        if self.script:
            return self.script.pop(0)
        p = select.poll()
        for fd, events in self.interest.items():
            p.register(fd, events)
        return p.poll(5000 if timeout is None or timeout > 5000 else timeout)  # tests never hang

    def close(self) -> None:
        self.close_calls += 1


@pytest.fixture
def fake():
    return FakeDevpoll()


@pytest.fixture
def be(fake):
    backend = DevpollBackend(None, devpoll_factory=lambda: fake)
    yield backend
    backend.close()


def test_class_facts():
    assert DevpollBackend.name == "devpoll"
    assert DevpollBackend.features == Feature.FDS | Feature.O1
    assert DevpollBackend.need_reinit is True
    assert DevpollBackend.changelist is True
    assert DevpollBackend.available() == hasattr(select, "devpoll")


@pytest.mark.skipif(hasattr(select, "devpoll"), reason="this system has /dev/poll")
def test_unavailable_here():
    with pytest.raises(BackendUnavailable, match="not supported"):
        DevpollBackend(None)


def test_factory_failure_is_unavailable():
    def broken():
        raise PermissionError(errno.EACCES, "Permission denied: '/dev/poll'")

    with pytest.raises(BackendUnavailable, match="cannot open /dev/poll"):
        DevpollBackend(None, devpoll_factory=broken)


def test_changes_wait_for_dispatch(be, fake, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert fake.buffer == [] and fake.written == []
    b.send(b"x")
    assert be.dispatch(1.0) == [(a.fileno(), R)]
    assert fake.written == [(a.fileno(), IN)]


def test_read_write_and_both(be, fake, pair):
    a, b = pair()
    c, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.add(c.fileno(), 0, EV_WRITE)
    assert be.dispatch(0) == [(c.fileno(), W)]
    be.add(a.fileno(), R, EV_WRITE)
    b.send(b"x")
    assert sorted(be.dispatch(1.0)) == sorted([(a.fileno(), R | W), (c.fileno(), W)])
    # a second bit on a known fd is a modify: POLLREMOVE, then the whole new mask
    assert fake.written[-2:] == [(a.fileno(), POLLREMOVE), (a.fileno(), IN | OUT)]


def test_delete_lowers_then_removes(be, fake, pair):
    a, b = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ | EV_WRITE)
    be.dispatch(0)
    be.delete(fd, R | W, EV_WRITE)
    b.send(b"x")
    assert be.dispatch(1.0) == [(fd, R)]
    assert fake.interest == {fd: IN}
    be.delete(fd, R, EV_READ)
    assert be.dispatch(0) == []
    assert fake.written[-1] == (fd, POLLREMOVE) and fake.interest == {}
    assert be.watched() == {}


def test_net_changes_only(be, fake, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_READ)
    be.delete(fd, R, EV_READ)  # never reached the kernel: nothing to write
    be.add(fd, 0, EV_WRITE)
    be.dispatch(0)
    assert fake.written == [(fd, OUT)]
    be.add(fd, W, EV_CLOSED)  # CLOSED changes nothing devpoll can watch
    be.dispatch(0)
    assert fake.written == [(fd, OUT)]


def test_level_triggered_even_with_et(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ | EV_ET)
    b.send(b"x")
    for _ in range(3):
        assert be.dispatch(0) == [(a.fileno(), R)]


def test_closed_only_stays_out(be, fake, pipe):
    r, w = pipe()
    be.add(r, 0, EV_CLOSED)
    os.close(w)
    assert be.dispatch(0) == []
    assert fake.interest == {} and be.watched() == {r: C}


def test_closed_never_fires_on_shutdown(be, pair):
    a, b = pair()
    be.add(a.fileno(), 0, EV_WRITE | EV_CLOSED)
    b.shutdown(socket.SHUT_WR)
    assert be.dispatch(0) == [(a.fileno(), W)]


def test_hup_and_err_map_to_what_is_watched(be, pipe):
    r, w = pipe()
    r2, w2 = pipe()
    be.add(r, 0, EV_READ | EV_WRITE)
    be.add(w2, 0, EV_READ)
    assert be.dispatch(0) == []
    os.close(w)  # POLLHUP on r
    os.close(r2)  # POLLERR on w2
    assert sorted(be.dispatch(1.0)) == sorted([(r, R | W), (w2, R)])


def test_pollnval_is_badfd_and_forgotten(be, fake, pipe):
    r, _w = pipe()
    be.add(r, 0, EV_READ)
    be.dispatch(0)
    os.close(r)
    assert be.dispatch(1.0) == [(r, BADFD)]
    assert be.watched() == {}
    assert be.dispatch(0) == []
    assert fake.interest == {}  # POLLREMOVE was sent


def test_pollnval_for_an_fd_no_longer_watched_is_skipped(be, fake, pair):
    a, _ = pair()
    fd = a.fileno()
    be.add(fd, 0, EV_WRITE)
    fake.script.append([(fd + 500, select.POLLNVAL), (fd, OUT)])
    assert be.dispatch(0) == [(fd, W)]


def test_timeouts_in_milliseconds(be, fake):
    for timeout in (None, 0, -1.0, 0.25, 1e12):
        fake.script.append([])  # no real wait
        be.dispatch(timeout)
    assert fake.timeouts == [None, 0, 0, 250.0, dp_mod.MAX_WAIT * 1000.0]


def test_failed_write_with_a_closed_fd_resyncs(be, fake, pair, caplog):
    a, _ = pair()
    c, d = pair()
    x, _ = pair()
    y, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    be.add(x.fileno(), 0, EV_WRITE)
    be.add(y.fileno(), 0, EV_CLOSED)  # watched, but nothing /dev/poll can report
    be.dispatch(0)
    gone = a.fileno()
    a.close()
    be.add(c.fileno(), 0, EV_READ)  # this record is lost with the failed write
    be.delete(x.fileno(), W, EV_WRITE)  # ... and so is this one
    fake.fail_write = OSError(errno.EBADF, "Bad file descriptor")
    with caplog.at_level(logging.WARNING, logger="evbackends_unix"):
        assert be.dispatch(0) == [(gone, BADFD)]
    assert "closed fds" in caplog.text
    d.send(b"x")
    assert be.dispatch(1.0) == [(c.fileno(), R)]  # everything was sent again
    assert fake.interest == {c.fileno(): IN}
    assert be.watched() == {c.fileno(): R, y.fileno(): C}


def test_failed_write_without_a_closed_fd_raises(be, fake, pair):
    a, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    fake.fail_write = OSError(errno.EINVAL, "Invalid argument")
    with pytest.raises(OSError) as info:
        be.dispatch(0)
    assert info.value.errno == errno.EINVAL


def test_failed_early_write_of_a_full_buffer_resyncs(pair):
    fake = FakeDevpoll(buffer_size=1)
    be = DevpollBackend(None, devpoll_factory=lambda: fake)
    a, _ = pair()
    c, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    be.dispatch(0)
    gone = a.fileno()
    a.close()
    be.add(c.fileno(), 0, EV_WRITE)
    be.add(c.fileno() + 1, 0, EV_READ)  # two records: the first fills the buffer
    fake.fail_write = OSError(errno.EBADF, "Bad file descriptor")
    got = be.dispatch(0)
    assert (gone, BADFD) in got and (c.fileno(), W) in got
    be.close()


def test_close_is_idempotent(fake, pair):
    be = DevpollBackend(None, devpoll_factory=lambda: fake)
    a, _ = pair()
    be.add(a.fileno(), 0, EV_READ)
    assert repr(be) == "<DevpollBackend 'devpoll' fds=1>"
    be.close()
    be.close()
    assert fake.close_calls == 1
    assert be.watched() == {}
    assert repr(be) == "<DevpollBackend 'devpoll' closed>"


def test_fork_child_builds_a_new_backend(be, pair, in_child):
    a, b = pair()
    be.add(a.fileno(), 0, EV_READ)
    be.dispatch(0)

    def child() -> int:
        be.close()
        fresh = DevpollBackend(None, devpoll_factory=FakeDevpoll)
        fresh.add(a.fileno(), 0, EV_READ)
        b.send(b"c")
        ok = fresh.dispatch(1.0) == [(a.fileno(), R)]
        fresh.close()
        return 0 if ok else 1

    assert in_child(child) == 0
    assert a.recv(10) == b"c"


def test_results_for_fds_not_watched_for_them_are_skipped(be, fake, pair):
    a, _ = pair()
    c, _ = pair()
    be.add(a.fileno(), 0, EV_WRITE)
    be.add(c.fileno(), 0, EV_CLOSED)  # watched, but never in /dev/poll
    fake.script.append([(a.fileno(), IN), (c.fileno(), select.POLLNVAL)])
    assert be.dispatch(0) == [(c.fileno(), BADFD)]
    assert fake.written == [(a.fileno(), OUT)]  # no POLLREMOVE for c: it was never sent
