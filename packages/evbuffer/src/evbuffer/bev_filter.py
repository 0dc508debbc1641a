"""Filtering bufferevents (libevent's ``bufferevent_filter.c``).

Facts and theory of operation
-----------------------------
* A filter bufferevent sits on an *underlying* bufferevent (any kind: socket,
  pair, another filter).  Data read by the underlying one passes through the
  input filter into the filter's input; data written to the filter passes through
  the output filter into the underlying one's output.  A filter is
  ``fn(src, dst, limit, mode, arg) -> FilterResult``: move (and transform) up to
  ``limit`` bytes' worth from ``src`` to ``dst``.  ``None`` passes data through by
  moving chunks.
* The filter takes the underlying bufferevent's callbacks over (its read, write
  and event callbacks become the filter's), enables both of its directions and
  holds its reading back with the ``SUSPEND_FILT_READ`` suspend reason whenever the
  filter itself does not read (disabled, or its input at its read high watermark):
  an unread filter makes the underlying socket stop reading, so memory stays
  bounded along the whole stack.  The same reason holds the underlying reading
  back while its input (not filtered yet) holds the filter's read high watermark
  or more: a pair below, which moves data synchronously, would otherwise take in
  everything its partner writes before the filter had a chance to run.  When
  reading comes back, what the underlying input still holds is filtered from the
  loop.  Enabling a direction of the filter enables it below again if a timeout,
  an error or EOF had disabled it there.  When the filter is freed the underlying
  one gets its suspension lifted and its callbacks cleared (if they are still the
  filter's), or with ``BEV_OPT.CLOSE_ON_FREE`` it is freed too.
* Input: ``limit`` is the room left below the filter's read high watermark; with
  no high watermark it is :data:`DEFAULT_LIMIT` per call (libevent passes -1 for
  "unlimited"; a number is easier on filter writers, and the filter is called
  again while input remains, so nothing stalls).  The filter is called again
  while it returns ``OK``, input remains, and the filter's input is not full; a
  filter that returns ``OK`` without moving anything is not called again in that
  pass (with ``FLUSH``/``FINISHED`` it is called until the input is used up,
  whatever the watermarks and enabled directions say).  ``NEED_MORE`` waits for
  the next data from below; ``ERROR`` disables reading and reports
  ``READING|ERROR`` (libevent 2.0 ignores it).  The read callback runs when the
  filter produced data and its input holds at least the read low watermark.
* Output: data written to the filter is filtered at once (so a socket below
  can send eagerly); ``limit`` is the room below the underlying output's write
  high watermark (no filtering while it is full) or :data:`DEFAULT_LIMIT`.
  ``ERROR`` disables writing and reports ``WRITING|ERROR``.  The write callback
  runs when the underlying bufferevent drained its output (its own write callback)
  and the filter's output holds at most the filter's write low watermark; if the
  output filter consumed data without producing any (nothing for the underlying
  bufferevent to drain), it runs from the loop all the same.
* User callbacks never run inside ``write()``, ``enable()`` or ``flush()``: what
  those find to report is deferred to the loop.
* Events of the underlying bufferevent (``EOF``, ``ERROR`` with its errno in
  :attr:`socket_error`, ``TIMEOUT``, ``CONNECTED``) reach the filter's event
  callback.  On ``EOF`` the input filter first runs once more with
  ``FlushMode.FINISHED`` so it can release a last partial record (libevent meant
  to and never did).
* :meth:`flush` runs the filters with the mode given (``FINISHED`` on the output
  lets a filter write a trailer), then flushes the underlying bufferevent with the
  same mode (a pair below passes the EOF on).
* Timeouts are generic (timers): the read timeout fires when no filtered data
  arrived for that long while reading; the write timeout when data waited in the
  filter's output that long without any of it being filtered.
* ``THREADSAFE``: when the underlying bufferevent has a lock the filter uses that
  same lock (one lock for the stack, no lock-order problems); else its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evcore import EV_READ, EV_WRITE

from .bev_pair import _GenericTimeouts
from .buffer import Buffer
from .bufferevent import (
    BEV_EVENT,
    BEV_OPT,
    SUSPEND_FILT_READ,
    Bufferevent,
    FilterResult,
    FlushMode,
)
from .errors import EvbufferError

__all__ = ["FilterBufferevent", "FilterFunction", "DEFAULT_LIMIT"]

_READ = int(EV_READ)
_WRITE = int(EV_WRITE)
_B_READING = int(BEV_EVENT.READING)
_B_WRITING = int(BEV_EVENT.WRITING)
_B_EOF = int(BEV_EVENT.EOF)
_B_ERROR = int(BEV_EVENT.ERROR)
_OK = FilterResult.OK
_ERROR = FilterResult.ERROR

#: ``limit`` handed to a filter when no high watermark bounds it (bytes per call).
DEFAULT_LIMIT = 64 * 1024

FilterFunction = Callable[[Buffer, Buffer, int, FlushMode, Any], FilterResult]


def _pass_through(src: Buffer, dst: Buffer, limit: int) -> FilterResult:
    """The ``None`` filter: move up to ``limit`` bytes (all for -1) as chunks."""
    if limit < 0 or limit >= len(src):
        dst.add_buffer(src)
    else:
        src.remove_buffer(dst, limit)
    return _OK


def _call(
    fn: FilterFunction | None, src: Buffer, dst: Buffer, limit: int, mode: FlushMode, arg: Any
) -> tuple[FilterResult, int, int]:
    """Run one filter step; returns (result, change of len(src), change of len(dst)).

    Both buffers' callbacks are held for the call: the filter sees buffers nobody else
    changes meanwhile, the changes it made are measured exactly, and what reacts to them
    (a socket's eager send, a pair's transfer, watermarks) runs once, after it returned.
    """
    n_src, n_dst = len(src), len(dst)
    src.suspend_callbacks()
    dst.suspend_callbacks()
    try:
        if fn is None:
            res = _pass_through(src, dst, limit)
        else:
            res = FilterResult(fn(src, dst, limit if limit >= 0 else DEFAULT_LIMIT, mode, arg))
        n_src -= len(src)
        n_dst = len(dst) - n_dst
    finally:
        dst.resume_callbacks()
        src.resume_callbacks()
    return res, n_src, n_dst


class FilterBufferevent(Bufferevent):
    """A bufferevent that filters data to and from another one; see :meth:`Bufferevent.filter`.

    >>> import evcore
    >>> from evbuffer.bufferevent import FilterResult
    >>> def upper(src, dst, limit, mode, arg):
    ...     dst.add(src.remove(len(src)).upper())
    ...     return FilterResult.OK
    >>> base = evcore.EventBase()
    >>> a, b = Bufferevent.pair(base)
    >>> f = FilterBufferevent(a, None, upper)
    >>> b.enable(evcore.EV_READ)
    >>> f.write(b"shout"); b.read()
    b'SHOUT'
    >>> f.free(); a.free(); b.free(); base.free()
    """

    kind = "filter"

    def __init__(
        self,
        underlying: Bufferevent,
        input_filter: FilterFunction | None,
        output_filter: FilterFunction | None,
        options: int = 0,
        arg: Any = None,
    ) -> None:
        if not isinstance(underlying, Bufferevent):
            raise TypeError(f"the underlying object must be a Bufferevent, not {type(underlying).__name__}")
        if underlying.freed:
            raise EvbufferError("cannot filter a freed bufferevent")
        for fn in (input_filter, output_filter):
            if fn is not None and not callable(fn):
                raise TypeError("a filter must be callable or None")
        super().__init__(underlying.base, options)
        if self._lock is not None and underlying._lock is not None:
            self._lock = underlying._lock
        self._underlying = underlying
        self._in_filter = input_filter
        self._out_filter = output_filter
        #: The ``arg`` given to the filter functions (libevent's filter context).
        self.filter_arg = arg
        self._got_eof = False
        self._in_output = False
        self._kick_scheduled = False
        self._timeouts = _GenericTimeouts(self)
        self._out_handle = self.output.add_cb(self._output_cb)
        self._u_in_handle = underlying.input.add_cb(self._u_input_cb)
        underlying.setcb(self._u_readcb, self._u_writecb, self._u_eventcb, None)
        underlying._suspend_read(SUSPEND_FILT_READ)
        underlying.enable(_READ | _WRITE)

    def _ctrl_underlying(self) -> Bufferevent | None:
        return self._underlying

    # ------------------------------------------------------------------ filtering
    def _input_full(self, mode: FlushMode) -> bool:
        high = self._wm_read[1]
        return mode == FlushMode.NORMAL and high > 0 and len(self.input) >= high

    def _output_full(self, mode: FlushMode) -> bool:
        u = self._underlying
        high = u._wm_write[1]
        return mode == FlushMode.NORMAL and high > 0 and len(u.output) >= high

    def _process_input(self, mode: FlushMode) -> tuple[FilterResult, bool]:
        """Filter the underlying input into ours; returns (last result, whether data came)."""
        if mode == FlushMode.NORMAL and (not self._reading() or self._input_full(mode)):
            return _OK, False
        src = self._underlying.input
        if mode == FlushMode.NORMAL and not src:
            return _OK, False
        dst = self.input
        fn = self._in_filter
        high = self._wm_read[1]
        produced = False
        while True:
            limit = high - len(dst) if mode == FlushMode.NORMAL and high else -1
            res, n_src, n_dst = _call(fn, src, dst, limit, mode, self.filter_arg)
            moved = n_src != 0 or n_dst != 0
            if n_dst:
                produced = True
            if res != _OK or not moved or not src:
                break
            if mode == FlushMode.NORMAL and (not self._reading() or self._input_full(mode)):
                break
        if produced and self._reading():
            self._timeouts.reset_read()
        return res, produced

    def _process_output(self, mode: FlushMode) -> tuple[FilterResult, bool, bool]:
        """Filter our output into the underlying one's.

        Returns (last result, whether our output shrank, whether the underlying output grew).
        """
        src = self.output
        if mode == FlushMode.NORMAL and (not self._writing() or not src or self._output_full(mode)):
            if src and self._writing():
                self._timeouts.start_write()
            return _OK, False, False
        dst = self._underlying.output
        fn = self._out_filter
        u_high = self._underlying._wm_write[1]
        consumed = produced = False
        self._in_output = True
        try:
            while True:
                limit = u_high - len(dst) if mode == FlushMode.NORMAL and u_high else -1
                res, n_src, n_dst = _call(fn, src, dst, limit, mode, self.filter_arg)
                if n_src:
                    consumed = True
                if n_dst:
                    produced = True
                moved = n_src != 0 or n_dst != 0
                if res != _OK or not moved or not src:
                    break
                if mode == FlushMode.NORMAL and (not self._writing() or self._output_full(mode)):
                    break
        finally:
            self._in_output = False
        if src and self._writing():
            if consumed:
                self._timeouts.reset_write()
            else:
                self._timeouts.start_write()
        else:
            self._timeouts.del_write()
        return res, consumed, produced

    # ------------------------------------------------------------------ reporting from outside the loop
    def _readcb_later(self) -> None:
        if self._readcb is not None:
            self._pending_read = True
            self._schedule_deferred()

    def _writecb_later(self) -> None:
        if self._writecb is not None:
            self._pending_write = True
            self._schedule_deferred()

    def _eventcb_later(self, what: int) -> None:
        if self._eventcb is not None:
            self._pending_events |= what
            self._schedule_deferred()

    def _fail(self, direction: int, later: bool) -> None:
        """A filter returned ERROR: stop that direction and report it."""
        self._enabled &= ~direction
        self._disable_io(direction)
        what = (_B_READING if direction == _READ else _B_WRITING) | _B_ERROR
        if later:
            self._eventcb_later(what)
        else:
            self._run_eventcb(what)

    # ------------------------------------------------------------------ our output buffer
    def _output_cb(self, buf: Buffer, info: Any, arg: Any) -> None:
        if not info.n_added or self._in_output or self._freed:
            return
        self.lock()
        try:
            self._write_pass()
        finally:
            self.unlock()

    def _write_pass(self) -> None:
        """Filter output for write() or enable(): what there is to report waits for the loop."""
        res, consumed, produced = self._process_output(FlushMode.NORMAL)
        if res == _ERROR:
            self._fail(_WRITE, True)
        elif consumed and not produced and len(self.output) <= self._wm_write[0]:
            # nothing reached the underlying bufferevent, so its write callback will not tell us
            self._writecb_later()

    # ------------------------------------------------------------------ callbacks of the one below
    def _u_readcb(self, u: Bufferevent, arg: Any) -> None:
        self.lock()
        try:
            if not self._freed:  # pragma: no branch - freed: u's callbacks were cleared
                self._read_pass(FlushMode.FINISHED if self._got_eof else FlushMode.NORMAL)
        finally:
            self.unlock()

    def _read_pass(self, mode: FlushMode) -> None:
        """Filter input from the loop: the read callback, then any error, run at once."""
        res, produced = self._process_input(mode)
        if produced and len(self.input) >= self._wm_read[0]:
            self._run_readcb()
        if res == _ERROR and not self._freed:
            self._fail(_READ, False)

    def _u_writecb(self, u: Bufferevent, arg: Any) -> None:
        self.lock()
        try:
            if self._freed:  # pragma: no cover - freed: u's callbacks were cleared
                return
            res, _consumed, _produced = self._process_output(FlushMode.NORMAL)
            if res == _ERROR:
                self._fail(_WRITE, False)
            elif len(self.output) <= self._wm_write[0] and self._writing():
                self._run_writecb()
        finally:
            self.unlock()

    def _u_eventcb(self, u: Bufferevent, what: int, arg: Any) -> None:
        self.lock()
        try:
            if self._freed:  # pragma: no cover - freed: u's callbacks were cleared
                return
            if what & _B_EOF:
                self._got_eof = True
                self._read_pass(FlushMode.FINISHED)
                if self._freed:
                    return
            self._run_eventcb(what, u.socket_error if what & _B_ERROR else 0)
        finally:
            self.unlock()

    def _kick(self) -> None:
        """From the loop: filter what the underlying input kept while we were not reading."""
        self.lock()
        try:
            self._kick_scheduled = False
            if not self._freed and self._underlying.input:
                self._read_pass(FlushMode.FINISHED if self._got_eof else FlushMode.NORMAL)
        finally:
            self.unlock()

    # ------------------------------------------------------------------ the kind's operations
    def _enable_io(self, events: int) -> None:
        u = self._underlying
        if not u.freed:
            # what a timeout, an error or EOF below disabled comes back with ours
            lost = events & ~u._enabled
            if lost:
                u.enable(lost)
            if events & _READ:
                self._sync_u_read()
        if events & _READ:
            self._timeouts.reset_read()
            if u.input and not self._kick_scheduled:
                self._kick_scheduled = True
                self.base.defer(self._kick)
        if events & _WRITE:
            self._write_pass()

    def _sync_u_read(self) -> None:
        """Let the bufferevent below read only while we read and its input is below our read high mark."""
        u = self._underlying
        high = self._wm_read[1]
        if self._reading() and not (high and len(u.input) >= high):
            u._unsuspend_read(SUSPEND_FILT_READ)
        else:
            u._suspend_read(SUSPEND_FILT_READ)

    def _u_input_cb(self, buf: Buffer, info: Any, arg: Any) -> None:
        u = self._underlying
        if (self._wm_read[1] or u._read_suspended & SUSPEND_FILT_READ) and not (self._freed or u.freed):
            self._sync_u_read()

    def _disable_io(self, events: int) -> None:
        if events & _READ:
            self._timeouts.del_read()
            if not self._underlying.freed:
                self._underlying._suspend_read(SUSPEND_FILT_READ)
        if events & _WRITE:
            self._timeouts.del_write()

    def _adj_timeouts(self) -> None:
        self._timeouts.adjust()

    def _flush_io(self, events: int, mode: FlushMode) -> int:
        any_moved = False
        failed = False
        if events & _READ:
            res, produced = self._process_input(mode)
            any_moved = produced
            if produced and len(self.input) >= self._wm_read[0]:
                self._readcb_later()
            if res == _ERROR:
                failed = True
                self._fail(_READ, True)
        if events & _WRITE:
            res, consumed, produced = self._process_output(mode)
            any_moved = any_moved or consumed or produced
            if res == _ERROR:
                failed = True
                self._fail(_WRITE, True)
            elif consumed and not produced and len(self.output) <= self._wm_write[0]:
                self._writecb_later()
        u = self._underlying
        if not u.freed:
            u.flush(events, mode)
        if failed:
            return -1
        return 1 if any_moved else 0

    def _destruct(self) -> None:
        self._timeouts.free()
        try:
            self.output.remove_cb(self._out_handle)
        except ValueError:  # pragma: no cover - the user freed the buffer itself
            pass
        u = self._underlying
        try:
            u.input.remove_cb(self._u_in_handle)
        except ValueError:  # pragma: no cover - the user freed the buffer itself
            pass
        if u.freed:
            return
        if self.options & BEV_OPT.CLOSE_ON_FREE:
            u.free()
            return
        if u._eventcb == self._u_eventcb:
            u.setcb(None, None, None, None)
        u._unsuspend_read(SUSPEND_FILT_READ)
