"""Buffer callbacks (libevent's ``evbuffer_add_cb`` and ``struct evbuffer_cb_info``).

Facts and theory of operation
-----------------------------
Every operation that changes a buffer's length reports ``(added, deleted)`` once, after the
buffer is consistent again, through :meth:`CallbackHost._changed`. The counts accumulate until
the callbacks run; then each enabled callback gets ``cb(buffer, info, arg)`` with
``info.orig_size`` (the length when the accumulation began), ``info.n_added``,
``info.n_deleted``. A buffer without callbacks skips all of this (one truth test).

When the callbacks run:

* immediately, inside the operation that changed the buffer (libevent's default);
* when :meth:`~CallbackHost.resume_callbacks` ends the outermost
  :meth:`~CallbackHost.suspend_callbacks`, once, with the totals of everything in between
  (bufferevents use this to batch many changes into one call);
* later, once, from the scheduler given to :meth:`~CallbackHost.defer_callbacks` (an
  :class:`evcore.EventBase` or any object with ``.defer(fn)``, or a plain ``schedule(fn)``
  callable): libevent's ``evbuffer_defer_callbacks`` for ``BEV_OPT_DEFER_CALLBACKS``.

Callbacks may add or remove callbacks and modify the buffer (which may call them again,
recursively, as in libevent). An exception from a callback propagates to the caller of the
operation; the buffer is consistent by then, and the counts are already reset.

**Watchers** are the cheap form for a buffer's owner (a bufferevent watching its output):
``_add_watch(fn)`` registers ``fn(added, deleted)`` as a callback like any other (same list,
same order, same suspension and deferral; it gets the counts of the ``CallbackInfo``), and
returns a handle that ``remove_cb`` takes. The saving: while a watcher is the only callback and
callbacks are neither suspended nor deferred, ``_fast`` holds it and a change calls it directly,
``fn(added, deleted)``, with no accumulation and no ``CallbackInfo`` (the result is the same: the
counts would have been reset before the call anyway). ``_fast`` is recomputed whenever the list,
the suspension depth or the scheduler changes (``_refresh_fast``), so it is ``None`` whenever
counts could be pending. A watcher made with ``deletes=False`` is not called for changes that
only removed bytes (``_fast_del`` false). Watcher handles are internal: never disabled.

>>> from evbuffer import Buffer
>>> buf = Buffer()
>>> h = buf.add_cb(lambda b, info, arg: print(info, arg), "x")
>>> buf.add(b"abc")
CallbackInfo(orig_size=0, n_added=3, n_deleted=0) x
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["CallbackInfo", "CallbackHandle", "CallbackHost"]


class CallbackInfo(NamedTuple):
    """What changed since a buffer's callbacks last ran (libevent's ``evbuffer_cb_info``).

    >>> CallbackInfo(10, 5, 2).n_added
    5
    """

    orig_size: int
    n_added: int
    n_deleted: int


class CallbackHandle:
    """A registered buffer callback, as returned by ``Buffer.add_cb``.

    ``enabled`` (settable; also :meth:`enable`/:meth:`disable`) is libevent's
    ``EVBUFFER_CB_ENABLED``: a disabled callback is skipped but stays registered.

    >>> from evbuffer import Buffer
    >>> buf = Buffer()
    >>> h = buf.add_cb(lambda b, info, arg: print("called"))
    >>> h.disable(); buf.add(b"x")
    >>> h.enable(); buf.add(b"y")
    called
    """

    __slots__ = ("cb", "arg", "enabled", "_buffer", "watch", "deletes")

    def __init__(self, buffer: Any, cb: Callable[[Any, CallbackInfo, Any], object], arg: Any) -> None:
        self.cb = cb
        self.arg = arg
        self.enabled = True
        self._buffer = buffer
        #: For a watcher (see the module docs): ``fn(added, deleted)``, else ``None``.
        self.watch: Callable[[int, int], object] | None = None
        self.deletes = True

    def enable(self) -> None:
        """Run this callback again on changes."""
        self.enabled = True

    def disable(self) -> None:
        """Skip this callback until :meth:`enable`."""
        self.enabled = False

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<CallbackHandle {getattr(self.cb, '__qualname__', self.cb)!s} {state}>"


class CallbackHost:
    """Mixin that gives :class:`~evbuffer.Buffer` its callbacks (see the module docstring).

    >>> from evbuffer import Buffer
    >>> buf = Buffer()
    >>> _ = buf.add_cb(lambda b, info, arg: print(info.n_added, info.n_deleted))
    >>> buf.suspend_callbacks()
    >>> buf.add(b"abc"); buf.drain(1)
    >>> buf.resume_callbacks()
    3 1
    """

    _len: int
    _cbs: list[CallbackHandle]

    def _init_callbacks(self) -> None:
        self._cbs = []
        self._n_add = 0
        self._n_del = 0
        self._cb_hold = 0
        self._cb_schedule: Callable[[Callable[[], None]], object] | None = None
        self._cb_pending = False
        self._fast: Callable[[int, int], object] | None = None
        self._fast_del = False

    def add_cb(self, cb: Callable[[Any, CallbackInfo, Any], object], arg: Any = None) -> CallbackHandle:
        """Call ``cb(buffer, info, arg)`` after changes of length; returns a handle.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"abc")
        >>> h = buf.add_cb(lambda b, info, arg: print(info))
        >>> buf.drain(2)
        CallbackInfo(orig_size=3, n_added=0, n_deleted=2)
        """
        if not callable(cb):
            raise TypeError(f"callback must be callable, not {type(cb).__name__}")
        handle = CallbackHandle(self, cb, arg)
        self._cbs.append(handle)
        self._fast = None
        return handle

    def _add_watch(self, fn: Callable[[int, int], object], deletes: bool = True) -> CallbackHandle:
        """Register the owner's watcher ``fn(added, deleted)`` (module docs); ``remove_cb`` removes it.

        >>> from evbuffer import Buffer
        >>> buf = Buffer()
        >>> h = buf._add_watch(lambda added, deleted: print("watch", added, deleted), deletes=False)
        >>> buf.add(b"abc"); buf.drain(1)
        watch 3 0
        >>> buf._fast is not None
        True
        """

        def adapter(buf: Any, info: CallbackInfo, arg: Any) -> None:
            if info.n_added or deletes:
                fn(info.n_added, info.n_deleted)

        handle = CallbackHandle(self, adapter, None)
        handle.watch = fn
        handle.deletes = deletes
        self._cbs.append(handle)
        self._refresh_fast()
        return handle

    def _refresh_fast(self) -> None:
        """Recompute ``_fast``: the lone watcher while nothing is suspended, deferred or pending."""
        cbs = self._cbs
        if (
            len(cbs) == 1
            and cbs[0].watch is not None
            and not self._cb_hold
            and self._cb_schedule is None
            and not (self._n_add or self._n_del)
        ):
            self._fast = cbs[0].watch
            self._fast_del = cbs[0].deletes
        else:
            self._fast = None

    def remove_cb(self, handle: CallbackHandle) -> None:
        """Unregister a callback; ``ValueError`` if it is not registered on this buffer.

        >>> from evbuffer import Buffer
        >>> buf = Buffer()
        >>> h = buf.add_cb(lambda b, info, arg: print("never"))
        >>> buf.remove_cb(h); buf.add(b"x")
        """
        for i, h in enumerate(self._cbs):
            if h is handle:
                del self._cbs[i]
                handle._buffer = None
                self._refresh_fast()
                return
        raise ValueError("callback is not registered on this buffer")

    def suspend_callbacks(self) -> None:
        """Hold callbacks until the matching :meth:`resume_callbacks` (calls nest).

        >>> from evbuffer import Buffer
        >>> buf = Buffer()
        >>> buf.suspend_callbacks(); buf.resume_callbacks()
        """
        self._cb_hold += 1
        self._fast = None

    def resume_callbacks(self) -> None:
        """End a :meth:`suspend_callbacks`; the outermost one reports what changed meanwhile.

        >>> from evbuffer import Buffer
        >>> Buffer().resume_callbacks()
        Traceback (most recent call last):
        ...
        ValueError: resume_callbacks() without suspend_callbacks()
        """
        if self._cb_hold <= 0:
            raise ValueError("resume_callbacks() without suspend_callbacks()")
        self._cb_hold -= 1
        if self._cb_hold == 0:
            try:
                if self._n_add or self._n_del:
                    self._changed(0, 0)
            finally:
                self._refresh_fast()

    def defer_callbacks(self, scheduler: Any) -> None:
        """Run callbacks later, once per batch of changes, through ``scheduler``.

        ``scheduler`` is an object with ``.defer(fn)`` (an :class:`evcore.EventBase`), or a
        callable ``schedule(fn)``; ``None`` goes back to immediate callbacks (running any
        pending ones now).

        >>> from evbuffer import Buffer
        >>> later = []
        >>> buf = Buffer()
        >>> _ = buf.add_cb(lambda b, info, arg: print(info.n_added))
        >>> buf.defer_callbacks(later.append)
        >>> buf.add(b"ab"); buf.add(b"c")
        >>> for fn in later: fn()
        3
        """
        if scheduler is None:
            self._cb_schedule = None
            try:
                if self._n_add or self._n_del:
                    self._changed(0, 0)
            finally:
                self._refresh_fast()
            return
        defer = getattr(scheduler, "defer", None)
        if defer is None:
            if not callable(scheduler):
                raise TypeError("scheduler must have .defer(fn) or be callable")
            defer = scheduler
        self._cb_schedule = defer
        self._fast = None

    def _changed(self, added: int, deleted: int) -> None:
        """Account a change and run (or schedule) the callbacks; callers test ``self._cbs`` first."""
        fast = self._fast
        if fast is not None:
            if added or self._fast_del:
                fast(added, deleted)
            return
        self._n_add += added
        self._n_del += deleted
        if self._cb_hold:
            return
        schedule = self._cb_schedule
        if schedule is not None:
            if not self._cb_pending:
                self._cb_pending = True
                schedule(self._run_deferred)
            return
        self._run_callbacks()

    def _run_deferred(self) -> None:
        self._cb_pending = False
        if not self._cb_hold:
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        added, deleted = self._n_add, self._n_del
        if not (added or deleted):
            return
        self._n_add = self._n_del = 0
        info = CallbackInfo(self._len - added + deleted, added, deleted)
        for h in tuple(self._cbs):
            if h.enabled and h._buffer is self:
                h.cb(self, info, h.arg)
