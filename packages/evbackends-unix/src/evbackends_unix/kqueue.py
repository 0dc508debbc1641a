"""The BSD/macOS ``kqueue`` backend (libevent's ``kqops``) over :class:`select.kqueue`.

**Not run on Linux.**  This machine has no kqueue: here the module is tested only
against a fake of the stdlib ``select.kqueue`` object (injected with the
``kqueue_factory`` keyword) that applies changes and reports readiness of real pipes
and socketpairs.  Run the test suite on a BSD or macOS machine before trusting it there.

Facts and theory of operation
-----------------------------
* One kernel filter per condition: ``EVFILT_READ`` and ``EVFILT_WRITE``, each added
  (``EV_ADD``) and removed (``EV_DELETE``) on its own.  ``EV_CLEAR`` makes a filter
  edge-triggered, so ``EV_ET`` maps to it; changing an fd's ET-ness deletes and
  re-adds its filters.  kqueue is O(1) and takes any fd (pipes, ttys, sockets;
  ``Feature.FDS``), hence ``Feature.ET | O1 | FDS``, libevent's set.  It has no
  early-close notification libevent uses, so ``EV_CLOSED`` never fires here.
* Changes are not sent one system call each: ``add``/``delete`` only queue kevents,
  and :meth:`KqueueBackend.dispatch` hands the whole queue to the same ``kevent()``
  call that waits (libevent's changelist).  The event buffer is made at least as
  long as the change list, so a change that fails comes back as an ``EV_ERROR``
  entry (``data`` = errno) instead of failing the whole call.  Add changes carry a
  marker in ``udata`` to tell add errors from delete errors (as libevent).
* ``EV_ERROR`` entries, following libevent's ``kq_dispatch``:

  ==========================  ================================================================
  error                       action
  ==========================  ================================================================
  any error on a delete       ignored: the filter is gone (fd closed: ``EBADF``; closed and
                              reopened: ``ENOENT``; FreeBSD's ``EINVAL``/``ENOTCAPABLE``)
  ``EPERM``/``EPIPE`` on add  a pipe whose other end is closed: reported as readiness of
                              what is watched, so the user's read or write meets the
                              error (libevent reports ``EV_READ`` only; a writer would
                              then never learn it)
  ``EBADF`` on add            the fd was closed behind the base's back: ``(fd, BADFD)`` and
                              the fd is forgotten (libevent silently ignores it, and the
                              event never fires)
  anything else on add        logged, and reported as readiness of what is watched
                              (libevent fails the whole loop; one bad fd should not)
  ==========================  ================================================================

* ``EV_EOF`` on a filter is ordinary readiness (a read sees EOF, a write sees
  ``EPIPE``); with a non-zero ``fflags`` (the socket's pending error, e.g. a refused
  connect) it is reported as ``EV_READ|EV_WRITE`` of what is watched, as ``POLLERR``.
* The event buffer starts at 64 entries and doubles, up to 4096, when a wait fills it.
* ``need_reinit``: a kqueue is *not inherited* by a forked child, and its fd number may
  be reused there by an unrelated file, so :meth:`KqueueBackend.close` in a child
  never closes it (Python 3.11's kqueue object would); the base builds a new backend.
* Threads: the queue of changes is swapped out under a lock before the wait, so
  ``add``/``delete`` from other threads while the loop waits go to the next wait.
* libevent probes for the broken kqueue of Mac OS X 10.4/10.5; Python 3.11 does not
  run there, so no probe is made.

Here is the whole cycle against a stand-in for ``select.kqueue`` that reports the
read filter of fd 5 ready:

>>> class StandIn:
...     def control(self, changes, max_events, timeout):
...         self.sent = changes
...         return [kevent(5, FILTER_READ, EV_ADD)]
...     def close(self):
...         pass
>>> be = KqueueBackend(None, kqueue_factory=StandIn)
>>> be.add(5, 0, EV_READ | EV_ET)
>>> be.dispatch(0)
[(5, 2)]
>>> [(k.ident, k.filter == FILTER_READ, k.flags == EV_ADD | EV_CLEAR) for k in be._kq.sent]
[(5, True, True)]
>>> be.close()
"""

from __future__ import annotations

import errno
import os
import select
import threading
from collections.abc import Callable, Iterable
from typing import Any

from evcore.errors import BackendUnavailable
from evcore.flags import EV_ET, EV_READ, EV_WRITE, Feature  # noqa: F401 - EV_* for the doctests

from ._common import BAD, ET, MAX_WAIT, READ, RW, WATCHED, WRITE, UnixBackend, log

__all__ = [
    "KqueueBackend",
    "KEvent",
    "kevent",
    "FILTER_READ",
    "FILTER_WRITE",
    "EV_ADD",
    "EV_DELETE",
    "EV_CLEAR",
    "EV_EOF",
    "EV_ERROR",
    "ADD_UDATA",
]

