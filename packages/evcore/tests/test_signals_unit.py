"""Unit tests of :mod:`evcore.signals` (``SignalState``) with real signals, run forked."""

from __future__ import annotations

import signal
import socket
import threading
from typing import Any

import pytest

from evcore import EventError
from evcore.signals import SignalState


def _wakeup_fd() -> int:
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


def test_watch_read_unwatch() -> None:
    """A watched signal writes its number to the pipe; ``read`` counts deliveries; ``unwatch`` restores."""
    st = SignalState()
    before = signal.getsignal(signal.SIGUSR1)
    try:
        st.watch(signal.SIGUSR1)
        assert st.owning
        assert _wakeup_fd() == st._w.fileno()
        for _ in range(3):
            signal.raise_signal(signal.SIGUSR1)
        assert st.read() == {signal.SIGUSR1: 3}
        assert st.read() == {}
        st.unwatch(signal.SIGUSR1)
        assert signal.getsignal(signal.SIGUSR1) == before
        assert not st.owning
        assert _wakeup_fd() == -1
        st.unwatch(signal.SIGUSR2)  # never watched: harmless
    finally:
        st.close()


def test_watch_twice_keeps_original_handler() -> None:
    """Watching a signal twice remembers the handler from before the first watch."""

    def mine(signum: int, frame: Any) -> None:
        pass

    old = signal.signal(signal.SIGUSR2, mine)
    st = SignalState()
    try:
        st.watch(signal.SIGUSR2)
        st.watch(signal.SIGUSR2)
        st.unwatch(signal.SIGUSR2)
        assert signal.getsignal(signal.SIGUSR2) is mine
    finally:
        st.close()
        signal.signal(signal.SIGUSR2, old)


def test_ownership_moves_and_restores_original_wakeup_fd() -> None:
    """The last state to watch owns the wakeup fd; releasing puts back the process's original one."""
    a = SignalState()
    b = SignalState()
    try:
        a.watch(signal.SIGUSR1)
        assert a.owning and _wakeup_fd() == a._w.fileno()
        b.watch(signal.SIGUSR2)
        assert b.owning and not a.owning
        assert _wakeup_fd() == b._w.fileno()
        signal.raise_signal(signal.SIGUSR2)
        assert b.read() == {signal.SIGUSR2: 1} and a.read() == {}
        a.watch(signal.SIGUSR1)  # watching again takes it back
        assert a.owning and not b.owning
        b.close()  # not the owner: leaves the wakeup fd alone
        assert _wakeup_fd() == a._w.fileno()
        a.close()
        assert _wakeup_fd() == -1
    finally:
        a.close()
        b.close()


def test_watch_invalid_signal() -> None:
    """An invalid signal number is an ``EventError``; an uncatchable one fails in the OS (``OSError``)."""
    st = SignalState()
    try:
        with pytest.raises(EventError, match="cannot catch signal"):
            st.watch(0)
        with pytest.raises((EventError, OSError)):
            st.watch(signal.SIGKILL)
        assert not st.owning
    finally:
        st.close()


def test_watch_from_thread_refused() -> None:
    """``watch`` outside the main thread says that signals belong to the main thread."""
    st = SignalState()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            st.watch(signal.SIGUSR1)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    st.close()
    assert len(errors) == 1 and isinstance(errors[0], EventError)
    assert "main thread" in str(errors[0])


def test_read_many() -> None:
    """Many deliveries before one read are all counted (as long as the pipe holds them)."""
    st = SignalState()
    try:
        st.watch(signal.SIGUSR1)
        for _ in range(50):
            signal.raise_signal(signal.SIGUSR1)
        total = 0
        for _ in range(10):
            total += st.read().get(signal.SIGUSR1, 0)
        assert total == 50
    finally:
        st.close()


def test_release_leaves_foreign_wakeup_fd() -> None:
    """Releasing signals leaves alone a wakeup fd another library installed after evcore took it."""
    st = SignalState()
    r, w = socket.socketpair()
    w.setblocking(False)
    try:
        st.watch(signal.SIGUSR1)
        signal.set_wakeup_fd(w.fileno())  # e.g. an asyncio loop started later in this thread
        st.close()
        assert _wakeup_fd() == w.fileno()
    finally:
        signal.set_wakeup_fd(-1)
        st.close()
        r.close()
        w.close()
