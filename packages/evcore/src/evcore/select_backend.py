"""The ``select()`` backend: always present, so evcore works alone.

Facts: ``select()`` takes only fds below ``FD_SETSIZE`` (1024 on Linux); a larger fd
is refused at :meth:`SelectBackend.add` with ``EINVAL`` rather than failing every
later dispatch.  When ``select()`` reports ``EBADF`` the backend finds the closed
fds one by one with ``os.fstat`` and reports each as ``BADFD``, so one stale fd
never wedges the loop.  ``EV_CLOSED`` and ``EV_ET`` are not supported (level
triggered only, as libevent's select backend).

>>> import socket
>>> a, b = socket.socketpair()
>>> be = SelectBackend(None)
>>> be.add(a.fileno(), 0, EV_READ)
>>> b.send(b"x")
1
>>> list(be.dispatch(1.0)) == [(a.fileno(), EV_READ)]
True
>>> a.close(); b.close()
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Iterable

from . import flags as _flags
from .backend import BADFD, Backend
from .flags import Feature

# plain ints on hot paths: IntFlag operators run Python code
EV_READ = int(_flags.EV_READ)
EV_WRITE = int(_flags.EV_WRITE)

__all__ = ["SelectBackend", "FD_SETSIZE"]

#: The largest fd + 1 that ``select()`` accepts on this platform.
FD_SETSIZE = 1024


class SelectBackend(Backend):
    """Readiness through :func:`select.select` (libevent's ``selectops``).

    >>> SelectBackend.name
    'select'
    """

    name = "select"
    features = Feature.FDS

    def __init__(self, base: object) -> None:
        super().__init__(base)  # type: ignore[arg-type]
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def add(self, fd: int, old: int, events: int) -> None:
        """Watch ``events`` on ``fd``; refuses fds select cannot take."""
        if fd < 0 or fd >= FD_SETSIZE:
            raise OSError(errno.EINVAL, f"select backend cannot watch fd {fd} (FD_SETSIZE is {FD_SETSIZE})")
        if events & EV_READ:
            self._readers.add(fd)
        if events & EV_WRITE:
            self._writers.add(fd)

    def delete(self, fd: int, old: int, events: int) -> None:
        """Stop watching ``events`` on ``fd``."""
        if events & EV_READ:
            self._readers.discard(fd)
        if events & EV_WRITE:
            self._writers.discard(fd)

    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Wait with ``select()``; report ready fds, or closed ones as ``BADFD``."""
        try:
            r, w, _ = select.select(self._readers, self._writers, (), timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            return ()
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno != errno.EBADF:
                raise
            return [(fd, BADFD) for fd in self._find_bad()]
        if not w:
            return [(fd, EV_READ) for fd in r]
        out: dict[int, int] = dict.fromkeys(r, EV_READ)
        for fd in w:
            out[fd] = out.get(fd, 0) | EV_WRITE
        return out.items()

    def _find_bad(self) -> list[int]:
        bad = []
        for fd in self._readers | self._writers:
            try:
                os.fstat(fd)
            except OSError:
                bad.append(fd)
        for fd in bad:
            self._readers.discard(fd)
            self._writers.discard(fd)
        return bad

    def close(self) -> None:
        """Forget every fd."""
        self._readers.clear()
        self._writers.clear()