#: kqueue constants: the stdlib's where it has them, else the values every BSD and macOS use.
FILTER_READ: int = getattr(select, "KQ_FILTER_READ", -1)
FILTER_WRITE: int = getattr(select, "KQ_FILTER_WRITE", -2)
EV_ADD: int = getattr(select, "KQ_EV_ADD", 0x0001)
EV_DELETE: int = getattr(select, "KQ_EV_DELETE", 0x0002)
EV_CLEAR: int = getattr(select, "KQ_EV_CLEAR", 0x0020)
EV_EOF: int = getattr(select, "KQ_EV_EOF", 0x8000)
EV_ERROR: int = getattr(select, "KQ_EV_ERROR", 0x4000)

#: ``udata`` of every add change, so an ``EV_ERROR`` entry tells an add from a delete.
ADD_UDATA = 0x30303

INITIAL_NEVENTS = 64
MAX_NEVENTS = 4096

_DELETE_ERRORS = {errno.ENOENT, errno.EBADF, errno.EINVAL, errno.EPERM, errno.EPIPE}
if hasattr(errno, "ENOTCAPABLE"):  # pragma: no cover - FreeBSD only
    _DELETE_ERRORS.add(errno.ENOTCAPABLE)

_KEEP = WATCHED | ET

# Kept alive for ever: kqueues inherited through fork() must never be closed by number.
_orphans: list[Any] = []


class KEvent:
    """A stand-in for :class:`select.kevent` where the platform has none (Linux).

    Same constructor and fields, so fakes and tests can build change and result lists.

    >>> kev = KEvent(5, FILTER_WRITE, EV_DELETE)
    >>> (kev.ident, kev.filter, kev.flags, kev.fflags, kev.data, kev.udata)
    (5, -2, 2, 0, 0, 0)
    >>> kev == KEvent(5, FILTER_WRITE, EV_DELETE)
    True
    """

    __slots__ = ("ident", "filter", "flags", "fflags", "data", "udata")

    def __init__(
        self,
        ident: int,
        filter: int = FILTER_READ,
        flags: int = EV_ADD,
        fflags: int = 0,
        data: int = 0,
        udata: int = 0,
    ) -> None:
        self.ident = ident
        self.filter = filter
        self.flags = flags
        self.fflags = fflags
        self.data = data
        self.udata = udata

    def _key(self) -> tuple[int, ...]:
        return (self.ident, self.filter, self.flags, self.fflags, self.data, self.udata)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KEvent) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable, like select.kevent

    def __repr__(self) -> str:
        return (
            f"KEvent(ident={self.ident}, filter={self.filter}, flags={self.flags:#x}, "
            f"fflags={self.fflags:#x}, data={self.data}, udata={self.udata:#x})"
        )


#: The kevent type changes are built with: :class:`select.kevent`, else :class:`KEvent`.
kevent: Callable[..., Any] = getattr(select, "kevent", KEvent)

_FILTERS = ((READ, FILTER_READ), (WRITE, FILTER_WRITE))


