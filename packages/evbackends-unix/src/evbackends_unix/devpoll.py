"""The Solaris/illumos ``/dev/poll`` backend (libevent's ``devpollops``) over :class:`select.devpoll`.

**Not run on Linux.**  This machine has no ``/dev/poll``: here the module is tested
only against a fake of the stdlib ``select.devpoll`` object (injected with the
``devpoll_factory`` keyword) that behaves like it over real pipes and socketpairs.
Run the test suite on Solaris or illumos before trusting it there.

Facts and theory of operation
-----------------------------
* ``/dev/poll`` keeps the interest set in the kernel (O(1) per wait in the number of
  watched fds) and takes any pollable fd, hence ``Feature.FDS | O1``, libevent's set.
  It is level-triggered only (``EV_ET`` is ignored) and has no early-close
  notification (``EV_CLOSED`` never fires; an fd watched only for it stays out of
  the set, as in the poll backend).
* Interest is changed by *writing* ``pollfd`` records to the device: a record ORs its
  events into what the kernel has for the fd, and only ``POLLREMOVE`` takes events
  away, so lowering an fd's mask is ``POLLREMOVE`` + the new mask.  CPython's
  ``devpoll`` buffers these records and writes them at the next ``poll()``;
  ``register`` on an fd already registered is undefined there, so the backend uses
  ``register`` for a new fd, ``modify`` (remove + register) for a known one and
  ``unregister`` for the last bit, based on what it last gave the kernel.
* CPython's ``devpoll`` uses one buffer both for queued records and for the results
  of the ``DP_POLL`` wait, so records must never be queued while another thread
  waits.  ``add``/``delete`` therefore only note the new mask and mark the fd; the
  loop thread sends the net changes right before it waits, under a lock
  (``changelist`` is true for the same reason: errors surface in the loop).
* ``POLLHUP``/``POLLERR`` are reported as ``EV_READ|EV_WRITE`` of what is watched
  (libevent's rule).  ``POLLNVAL`` (an fd closed behind the base's back) is reported
  as ``(fd, BADFD)`` and the fd is forgotten.
* When the buffered write fails, CPython has dropped the whole buffer: the backend
  looks for closed fds among its own (``fstat``), reports them as ``BADFD``, and
  sends every remaining fd's mask again (``modify`` is idempotent).  If no fd is
  closed the error is real and propagates.
* ``need_reinit``: the ``/dev/poll`` fd must not be shared with a forked child, so the
  base builds a new backend there (libevent's flag).

>>> DevpollBackend.available() == hasattr(select, "devpoll")
True
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterable
from typing import Any

from evcore.errors import BackendUnavailable
from evcore.flags import EV_READ, EV_WRITE, Feature  # noqa: F401 - EV_* for the doctests

from ._common import BAD, ET, MAX_WAIT, WATCHED, UnixBackend, fd_is_closed, log, poll_bits, poll_to_ev

__all__ = ["DevpollBackend"]

_POLLNVAL = select.POLLNVAL
_KEEP = WATCHED | ET


class DevpollBackend(UnixBackend):
    """Readiness through Solaris ``/dev/poll`` (not run on Linux; tested there with fakes).

    >>> DevpollBackend.name, DevpollBackend.need_reinit, DevpollBackend.changelist
    ('devpoll', True, True)
    >>> DevpollBackend.features == Feature.FDS | Feature.O1
    True
    """

    name = "devpoll"
    features = Feature.FDS | Feature.O1
    need_reinit = True
    changelist = True

    @classmethod
    def available(cls) -> bool:
        """True where :class:`select.devpoll` exists (Solaris, illumos).

        >>> DevpollBackend.available() == hasattr(select, "devpoll")
        True
        """
        return hasattr(select, "devpoll")

    def __init__(self, base: Any = None, *, devpoll_factory: Callable[[], Any] | None = None) -> None:
        """Open ``/dev/poll`` (``devpoll_factory`` replaces :class:`select.devpoll`, for tests).

        >>> try:
        ...     DevpollBackend(None).close()
        ... except BackendUnavailable as exc:  # Linux
        ...     assert str(exc) == "devpoll: not supported on this system"
        """
        super().__init__(base)
        factory = devpoll_factory if devpoll_factory is not None else getattr(select, "devpoll", None)
        if factory is None:
            raise BackendUnavailable("devpoll: not supported on this system")
        try:
            self._dp = factory()
        except OSError as exc:
            raise BackendUnavailable(f"devpoll: cannot open /dev/poll: {exc}") from exc
        self._kernel: dict[int, int] = {}  # fd -> poll bits last handed to the devpoll object
        self._dirty: set[int] = set()  # fds whose mask changed since the last flush
        self._unconfirmed: set[int] = set()  # fds with records not yet written for sure
        self._lock = threading.Lock()

    def add(self, fd: int, old: int, events: int) -> None:
        """Note that ``fd`` now watches ``old | events``; sent before the next wait.

        >>> be = DevpollBackend(None, devpoll_factory=object)
        >>> be.add(7, 0, EV_READ); be.watched()
        {7: 2}
        """
        self._note(fd, (int(old) | int(events)) & _KEEP)

    def delete(self, fd: int, old: int, events: int) -> None:
        """Note that ``fd`` now watches ``old & ~events``; sent before the next wait.

        >>> be = DevpollBackend(None, devpoll_factory=object)
        >>> be.add(7, 0, EV_READ); be.delete(7, EV_READ, EV_READ); be.watched()
        {}
        """
        self._note(fd, int(old) & ~int(events) & _KEEP)

    def _note(self, fd: int, mask: int) -> None:
        with self._lock:
            if mask & WATCHED:
                self._masks[fd] = mask
            else:
                self._masks.pop(fd, None)
            self._dirty.add(fd)

    def _flush(self) -> None:
        """Hand the net changes to the devpoll object (caller holds the lock)."""
        dp, kernel, masks, sent = self._dp, self._kernel, self._masks, self._unconfirmed
        dirty, self._dirty = self._dirty, set()
        for fd in dirty:
            bits = poll_bits(masks.get(fd, 0))
            have = kernel.get(fd, 0)
            if bits == have:
                continue
            sent.add(fd)
            if not bits:
                del kernel[fd]
                dp.unregister(fd)
            else:
                kernel[fd] = bits
                if have:
                    dp.modify(fd, bits)
                else:
                    dp.register(fd, bits)

    def _resync(self, exc: OSError) -> list[tuple[int, int]]:
        """After a failed write: drop closed fds, send everything else again (lock held).

        The records lost with the write are those of the fds in ``_unconfirmed`` (and
        of the dirty fds not handed over yet), so ``_kernel`` cannot be trusted for
        them: each such fd is removed (``POLLREMOVE`` is harmless when the kernel has
        nothing, and needs no open fd) unless it is still wanted, and every wanted fd
        is sent again with ``modify``, which does not depend on the kernel's state.
        """
        closed = [fd for fd in self._masks if fd_is_closed(fd)]
        if not closed:
            raise exc
        log.warning("devpoll: writing to /dev/poll failed (%s); closed fds %s dropped", exc, closed)
        dp, kernel, masks = self._dp, self._kernel, self._masks
        for fd in closed:
            del masks[fd]
        suspects = set(kernel) | self._unconfirmed | self._dirty
        self._dirty = set()
        for fd in suspects:
            if not poll_bits(masks.get(fd, 0)):
                kernel.pop(fd, None)
                dp.unregister(fd)
        for fd, mask in masks.items():
            bits = poll_bits(mask)
            if bits:
                kernel[fd] = bits
                dp.modify(fd, bits)
        self._unconfirmed = suspects | set(kernel)
        return [(fd, BAD) for fd in closed]

    def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        """Send the noted changes, wait up to ``timeout`` seconds, report what fired.

        >>> class Idle:
        ...     def poll(self, timeout_ms):
        ...         return []
        >>> DevpollBackend(None, devpoll_factory=Idle).dispatch(0)
        []
        """
        if timeout is None:
            ms: float | None = None
        elif timeout <= 0:
            ms = 0
        else:
            ms = min(timeout, MAX_WAIT) * 1000.0
        out: list[tuple[int, int]] = []
        with self._lock:
            try:
                self._flush()
            except OSError as exc:  # a full buffer was written early, and that failed
                out = self._resync(exc)
        try:
            ready = self._dp.poll(ms)
        except OSError as exc:  # the buffered records could not be written
            with self._lock:
                out += self._resync(exc)
            return out
        self._unconfirmed = set()  # poll() wrote them
        masks = self._masks
        for fd, revents in ready:
            if revents & _POLLNVAL:
                with self._lock:
                    if fd not in masks:  # deleted by another thread meanwhile
                        continue
                    log.debug("devpoll: fd %d is closed (POLLNVAL); forgetting it", fd)
                    del masks[fd]
                    if self._kernel.pop(fd, 0):
                        self._unconfirmed.add(fd)
                        self._dp.unregister(fd)
                out.append((fd, BAD))
                continue
            ev = poll_to_ev(revents, masks.get(fd, 0))
            if ev:
                out.append((fd, ev))
        return out

    def close(self) -> None:
        """Close ``/dev/poll`` and forget every fd (idempotent).

        >>> class Closable:
        ...     closes = 0
        ...     def close(self):
        ...         Closable.closes += 1
        >>> be = DevpollBackend(None, devpoll_factory=Closable)
        >>> be.close(); be.close(); Closable.closes
        1
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._masks.clear()
            self._kernel.clear()
            self._dirty.clear()
            self._unconfirmed.clear()
        self._dp.close()
