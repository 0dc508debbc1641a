"""The Linux ``epoll`` backend (libevent's ``epollops``) over :class:`select.epoll`.

Facts and theory of operation
-----------------------------
* epoll is O(1) in the number of watched fds, level-triggered by default and
  edge-triggered per fd with ``EPOLLET`` (``EV_ET`` anywhere in an fd's mask makes the
  whole fd edge-triggered), and reports a peer's ``shutdown(SHUT_WR)`` early with
  ``EPOLLRDHUP`` (``EV_CLOSED``).  Hence ``Feature.ET | O1 | EARLY_CLOSE``.
* The kernel registration is keyed by (open file description, fd number), not by
  the number alone.  Closing the last fd of a file removes it silently; that is why
  ``add``/``delete`` meet stale state and handle it as libevent's ``epoll.c`` does:

  ========  ==========================  =================================================
  call      failure                     meaning and action
  ========  ==========================  =================================================
  MOD       ``ENOENT``                  fd closed and reopened: retry as ADD
  ADD       ``EEXIST``                  already there (precautionary add, dup2): retry MOD
  DEL       ``ENOENT``/``EBADF``/       the fd is already gone (closed, or a regular
            ``EPERM``                   file): nothing to do
  ADD       ``EPERM``                   a regular file or directory: epoll cannot watch
                                        it; :class:`PermissionError` is raised (the
                                        base logs it and drops the fd's events)
  ========  ==========================  =================================================

  Any other failure raises :class:`OSError`.  A failed change leaves the fd out of
  the backend's map.
* ``EPOLLHUP``/``EPOLLERR`` are reported as every watched condition (``EV_READ``,
  ``EV_WRITE`` and ``EV_CLOSED`` as far as they are watched).  libevent reports
  ``READ|WRITE`` only; but an fd watched for ``EV_CLOSED`` alone (a pipe's read end,
  which gets ``EPOLLHUP`` without ``EPOLLRDHUP``) would then report nothing while
  the level-triggered hang-up woke the loop forever.  ``EPOLLRDHUP`` is reported as
  ``EV_CLOSED``; the kernel also sets ``EPOLLIN`` then, so ``EV_READ`` comes along
  when it is watched.
* The one stale state epoll cannot recover from by itself: an fd closed while a
  ``dup()`` of it stays open keeps its registration (the file is still open) under
  the old number, and ``epoll_ctl(DEL)`` by number can no longer reach it.  Such an
  fd keeps being reported though nobody watches it.  ``dispatch`` skips fds it does
  not know; when one it already skipped is reported again, it rebuilds the epoll set
  from its own map (one ``epoll_ctl`` per fd, once), which drops the stale entry.
  fds that cannot be re-added then are reported as ``BADFD``.
* :meth:`EpollBackend.dispatch` is the hot path: one ``epoll_wait``, then one list
  comprehension with two lookups per event (a precomputed epoll-bits -> EV table
  and the fd's mask).  The result buffer starts at 32 events and doubles, up to
  4096, each time a wait fills it (libevent's rule).  ``None`` becomes ``-1``;
  ``select.epoll`` rounds a float timeout up to whole milliseconds.
* ``need_reinit``: a forked child shares the parent's epoll instance, so any
  ``epoll_ctl`` in the child would change the parent's interest set.  The base builds
  a new backend in the child; closing the old one there only closes the child's
  copy of the epoll fd, which is harmless.
* ``changelist``: each ``add``/``delete`` is one ``epoll_ctl``, so the base coalesces
  changes per fd until the next dispatch, and ``add``/``delete`` errors surface there.
* The epoll fd is created close-on-exec (``EPOLL_CLOEXEC``).

>>> import socket
>>> a, b = socket.socketpair()
>>> be = EpollBackend(None)
>>> be.add(a.fileno(), 0, EV_READ)
>>> b.send(b"x")
1
>>> list(be.dispatch(1.0)) == [(a.fileno(), EV_READ)]
True
>>> a.close(); b.close(); be.close()
"""

from __future__ import annotations

import errno
import select
from collections.abc import Iterable
from typing import Any

from evcore.errors import BackendUnavailable
from evcore.flags import EV_READ, Feature  # noqa: F401 - EV_READ for the doctests

