"""Making a base usable again after ``fork()`` (libevent's ``event_reinit``)."""

from __future__ import annotations

import os

from ._basestate import (
    EV_READ,
)
from .evmap import EventMap
from .signals import SignalState

__all__ = ["ForkSupport"]


class ForkSupport(EventMap):
    """Making a base usable again after ``fork()`` (libevent's ``event_reinit``)."""

    def reinit(self) -> None:
        """Make the base usable in a forked child (libevent's ``event_reinit``).

        Rebuilds the backend when it does not survive ``fork()`` and re-adds every
        fd; replaces the thread-wakeup and signal pipes, which parent and child
        would otherwise share.
        """
        with self._lock:
            old_be = self._backend
            if old_be.need_reinit:
                try:
                    old_be.close()
                except OSError:  # pragma: no cover
                    pass
                assert self._backend_cls is not None
                self._backend = self._backend_cls(self)  # type: ignore[arg-type]
                self._kmask.clear()
                for fd in self._fdmap:
                    self._changes[fd] = False
            # new private wakeup fds
            for fd in list(self._internal):
                if not old_be.need_reinit:
                    try:
                        self._backend.delete(fd, EV_READ, EV_READ)
                    except OSError:  # pragma: no cover
                        pass
            self._internal.clear()
            if self._notify_r >= 0:
                os.close(self._notify_r)
                if self._notify_w != self._notify_r:  # pragma: no cover - non-Linux
                    os.close(self._notify_w)
                self._notify_r = self._notify_w = -1
                self._notified = False
                self._make_notify()
            if self._signals is not None:
                old_sig = self._signals
                watched = list(self._sigmap)
                old_sig.close()
                self._signals = SignalState()
                self._add_internal(self._signals.rfd, self._read_signals)
                for signum in watched:
                    self._signals.watch(signum)
            if not self._use_changelist:
                self._flush_changes()
