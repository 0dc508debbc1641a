"""The ``poll()`` backend (libevent's ``pollops``) over :func:`select.poll`.

Facts and theory of operation
-----------------------------
* ``poll()`` takes any fd number (``Feature.FDS``: it also works on pipes, ttys and
  character devices), costs O(number of fds) per wait, and is level-triggered only:
  ``EV_ET`` is accepted and ignored (the fd behaves level-triggered), and
  ``EV_CLOSED`` never fires (no ``Feature.EARLY_CLOSE``), both as libevent 2.0.
* An fd whose mask holds only ``EV_CLOSED`` (and maybe ``EV_ET``) is not put in the
  poll set at all: ``poll()`` always reports ``POLLHUP``, so a hung-up fd watched for
  nothing it can report would wake the loop forever.
* ``POLLHUP``/``POLLERR`` are reported as ``EV_READ|EV_WRITE`` of whatever is watched
  (libevent's rule); the next read or write tells the user what happened.
* ``POLLNVAL`` means the fd was closed behind the base's back: it is reported as
  ``(fd, BADFD)`` and the fd is forgotten, so one stale fd never spins the loop.
* The poll set is a plain Python object: nothing in the kernel to rebuild after
  ``fork()`` (``need_reinit`` is false, as libevent 2.0), and nothing to coalesce
  (``changelist`` is false: ``add``/``delete`` cost no system call and raise at once).
* ``select.poll`` copies its fd table before it releases the GIL to wait, so an
  ``add``/``delete`` from another thread during :meth:`PollBackend.dispatch` takes
  effect at the next wait (the base wakes the loop for that).

>>> import socket
>>> a, b = socket.socketpair()
>>> be = PollBackend(None)
>>> be.add(a.fileno(), 0, EV_READ | EV_WRITE)
>>> list(be.dispatch(0)) == [(a.fileno(), EV_WRITE)]
True
>>> a.close(); b.close(); be.close()
"""

from __future__ import annotations

import errno
import select
from collections.abc import Iterable
from typing import Any

from evcore.flags import EV_READ, EV_WRITE, Feature  # noqa: F401 - for the doctests

from ._common import BAD, MAX_WAIT, UnixBackend, log, poll_bits, poll_to_ev

__all__ = ["PollBackend"]

_POLLNVAL = select.POLLNVAL


class PollBackend(UnixBackend):
    """Readiness through :func:`select.poll` (level-triggered, any kind of fd).

    >>> PollBackend.name, PollBackend.features, PollBackend.need_reinit, PollBackend.changelist
    ('poll', <Feature.FDS: 4>, False, False)
    """

    name = "poll"
    features = Feature.FDS
    need_reinit = False
    changelist = False

    @classmethod
    def available(cls) -> bool:
        """True where :func:`select.poll` exists.

        >>> PollBackend.available() == hasattr(select, "poll")
        True
        """
        return hasattr(select, "poll")

    def __init__(self, base: Any = None) -> None:
        """Create an empty poll set.

        >>> PollBackend(None).watched()
        {}
        """
        super().__init__(base)
        self._poll: Any = select.poll()

    def add(self, fd: int, old: int, events: int) -> None:
        """Watch ``events`` on ``fd`` on top of ``old``; a negative fd raises ``EBADF``.

        >>> be = PollBackend(None)
        >>> be.add(0, 0, EV_READ); be.watched()
        {0: 2}
        """
        if fd < 0:
            raise OSError(errno.EBADF, f"poll backend cannot watch fd {fd}")
        self._set(fd, int(old | events))

    def delete(self, fd: int, old: int, events: int) -> None:
        """Stop watching ``events`` on ``fd``; unknown fds are ignored.

        >>> be = PollBackend(None)
        >>> be.add(0, 0, EV_READ); be.delete(0, EV_READ, EV_READ); be.watched()
        {}
        """
        self._set(fd, int(old) & ~int(events))

    def _set(self, fd: int, mask: int) -> None:
        bits = poll_bits(mask)
        if bits:
            self._poll.register(fd, bits)  # registering again replaces the mask
            self._masks[fd] = mask
        elif fd in self._masks:
            del self._masks[fd]
            self._poll.unregister(fd)
        # else: nothing poll can report is watched; keep it out of the poll set

    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (``None``: forever); report what fired.

        >>> PollBackend(None).dispatch(0)
        []
        """
        if timeout is None:
            ms: float | None = None
        elif timeout <= 0:
            ms = 0
        else:
            ms = min(timeout, MAX_WAIT) * 1000.0  # select.poll rounds up to whole ms
        try:
            ready = self._poll.poll(ms)
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            return []
        masks = self._masks
        out = []
        for fd, revents in ready:
            if revents & _POLLNVAL:
                if fd in masks:  # else deleted by another thread meanwhile
                    log.debug("poll: fd %d is closed (POLLNVAL); forgetting it", fd)
                    del masks[fd]
                    self._poll.unregister(fd)
                    out.append((fd, BAD))
                continue
            ev = poll_to_ev(revents, masks.get(fd, 0))
            if ev:
                out.append((fd, ev))
        return out

    def close(self) -> None:
        """Forget every fd (idempotent).

        >>> be = PollBackend(None); be.close(); be.close()
        """
        if self._closed:
            return
        self._closed = True
        for fd in self._masks:
            self._poll.unregister(fd)
        self._masks.clear()