from ._common import BAD, CLOSED, ET, MAX_WAIT, READ, WATCHED, WRITE, UnixBackend, log

__all__ = ["EpollBackend", "INITIAL_MAXEVENTS", "MAX_MAXEVENTS"]

#: Size of the first ``epoll_wait`` result buffer (libevent's ``INITIAL_NEVENT``).
INITIAL_MAXEVENTS = 32
#: The result buffer doubles, each time a wait fills it, up to this size.
MAX_MAXEVENTS = 4096

_EPOLLIN = select.EPOLLIN if hasattr(select, "EPOLLIN") else 0x001
_EPOLLOUT = select.EPOLLOUT if hasattr(select, "EPOLLOUT") else 0x004
_EPOLLERR = select.EPOLLERR if hasattr(select, "EPOLLERR") else 0x008
_EPOLLHUP = select.EPOLLHUP if hasattr(select, "EPOLLHUP") else 0x010
_EPOLLPRI = select.EPOLLPRI if hasattr(select, "EPOLLPRI") else 0x002
_EPOLLRDHUP = getattr(select, "EPOLLRDHUP", 0x2000)
_EPOLLET = getattr(select, "EPOLLET", 1 << 31)
_EPOLL_CLOEXEC = getattr(select, "EPOLL_CLOEXEC", 0)

_KEEP = WATCHED | ET  # the mask bits the backend keeps


def _to_epoll(mask: int) -> int:
    """epoll interest bits for an EV mask (0 when nothing is watched)."""
    bits = 0
    if mask & READ:
        bits |= _EPOLLIN
    if mask & WRITE:
        bits |= _EPOLLOUT
    if mask & CLOSED:
        bits |= _EPOLLRDHUP
    if bits and mask & ET:
        bits |= _EPOLLET
    return bits


def _from_epoll(revents: int) -> int:
    """EV bits for epoll's revents, before limiting them to what is watched."""
    if revents & (_EPOLLERR | _EPOLLHUP):
        return WATCHED
    ev = 0
    if revents & _EPOLLIN:
        ev |= READ
    if revents & _EPOLLOUT:
        ev |= WRITE
    if revents & _EPOLLRDHUP:
        ev |= CLOSED
    return ev


# EV mask (masked with _KEEP, so < 256) -> epoll interest bits.
_TO_EPOLL = [_to_epoll(m) for m in range(256)]
# Every revents combination epoll can report for our interests -> EV bits.
_REPORTABLE = (_EPOLLIN, _EPOLLPRI, _EPOLLOUT, _EPOLLERR, _EPOLLHUP, _EPOLLRDHUP)
_FROM_EPOLL: dict[int, int] = {}
for _n in range(1 << len(_REPORTABLE)):
    _bits = 0
    for _i, _b in enumerate(_REPORTABLE):
        if _n >> _i & 1:
            _bits |= _b
    _FROM_EPOLL[_bits] = _from_epoll(_bits)
del _n, _bits, _i, _b

#: Raw code :meth:`EpollBackend.dispatch_raw` uses for an fd that could not be re-added
#: after a rebuild (bit 14: epoll never reports it).
RAW_BADFD = 0x4000
#: epoll revents -> EV bits for the base's raw dispatch (every bit epoll reports is below
#: 0x4000); ``RAW_TABLE[RAW_BADFD]`` is ``BADFD``.
RAW_TABLE = [_from_epoll(_r) for _r in range(RAW_BADFD)] + [BAD]


