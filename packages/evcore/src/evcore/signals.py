"""Signals through ``signal.set_wakeup_fd`` and a self-pipe.

Facts and theory of operation
-----------------------------
* Python runs signal handlers only in the main thread, between bytecodes.  evcore
  never runs user code in a handler: it installs a do-nothing Python handler for
  each watched signal and points :func:`signal.set_wakeup_fd` at the write end of
  a non-blocking socketpair.  CPython's C-level handler writes the signal number
  there as one byte; the base watches the read end as an internal fd, counts the
  bytes per signal and activates that signal's events with ``ncalls`` set to the
  count (several deliveries between two loop passes coalesce into one callback,
  as in libevent).
* One base at a time owns the process's signals (libevent's rule): the base that
  most recently added a signal event gets the wakeup fd.  When it lets go (its
  last signal event deleted, or the base freed) the wakeup fd it replaced is put
  back.
* Deleting the last event for a signal restores the Python handler that was
  installed before evcore's.
* ``signal.signal`` works only in the main thread: adding a signal event elsewhere
  raises :class:`evcore.EventError` saying so.
"""

from __future__ import annotations

import signal
import socket
from types import FrameType
from typing import Any

from .errors import EventError

__all__ = ["SignalState"]

_owner: list[SignalState | None] = [None]


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the wakeup fd carries the news."""


class SignalState:
    """The signal machinery of one base: its self-pipe and saved handlers.

    >>> st = SignalState()
    >>> st.rfd >= 0
    True
    >>> st.close()
    """

    __slots__ = ("_r", "_w", "rfd", "_saved", "_prev_wakeup", "_owning")

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self.rfd = self._r.fileno()
        self._saved: dict[int, Any] = {}
        self._prev_wakeup = -1
        self._owning = False

    def watch(self, signum: int) -> None:
        """Start catching ``signum`` (first event for it in this base)."""
        try:
            old = signal.signal(signum, _ignore)
        except ValueError as exc:
            if "main thread" in str(exc):
                raise EventError(
                    "signal events can only be added from the main thread (Python's rule)"
                ) from exc
            raise EventError(f"cannot catch signal {signum}: {exc}") from exc
        if signum not in self._saved:
            self._saved[signum] = old
        self._own()

    def unwatch(self, signum: int) -> None:
        """Stop catching ``signum``: put the handler that was there back."""
        if signum in self._saved:
            old = self._saved.pop(signum)
            try:
                signal.signal(signum, old if old is not None else signal.SIG_DFL)
            except (ValueError, TypeError):  # pragma: no cover - not main thread at teardown
                pass
        if not self._saved:
            self._release()

    def take(self) -> None:
        """Make this base the one that receives the process's signals (its loop started)."""
        self._own()

    def _own(self) -> None:
        owner = _owner[0]
        if owner is self and self._owning:
            return
        prev = signal.set_wakeup_fd(self._w.fileno(), warn_on_full_buffer=False)
        if owner is not None and owner is not self:
            owner._owning = False
            # keep the original wakeup fd of the process, not the previous base's
            prev = owner._prev_wakeup
        self._prev_wakeup = prev
        self._owning = True
        _owner[0] = self

    def _release(self) -> None:
        if not self._owning:
            return
        self._owning = False
        if _owner[0] is self:
            _owner[0] = None
            try:
                current = signal.set_wakeup_fd(-1)
                # put back what was there before us; leave another library's fd in place
                restore = self._prev_wakeup if current == self._w.fileno() else current
                if restore != -1:
                    signal.set_wakeup_fd(restore, warn_on_full_buffer=False)
            except ValueError:  # pragma: no cover - not main thread
                pass

    def read(self) -> dict[int, int]:
        """Drain the pipe; return ``{signum: deliveries}``."""
        counts: dict[int, int] = {}
        while True:
            try:
                data = self._r.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            if not data:  # pragma: no cover - our own write end never closes early
                break
            for b in data:
                counts[b] = counts.get(b, 0) + 1
            if len(data) < 4096:
                break
        return counts

    @property
    def owning(self) -> bool:
        """Whether this base currently receives the process's signals."""
        return self._owning

    def close(self) -> None:
        """Restore every handler and the wakeup fd, then close the pipe."""
        for signum in list(self._saved):
            self.unwatch(signum)
        self._release()
        self._r.close()
        self._w.close()