class KqueueBackend(UnixBackend):
    """Readiness through BSD/macOS ``kqueue`` (not run on Linux; tested there with fakes).

    >>> KqueueBackend.name, KqueueBackend.need_reinit, KqueueBackend.changelist
    ('kqueue', True, True)
    >>> KqueueBackend.features == Feature.ET | Feature.O1 | Feature.FDS
    True
    """

    name = "kqueue"
    features = Feature.ET | Feature.O1 | Feature.FDS
    need_reinit = True
    changelist = True

    @classmethod
    def available(cls) -> bool:
        """True where :class:`select.kqueue` exists (BSD, macOS).

        >>> KqueueBackend.available() == hasattr(select, "kqueue")
        True
        """
        return hasattr(select, "kqueue")

    def __init__(self, base: Any = None, *, kqueue_factory: Callable[[], Any] | None = None) -> None:
        """Create the kqueue (``kqueue_factory`` replaces :class:`select.kqueue`, for tests).

        :class:`BackendUnavailable` when there is no kqueue or it cannot be created.

        >>> try:
        ...     KqueueBackend(None).close()
        ... except BackendUnavailable as exc:  # Linux
        ...     assert str(exc) == "kqueue: not supported on this system"
        """
        super().__init__(base)
        factory = kqueue_factory if kqueue_factory is not None else getattr(select, "kqueue", None)
        if factory is None:
            raise BackendUnavailable("kqueue: not supported on this system")
        try:
            self._kq = factory()
        except OSError as exc:
            raise BackendUnavailable(f"kqueue: cannot create a kqueue: {exc}") from exc
        self._pid = os.getpid()
        self._changes: list[Any] = []
        self._lock = threading.Lock()
        self._nevents = INITIAL_NEVENTS

    @property
    def nevents(self) -> int:
        """The size of the next wait's event buffer (before room for change errors).

        >>> KqueueBackend(None, kqueue_factory=object).nevents
        64
        """
        return self._nevents

    def pending_changes(self) -> list[Any]:
        """A copy of the kevents queued for the next :meth:`dispatch` (for tests).

        >>> be = KqueueBackend(None, kqueue_factory=object)
        >>> be.add(7, 0, EV_WRITE)
        >>> [(k.ident, k.filter == FILTER_WRITE) for k in be.pending_changes()]
        [(7, True)]
        """
        with self._lock:
            return list(self._changes)

    # -- interest changes ------------------------------------------------------------

    def add(self, fd: int, old: int, events: int) -> None:
        """Queue ``EV_ADD`` for the filters ``events`` adds to ``fd`` (sent at the next dispatch).

        >>> be = KqueueBackend(None, kqueue_factory=object)
        >>> be.add(7, 0, EV_READ | EV_WRITE); len(be.pending_changes())
        2
        """
        old_mask = int(old) & _KEEP
        self._queue(fd, old_mask, (old_mask | int(events)) & _KEEP)

    def delete(self, fd: int, old: int, events: int) -> None:
        """Queue ``EV_DELETE`` for the filters ``events`` removes from ``fd``.

        >>> be = KqueueBackend(None, kqueue_factory=object)
        >>> be.delete(7, EV_READ, EV_READ)
        >>> [k.flags == EV_DELETE for k in be.pending_changes()], be.watched()
        ([True], {})
        """
        old_mask = int(old) & _KEEP
        self._queue(fd, old_mask, old_mask & ~int(events))

    def _queue(self, fd: int, old: int, new: int) -> None:
        et_changed = (old ^ new) & ET
        add_flags = EV_ADD | (EV_CLEAR if new & ET else 0)
        with self._lock:
            changes = self._changes
            for bit, filt in _FILTERS:
                if new & bit:
                    if old & bit:
                        if not et_changed:
                            continue
                        changes.append(kevent(fd, filt, EV_DELETE))  # re-add with new flags
                    changes.append(kevent(fd, filt, add_flags, 0, 0, ADD_UDATA))
                elif old & bit:
                    changes.append(kevent(fd, filt, EV_DELETE))
            if new & RW:
                self._masks[fd] = new
            else:
                self._masks.pop(fd, None)

    # -- waiting ---------------------------------------------------------------------

    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Send the queued changes and wait up to ``timeout`` seconds in one ``kevent()``.

        Returns one ``(fd, events)`` per fd (read and write filters merged).

        >>> class Idle:
        ...     def control(self, changes, max_events, timeout):
        ...         return []
        >>> KqueueBackend(None, kqueue_factory=Idle).dispatch(None)
        []
        """
        if timeout is None:
            wait: float | None = None
        elif timeout <= 0:
            wait = 0
        else:
            wait = min(timeout, MAX_WAIT)
        with self._lock:
            changes, self._changes = self._changes, []
        nevents = self._nevents
        ready = self._kq.control(changes, max(nevents, len(changes)), wait)
        if len(ready) >= nevents and nevents < MAX_NEVENTS:
            self._nevents = nevents * 2
        masks = self._masks
        out: dict[int, int] = {}
        for kev in ready:
            fd = kev.ident
            flags = kev.flags
            if flags & EV_ERROR:
                ev = self._change_error(fd, kev)
            else:
                filt = kev.filter
                if filt == FILTER_READ:
                    ev = READ
                elif filt == FILTER_WRITE:
                    ev = WRITE
                else:
                    continue
                if flags & EV_EOF and kev.fflags:
                    ev = RW  # EOF with a socket error: as POLLERR
                ev &= masks.get(fd, 0)
            if ev:
                out[fd] = out.get(fd, 0) | ev
        return list(out.items())

    def _change_error(self, fd: int, kev: Any) -> int:
        """EV bits to report for a change that failed (``EV_ERROR``), or 0."""
        err = kev.data
        if kev.udata != ADD_UDATA:  # a delete: the filter is gone whatever the reason
            if err not in _DELETE_ERRORS:
                log.warning("kqueue: deleting filter %d of fd %d failed: %s", kev.filter, fd, _strerror(err))
            return 0
        mask = self._masks.get(fd)
        if mask is None:  # deleted again in the same batch: nothing to tell
            return 0
        if err == errno.EBADF:
            log.debug("kqueue: fd %d is closed (EBADF on add); forgetting it", fd)
            del self._masks[fd]
            return BAD
        if err not in (errno.EPERM, errno.EPIPE):
            log.warning("kqueue: adding filter %d of fd %d failed: %s", kev.filter, fd, _strerror(err))
        return mask & RW

    def close(self) -> None:
        """Drop queued changes and close the kqueue, except in a forked child (idempotent).

        >>> class Closable:
        ...     closes = 0
        ...     def close(self):
        ...         Closable.closes += 1
        >>> be = KqueueBackend(None, kqueue_factory=Closable)
        >>> be.close(); be.close(); Closable.closes
        1
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._changes = []
        self._masks.clear()
        if os.getpid() != self._pid:
            # Not inherited: in this child the number may belong to another file now.
            log.debug("kqueue: not closing a kqueue inherited through fork()")
            _orphans.append(self._kq)
        else:
            self._kq.close()


def _strerror(err: int) -> str:
    try:
        return f"{errno.errorcode[err]} ({os.strerror(err)})"
    except (KeyError, ValueError, OverflowError):
        return f"errno {err}"