class EpollBackend(UnixBackend):
    """Readiness through Linux ``epoll``, level- or edge-triggered per fd.

    >>> EpollBackend.name, EpollBackend.need_reinit, EpollBackend.changelist
    ('epoll', True, True)
    >>> EpollBackend.features == Feature.ET | Feature.O1 | Feature.EARLY_CLOSE
    True
    """

    name = "epoll"
    features = Feature.ET | Feature.O1 | Feature.EARLY_CLOSE
    need_reinit = True
    changelist = True
    #: The base's hot path: :meth:`dispatch_raw` results are mapped through this table.
    raw_table = RAW_TABLE

    @classmethod
    def available(cls) -> bool:
        """True where :class:`select.epoll` exists (Linux).

        >>> EpollBackend.available() == hasattr(select, "epoll")
        True
        """
        return hasattr(select, "epoll")

    def __init__(self, base: Any = None) -> None:
        """Create the epoll instance; :class:`BackendUnavailable` when that cannot work.

        >>> with EpollBackend(None) as be:
        ...     be.maxevents
        32
        """
        super().__init__(base)
        if not hasattr(select, "epoll"):
            raise BackendUnavailable("epoll: not supported on this system")
        self._ep = self._new_epoll()
        self._wait = self._ep.poll
        self._maxevents = INITIAL_MAXEVENTS
        self._suspects: set[int] = set()
        self._unknown: set[int] = set()  # fds the base said it does not watch (dispatch_raw)

    @staticmethod
    def _new_epoll() -> select.epoll:
        try:
            return select.epoll(-1, _EPOLL_CLOEXEC)
        except OSError as exc:
            raise BackendUnavailable(f"epoll: cannot create an epoll instance: {exc}") from exc

    @property
    def maxevents(self) -> int:
        """The size of the next ``epoll_wait`` result buffer.

        >>> EpollBackend(None).maxevents
        32
        """
        return self._maxevents

    def fileno(self) -> int:
        """The epoll instance's fd (for debugging; never hand it to another loop).

        >>> be = EpollBackend(None); be.fileno() >= 0
        True
        """
        return self._ep.fileno()

    # -- interest changes ------------------------------------------------------------

    def add(self, fd: int, old: int, events: int) -> None:
        """Watch ``events`` on ``fd`` on top of ``old`` (ADD, or MOD when ``old`` watched).

        >>> import os
        >>> r, w = os.pipe()
        >>> be = EpollBackend(None)
        >>> be.add(r, 0, EV_READ); be.watched() == {r: EV_READ}
        True
        >>> os.close(r); os.close(w); be.close()
        """
        mask = int(old | events) & _KEEP
        want = _TO_EPOLL[mask]
        if want:
            self._ctl(fd, want, int(old) & WATCHED)
            self._masks[fd] = mask

    def delete(self, fd: int, old: int, events: int) -> None:
        """Stop watching ``events`` on ``fd`` (MOD, or DEL when nothing stays watched).

        Deleting an fd that is already closed or unknown is not an error.

        >>> be = EpollBackend(None)
        >>> be.delete(12345, EV_READ, EV_READ)  # never registered: ENOENT, ignored
        >>> be.close()
        """
        mask = int(old) & ~int(events) & _KEEP
        want = _TO_EPOLL[mask]
        if want:
            self._ctl(fd, want, True)
            self._masks[fd] = mask
            return
        self._masks.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBADF, errno.EPERM):
                raise
            log.debug("epoll: DEL of fd %d gave %s: it was already gone", fd, errno.errorcode[exc.errno])

    def _ctl(self, fd: int, want: int, registered: int | bool) -> None:
        """ADD or MOD ``fd``, retrying the other one where libevent does."""
        ep = self._ep
        try:
            if registered:
                ep.modify(fd, want)
            else:
                ep.register(fd, want)
            return
        except OSError as exc:
            err = exc.errno
            if not (err == errno.ENOENT if registered else err == errno.EEXIST):
                self._masks.pop(fd, None)
                if err == errno.EPERM:
                    raise PermissionError(
                        errno.EPERM,
                        f"epoll cannot watch fd {fd}: regular files and directories are always "
                        "ready (use the poll or select backend for them)",
                    ) from None
                raise
        # MOD met ENOENT (fd closed and reopened) or ADD met EEXIST (already there).
        log.debug("epoll: %s of fd %d failed with %s; retrying", "MOD" if registered else "ADD", fd, err)
        try:
            if registered:
                ep.register(fd, want)
            else:
                ep.modify(fd, want)
        except OSError:
            self._masks.pop(fd, None)
            raise

    # -- waiting ---------------------------------------------------------------------

    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Wait up to ``timeout`` seconds (``None``: forever, ``0``: poll); report what fired.

        Returns a sequence (a list, or a tuple for a single event) of ``(fd, events)``;
        ``events`` holds only conditions the fd watches (it may be 0 when another thread
        changed the fd's mask meanwhile).

        >>> EpollBackend(None).dispatch(0)
        []
        """
        if timeout is None:
            timeout = -1
        elif timeout > MAX_WAIT:
            timeout = MAX_WAIT
        elif timeout < 0:
            timeout = 0
        ready = self._wait(timeout, self._maxevents)  # PEP 475: EINTR is retried inside
        n = len(ready)
        if n == self._maxevents:
            self._grow()
        masks = self._masks
        try:
            if n == 1:  # the common case of a busy loop: no comprehension to set up
                ((fd, ev),) = ready
                return ((fd, _FROM_EPOLL[ev] & masks[fd]),)
            return [(fd, _FROM_EPOLL[ev] & masks[fd]) for fd, ev in ready]
        except KeyError:  # an fd we do not know, or unexpected bits: take the slow path
            return self._dispatch_slow(ready)

    def dispatch_raw(self, timeout: float | None) -> list[tuple[int, int]]:
        """The base's hot path: epoll's own ``(fd, revents)`` list, untranslated.

        The base maps ``revents`` through :data:`RAW_TABLE` and masks them with each
        event's flags itself, so nothing is built per event here.  Fds the base does
        not know come back through :meth:`stale`; one reported again at the next
        wake-up is a stale kernel registration (a closed fd whose ``dup()`` lives on),
        handled as :meth:`dispatch` does, by rebuilding the epoll set.

        >>> with EpollBackend(None) as be:
        ...     be.dispatch_raw(0)
        []
        """
        bad: list[tuple[int, int]] = []
        if self._unknown:
            stale = self._unknown & self._suspects
            self._suspects = self._unknown - stale
            self._unknown = set()
            if stale:
                bad = [(fd, RAW_BADFD) for fd, _ in self._rebuild(stale)]
        if timeout is None:
            timeout = -1
        elif timeout > MAX_WAIT:
            timeout = MAX_WAIT
        elif timeout < 0:
            timeout = 0
        ready = self._wait(timeout, self._maxevents)
        if len(ready) == self._maxevents:
            self._grow()
        return ready + bad if bad else ready

    def stale(self, fd: int) -> None:
        """The base got a report for ``fd`` but watches nothing there (see :meth:`dispatch_raw`)."""
        self._unknown.add(fd)

    def _grow(self) -> None:
        """The last wait filled the buffer: double it, up to :data:`MAX_MAXEVENTS`."""
        if self._maxevents < MAX_MAXEVENTS:
            self._maxevents *= 2

    def _dispatch_slow(self, ready: list[tuple[int, int]]) -> list[tuple[int, int]]:
        masks = self._masks
        out = []
        unknown = set()
        for fd, revents in ready:
            mask = masks.get(fd)
            if mask is None:
                unknown.add(fd)  # deleted by another thread meanwhile, or a stale entry
                continue
            ev = _from_epoll(revents) & mask
            if ev:
                out.append((fd, ev))
        if unknown:
            stale = unknown & self._suspects
            self._suspects = unknown - stale
            if stale:
                out.extend(self._rebuild(stale))
        return out

    def _rebuild(self, stale: set[int]) -> list[tuple[int, int]]:
        """Replace the epoll instance by a fresh one holding only the fds in our map."""
        log.warning(
            "epoll: fds %s stay registered in the kernel after they were deleted (closed while "
            "a dup() of them stayed open?); rebuilding the epoll set without them",
            sorted(stale),
        )
        try:
            new = self._new_epoll()
        except BackendUnavailable as exc:
            log.error("epoll: cannot rebuild the epoll set: %s", exc)
            return []
        bad = []
        for fd, mask in list(self._masks.items()):
            try:
                new.register(fd, _TO_EPOLL[mask])
            except OSError as exc:
                log.debug("epoll: fd %d cannot be re-added (%s)", fd, exc)
                del self._masks[fd]
                bad.append((fd, BAD))
        old, self._ep, self._wait = self._ep, new, new.poll
        old.close()
        self._suspects = set()
        return bad

    def close(self) -> None:
        """Close the epoll fd and forget every fd (idempotent).

        >>> be = EpollBackend(None); be.close(); be.close()
        """
        if self._closed:
            return
        self._closed = True
        self._masks.clear()
        self._ep.close()
