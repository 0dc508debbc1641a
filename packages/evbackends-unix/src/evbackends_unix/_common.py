"""Pieces shared by the Unix backends: the logger, plain-int masks, poll-bit translation.

The backends keep every mask as a plain ``int`` (never an :class:`enum.IntFlag`): the
flags arrive as ``IntFlag`` from the core, and ``IntFlag`` arithmetic builds a new enum
member on every operation, which would cost more than the system call in
:meth:`dispatch`.  So masks are converted once, in ``add``/``delete``.

>>> READ, WRITE, CLOSED, ET
(2, 4, 128, 32)
>>> poll_to_ev(select.POLLIN | select.POLLHUP, READ)
2
"""

from __future__ import annotations

import errno
import logging
import os
import select
from types import TracebackType
from typing import Any, ClassVar

from evcore.backend import BADFD, Backend
from evcore.flags import EV_CLOSED, EV_ET, EV_READ, EV_WRITE

__all__ = [
    "log",
    "READ",
    "WRITE",
    "CLOSED",
    "ET",
    "RW",
    "WATCHED",
    "BAD",
    "MAX_WAIT",
    "poll_to_ev",
    "poll_bits",
    "fd_is_closed",
    "UnixBackend",
]

#: The package's logger (no handlers; the application configures logging).
log = logging.getLogger("evbackends_unix")

READ = int(EV_READ)
WRITE = int(EV_WRITE)
CLOSED = int(EV_CLOSED)
ET = int(EV_ET)
RW = READ | WRITE
#: The bits that make an fd watched; ``EV_ET`` alone watches nothing.
WATCHED = READ | WRITE | CLOSED
BAD = int(BADFD)

#: The longest single wait in seconds.  Old Linux kernels wait forever on an epoll
#: timeout above about 35 minutes (libevent caps it the same way), and ``poll()``
#: refuses more than ``INT_MAX`` milliseconds; the base simply waits again.
MAX_WAIT = 35 * 60.0

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLLHUP_ERR = select.POLLHUP | select.POLLERR


def poll_bits(mask: int) -> int:
    """The ``poll()`` event bits that watch the EV ``mask`` (``EV_CLOSED``/``EV_ET`` ignored).

    >>> poll_bits(READ | WRITE) == select.POLLIN | select.POLLOUT
    True
    >>> poll_bits(CLOSED)
    0
    """
    bits = 0
    if mask & READ:
        bits |= _POLLIN
    if mask & WRITE:
        bits |= _POLLOUT
    return bits


def poll_to_ev(revents: int, mask: int) -> int:
    """Translate ``poll()`` ``revents`` into EV bits, limited to the watched ``mask``.

    ``POLLHUP``/``POLLERR`` mean "every watched condition" (libevent's rule: the next
    read or write on the fd tells the user what happened).  ``POLLNVAL`` is the
    caller's business.

    >>> poll_to_ev(select.POLLERR, READ | WRITE)
    6
    >>> poll_to_ev(select.POLLOUT, READ | WRITE)
    4
    """
    if revents & _POLLHUP_ERR:
        return mask & RW
    ev = 0
    if revents & _POLLIN:
        ev = READ
    if revents & _POLLOUT:
        ev |= WRITE
    return ev & mask


def fd_is_closed(fd: int) -> bool:
    """True when ``fd`` is not an open file descriptor of this process.

    >>> r, w = os.pipe(); os.close(w)
    >>> fd_is_closed(r), fd_is_closed(w)
    (False, True)
    >>> os.close(r)
    """
    try:
        os.fstat(fd)
    except OSError as exc:
        return exc.errno == errno.EBADF
    return False


class UnixBackend(Backend):
    """Common base of this package's backends: a context manager with a safe ``repr``.

    Subclasses keep their fd -> mask map in ``_masks`` and set ``_closed``.

    >>> from evbackends_unix.poll import PollBackend
    >>> with PollBackend(None) as be:
    ...     repr(be)
    "<PollBackend 'poll' fds=0>"
    >>> repr(be)
    "<PollBackend 'poll' closed>"
    """

    name: ClassVar[str] = ""

    def __init__(self, base: Any = None) -> None:
        super().__init__(base)
        self._masks: dict[int, int] = {}
        self._closed = False

    def __enter__(self) -> UnixBackend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        try:
            state = "closed" if self._closed else f"fds={len(self._masks)}"
        except Exception:  # pragma: no cover - a repr must never raise
            state = "?"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    def watched(self) -> dict[int, int]:
        """A copy of the fd -> EV mask map the backend holds (for tests and debugging).

        >>> from evbackends_unix.poll import PollBackend
        >>> PollBackend(None).watched()
        {}
        """
        return dict(self._masks)
