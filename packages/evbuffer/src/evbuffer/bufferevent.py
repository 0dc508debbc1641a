"""Bufferevents: an input and an output :class:`~evbuffer.Buffer` with the IO done for you.

Facts and theory of operation
-----------------------------
Like libevent's ``bufferevent.c``, this module holds what every kind shares, and each
kind (socket, pair, filter; later TLS and completion ports) is one module that
implements a small set of operations (libevent's ``bufferevent_ops``):

* ``_enable_io(events)`` / ``_disable_io(events)`` -- start or stop moving data in
  the directions given (``EV_READ``/``EV_WRITE``); called only for directions that
  are enabled by the user *and* not suspended;
* ``_destruct()`` -- release kind-specific resources at :meth:`Bufferevent.free`;
* ``_adj_timeouts()`` -- the read/write timeouts changed;
* ``_flush_io(events, mode)`` -- push data through (filters, TLS);
* ``_ctrl_fd()`` / ``_ctrl_underlying()`` -- the fd, or the bufferevent below.

The user's view (``enabled``) and the library's reasons to hold a direction back
(``suspended``: a full input buffer above the high watermark, an empty rate-limit
bucket, a DNS lookup in progress, a filter waiting for its underlying
bufferevent) are kept apart, as libevent does: a direction does IO only when it is
enabled and has no suspend reason.

Callbacks:

* the read callback runs after data arrived, when the input holds at least the
  read low watermark;
* the write callback runs after data went out, when the output holds at most the
  write low watermark;
* the event callback gets ``BEV_EVENT`` bits: ``READING``/``WRITING`` say which
  direction, with ``EOF``, ``ERROR`` (the errno in :attr:`socket_error`),
  ``TIMEOUT`` or ``CONNECTED``.

With ``BEV_OPT.DEFER_CALLBACKS`` they run from the loop's deferred queue instead
(coalesced: one read and one write callback per batch, events OR'd), so a
callback never runs inside another bufferevent's IO; with ``THREADSAFE`` each
bufferevent has a lock, and ``UNLOCK_CALLBACKS`` drops it while deferred callbacks
run.  A callback may free its own bufferevent: every IO path checks ``_freed``
after calling out.

Memory: ``write()`` never refuses data.  What bounds memory is the application's
use of watermarks (libevent's le-proxy pattern): stop reading the source while
the destination's output is above a mark, resume from the destination's write
callback once it drained below its write low watermark.  The input side is
bounded by the read high watermark: reading stops while the input holds that
much.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from evcore import EV, EV_READ, EV_WRITE

from .buffer import Buffer
from .errors import EvbufferError

if TYPE_CHECKING:  # pragma: no cover
    from evcore import EventBase

    from .bev_socket import SocketBufferevent
    from .ratelimit import RateLimit, _BevRate

__all__ = [
    "BEV_OPT",
    "BEV_EVENT",
    "FlushMode",
    "FilterResult",
    "Bufferevent",
    "ReadCallback",
    "EventCallback",
    "SUSPEND_WM",
    "SUSPEND_BW",
    "SUSPEND_BW_GROUP",
    "SUSPEND_LOOKUP",
    "SUSPEND_FILT_READ",
]

log = logging.getLogger("evbuffer")

_READ = int(EV_READ)
_WRITE = int(EV_WRITE)
_RW = _READ | _WRITE


class BEV_OPT(enum.IntFlag):
    """Options for a new bufferevent (libevent's ``BEV_OPT_*``).

    >>> BEV_OPT.CLOSE_ON_FREE | BEV_OPT.DEFER_CALLBACKS
    <BEV_OPT.CLOSE_ON_FREE|DEFER_CALLBACKS: 5>
    """

    CLOSE_ON_FREE = 0x01
    THREADSAFE = 0x02
    DEFER_CALLBACKS = 0x04
    UNLOCK_CALLBACKS = 0x08


class BEV_EVENT(enum.IntFlag):
    """What the event callback reports (libevent's ``BEV_EVENT_*``).

    >>> BEV_EVENT.READING | BEV_EVENT.EOF
    <BEV_EVENT.READING|EOF: 17>
    """

    READING = 0x01
    WRITING = 0x02
    EOF = 0x10
    ERROR = 0x20
    TIMEOUT = 0x40
    CONNECTED = 0x80


class FlushMode(enum.IntEnum):
    """How hard :meth:`Bufferevent.flush` pushes (libevent's ``bufferevent_flush_mode``).

    >>> FlushMode.FINISHED > FlushMode.NORMAL
    True
    """

    NORMAL = 0
    FLUSH = 1
    FINISHED = 2


class FilterResult(enum.IntEnum):
    """What a filter function returns (libevent's ``bufferevent_filter_result``).

    >>> FilterResult.NEED_MORE
    <FilterResult.NEED_MORE: 1>
    """

    OK = 0
    NEED_MORE = 1
    ERROR = 2


#: Suspend reasons (libevent's ``BEV_SUSPEND_*``): why the library holds a direction back.
SUSPEND_WM = 0x01
SUSPEND_BW = 0x02
SUSPEND_BW_GROUP = 0x04
SUSPEND_LOOKUP = 0x08
SUSPEND_FILT_READ = 0x10

ReadCallback = Callable[["Bufferevent", Any], object]
EventCallback = Callable[["Bufferevent", BEV_EVENT, Any], object]


class Bufferevent:
    """The interface every bufferevent kind shares (libevent's ``struct bufferevent``).

    Make one with :meth:`socket`, :meth:`pair` or :meth:`filter`.

    >>> import evcore
    >>> base = evcore.EventBase()
    >>> a, b = Bufferevent.pair(base)
    >>> a.write(b"ping"); b.enable(evcore.EV_READ)
    >>> _ = base.loop(evcore.EVLOOP_NONBLOCK)
    >>> b.read(4)
    b'ping'
    >>> a.free(); b.free(); base.free()
    """

    kind = "abstract"

    def __init__(self, base: EventBase, options: int = 0) -> None:
        self.base = base
        self.options = BEV_OPT(options)
        self.input = Buffer()
        self.output = Buffer()
        self._readcb: ReadCallback | None = None
        self._writecb: ReadCallback | None = None
        self._eventcb: EventCallback | None = None
        self._cbarg: Any = None
        self._enabled = _WRITE  # libevent: a new bufferevent may write, not read
        self._read_suspended = 0
        self._write_suspended = 0
        self._wm_read = (0, 0)
        self._wm_write = (0, 0)
        self._wm_handle: Any = None
        self.timeout_read: float | None = None
        self.timeout_write: float | None = None
        self._lock: threading.RLock | None = threading.RLock() if options & BEV_OPT.THREADSAFE else None
        self._defer = bool(options & BEV_OPT.DEFER_CALLBACKS)
        self._pending_read = False
        self._pending_write = False
        self._pending_events = 0
        self._pending_errno = 0
        self._deferred_scheduled = False
        self._freed = False
        self.socket_error = 0
        self._max_single_read = -1
        self._max_single_write = -1
        self._rate: _BevRate | None = None
        if self._defer:
            # buffer callbacks run from the loop too, as libevent's evbuffer_defer_callbacks
            self.input.defer_callbacks(base)
            self.output.defer_callbacks(base)

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def socket(base: EventBase, sock: Any = None, options: int = 0) -> SocketBufferevent:
        """A bufferevent over a socket (an object or an int fd; ``None``: made by :meth:`connect`).

        The socket is owned (closed at :meth:`free`) only with ``BEV_OPT.CLOSE_ON_FREE``,
        or when :meth:`connect` created it.

        >>> import evcore, socket
        >>> base = evcore.EventBase()
        >>> s1, s2 = socket.socketpair()
        >>> bev = Bufferevent.socket(base, s1, BEV_OPT.CLOSE_ON_FREE)
        >>> bev.fileno() == s1.fileno()
        True
        >>> bev.free(); s2.close(); base.free()
        """
        from .bev_socket import SocketBufferevent

        return SocketBufferevent(base, sock, options)

    @staticmethod
    def pair(base: EventBase, options: int = 0) -> tuple[Bufferevent, Bufferevent]:
        """Two bufferevents joined back to back: what one writes, the other reads.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> b.get_underlying() is None
        True
        >>> a.free(); b.free(); base.free()
        """
        from .bev_pair import new_pair

        return new_pair(base, options)

    @staticmethod
    def filter(
        underlying: Bufferevent,
        input_filter: Callable[..., FilterResult] | None,
        output_filter: Callable[..., FilterResult] | None,
        options: int = 0,
        arg: Any = None,
    ) -> Bufferevent:
        """A bufferevent that transforms data on its way to and from ``underlying``.

        ``fn(src, dst, limit, mode, arg) -> FilterResult`` moves data from ``src`` to
        ``dst``; ``None`` passes data through unchanged.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> f = Bufferevent.filter(a, None, None)
        >>> f.get_underlying() is a
        True
        >>> f.free(); a.free(); b.free(); base.free()
        """
        from .bev_filter import FilterBufferevent

        return FilterBufferevent(underlying, input_filter, output_filter, options, arg)

    # ------------------------------------------------------------------ the kind's operations
    def _enable_io(self, events: int) -> None:
        """Start IO in ``events`` directions (enabled and not suspended)."""
        raise NotImplementedError

    def _disable_io(self, events: int) -> None:
        """Stop IO in ``events`` directions."""
        raise NotImplementedError

    def _destruct(self) -> None:
        """Release what the kind holds (called once, from :meth:`free`)."""

    def _adj_timeouts(self) -> None:
        """Apply changed read/write timeouts."""

    def _flush_io(self, events: int, mode: FlushMode) -> int:
        """Push data through; returns -1 on error, 0 if nothing moved, 1 if something did."""
        return 0

    def _ctrl_fd(self) -> int:
        return -1

    def _ctrl_underlying(self) -> Bufferevent | None:
        return None

    # ------------------------------------------------------------------ locking
    def lock(self) -> None:
        """Take this bufferevent's lock (a no-op without ``THREADSAFE``)."""
        if self._lock is not None:
            self._lock.acquire()

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> Bufferevent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    # ------------------------------------------------------------------ callbacks
    def setcb(
        self,
        readcb: ReadCallback | None,
        writecb: ReadCallback | None,
        eventcb: EventCallback | None,
        arg: Any = None,
    ) -> None:
        """Set ``readcb(bev, arg)``, ``writecb(bev, arg)``, ``eventcb(bev, events, arg)`` (``None`` for none).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> a.setcb(None, None, None, "arg"); a.getcb()
        (None, None, None, 'arg')
        >>> a.free(); b.free(); base.free()
        """
        self.lock()
        try:
            self._readcb = readcb
            self._writecb = writecb
            self._eventcb = eventcb
            self._cbarg = arg
        finally:
            self.unlock()

    def getcb(self) -> tuple[ReadCallback | None, ReadCallback | None, EventCallback | None, Any]:
        """The current ``(readcb, writecb, eventcb, arg)``."""
        return (self._readcb, self._writecb, self._eventcb, self._cbarg)

    def _run_readcb(self) -> None:
        cb = self._readcb
        if cb is None:
            return
        if self._defer:
            self._pending_read = True
            self._schedule_deferred()
        else:
            cb(self, self._cbarg)

    def _run_writecb(self) -> None:
        cb = self._writecb
        if cb is None:
            return
        if self._defer:
            self._pending_write = True
            self._schedule_deferred()
        else:
            cb(self, self._cbarg)

    def _run_eventcb(self, what: int, err: int = 0) -> None:
        if err:
            self.socket_error = err
        cb = self._eventcb
        if cb is None:
            return
        if self._defer:
            self._pending_events |= what
            self._schedule_deferred()
        else:
            cb(self, BEV_EVENT(what), self._cbarg)

    def _schedule_deferred(self) -> None:
        if not self._deferred_scheduled:
            self._deferred_scheduled = True
            self.base.defer(self._run_deferred)

    def _run_deferred(self) -> None:
        """Run the callbacks queued under ``DEFER_CALLBACKS``: CONNECTED first, then read, write, events."""
        self.lock()
        try:
            self._deferred_scheduled = False
            if self._freed:
                return
            unlock = self._lock is not None and bool(self.options & BEV_OPT.UNLOCK_CALLBACKS)
            events = self._pending_events
            arg = self._cbarg
            if events & BEV_EVENT.CONNECTED:
                self._pending_events &= ~BEV_EVENT.CONNECTED
                events &= ~BEV_EVENT.CONNECTED
                if self._eventcb is not None:
                    self._call_unlocked(unlock, self._eventcb, self, BEV_EVENT.CONNECTED, arg)
            if self._pending_read and not self._freed:
                self._pending_read = False
                if self._readcb is not None:
                    self._call_unlocked(unlock, self._readcb, self, arg)
            if self._pending_write and not self._freed:
                self._pending_write = False
                if self._writecb is not None:
                    self._call_unlocked(unlock, self._writecb, self, arg)
            if self._pending_events and not self._freed:
                events = self._pending_events
                self._pending_events = 0
                if self._eventcb is not None:
                    self._call_unlocked(unlock, self._eventcb, self, BEV_EVENT(events), arg)
        finally:
            self.unlock()

    def _call_unlocked(self, unlock: bool, fn: Callable[..., object], *args: Any) -> None:
        if unlock:
            self.unlock()
            try:
                fn(*args)
            finally:
                self.lock()
        else:
            fn(*args)

    # ------------------------------------------------------------------ enable / disable / suspend
    def enable(self, events: int) -> None:
        """Start reading and/or writing (``EV_READ``, ``EV_WRITE``).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> a.enable(evcore.EV_READ); a.get_enabled() == evcore.EV_READ | evcore.EV_WRITE
        True
        >>> a.free(); b.free(); base.free()
        """
        events = int(events) & _RW
        self.lock()
        try:
            if self._freed:
                raise EvbufferError("enable() on a freed bufferevent")
            self._enabled |= events
            go = 0
            if events & _READ and not self._read_suspended:
                go |= _READ
            if events & _WRITE and not self._write_suspended:
                go |= _WRITE
            if go:
                self._enable_io(go)
        finally:
            self.unlock()

    def disable(self, events: int) -> None:
        """Stop reading and/or writing."""
        events = int(events) & _RW
        self.lock()
        try:
            self._enabled &= ~events
            if events and not self._freed:
                self._disable_io(events)
        finally:
            self.unlock()

    def get_enabled(self) -> EV:
        """The directions the user enabled (suspension by the library does not show here)."""
        return EV(self._enabled)

    def _suspend_read(self, reason: int) -> None:
        was = self._read_suspended
        self._read_suspended = was | reason
        if not was and self._enabled & _READ and not self._freed:
            self._disable_io(_READ)

    def _unsuspend_read(self, reason: int) -> None:
        was = self._read_suspended
        if not was & reason:
            return
        self._read_suspended = now = was & ~reason
        if not now and self._enabled & _READ and not self._freed:
            self._enable_io(_READ)

    def _suspend_write(self, reason: int) -> None:
        was = self._write_suspended
        self._write_suspended = was | reason
        if not was and self._enabled & _WRITE and not self._freed:
            self._disable_io(_WRITE)

    def _unsuspend_write(self, reason: int) -> None:
        was = self._write_suspended
        if not was & reason:
            return
        self._write_suspended = now = was & ~reason
        if not now and self._enabled & _WRITE and not self._freed:
            self._enable_io(_WRITE)

    def _reading(self) -> bool:
        return bool(self._enabled & _READ) and not self._read_suspended

    def _writing(self) -> bool:
        return bool(self._enabled & _WRITE) and not self._write_suspended

    # ------------------------------------------------------------------ data
    def write(self, data: Any) -> None:
        """Queue ``data`` (bytes-like) for sending; never refuses (see the module docs on memory).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> b.enable(evcore.EV_READ); a.write(b"abc"); len(b.input)
        3
        >>> a.free(); b.free(); base.free()
        """
        if self._lock is None:
            self.output.add(data)
            return
        with self._lock:
            self.output.add(data)

    def write_buffer(self, buf: Buffer) -> None:
        """Move all of ``buf`` to the output (chunks move; nothing is copied)."""
        self.lock()
        try:
            self.output.add_buffer(buf)
        finally:
            self.unlock()

    def read(self, n: int = -1) -> bytes:
        """Remove and return up to ``n`` bytes of input (all for -1)."""
        self.lock()
        try:
            if n < 0:
                n = len(self.input)
            return self.input.remove(n)
        finally:
            self.unlock()

    def read_buffer(self, buf: Buffer) -> int:
        """Move all input to ``buf``; returns the byte count."""
        self.lock()
        try:
            n = len(self.input)
            buf.add_buffer(self.input)
            return n
        finally:
            self.unlock()

    # ------------------------------------------------------------------ watermarks and timeouts
    def setwatermark(self, events: int, low: int, high: int) -> None:
        """Set the read and/or write watermarks (``high`` 0: unlimited), as libevent.

        Read: the read callback waits for ``low`` bytes; reading stops while the input
        holds ``high`` or more.  Write: the write callback runs once the output is down
        to ``low`` bytes (``high`` matters to filters only).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> a, b = Bufferevent.pair(base)
        >>> a.setwatermark(evcore.EV_READ, 10, 100); a.getwatermark(evcore.EV_READ)
        (10, 100)
        >>> a.free(); b.free(); base.free()
        """
        low = int(low)
        high = int(high)
        if low < 0 or high < 0:
            raise ValueError("watermarks cannot be negative")
        if high and low > high:
            raise ValueError("the low watermark is above the high one")
        events = int(events)
        self.lock()
        try:
            if events & _WRITE:
                self._wm_write = (low, high)
            if events & _READ:
                self._wm_read = (low, high)
                if high:
                    if self._wm_handle is None:
                        self._wm_handle = self.input._add_watch(self._input_wm_watch)
                    if len(self.input) >= high:
                        self._suspend_read(SUSPEND_WM)
                    else:
                        self._unsuspend_read(SUSPEND_WM)
                else:
                    if self._wm_handle is not None:
                        self.input.remove_cb(self._wm_handle)
                        self._wm_handle = None
                    self._unsuspend_read(SUSPEND_WM)
        finally:
            self.unlock()

    def getwatermark(self, events: int) -> tuple[int, int]:
        """``(low, high)`` for ``EV_READ`` or ``EV_WRITE``."""
        if int(events) & _READ:
            return self._wm_read
        return self._wm_write

    def _input_wm_cb(self, buf: Buffer, info: Any, arg: Any) -> None:
        high = self._wm_read[1]
        if high and len(buf) >= high:
            self._suspend_read(SUSPEND_WM)
        else:
            self._unsuspend_read(SUSPEND_WM)

    def _input_wm_watch(self, added: int, deleted: int) -> None:
        # the input's watcher (Buffer._add_watch): called directly, without a CallbackInfo,
        # while it is the input's only callback; deferred and suspended like any other
        self._input_wm_cb(self.input, None, None)

    def set_timeouts(self, read: float | None = None, write: float | None = None) -> None:
        """Report ``TIMEOUT`` when no data could be read / written for that long (``None``: never).

        A read timeout counts only while reading is enabled; a write timeout only while
        there is data waiting to go out.  When one fires the direction is disabled, as
        libevent 2.0 does.
        """
        for v in (read, write):
            if v is not None and not v >= 0:
                raise ValueError(f"invalid timeout {v!r}")
        self.lock()
        try:
            self.timeout_read = read
            self.timeout_write = write
            if not self._freed:
                self._adj_timeouts()
        finally:
            self.unlock()

    # ------------------------------------------------------------------ misc
    def flush(self, events: int = _RW, mode: FlushMode | int = FlushMode.NORMAL) -> int:
        """Push buffered data through (filters, TLS); -1 error, 0 nothing moved, 1 something did."""
        self.lock()
        try:
            return self._flush_io(int(events), FlushMode(mode))
        finally:
            self.unlock()

    def get_underlying(self) -> Bufferevent | None:
        """The bufferevent this one is built on (filters), else ``None``."""
        return self._ctrl_underlying()

    def fileno(self) -> int:
        """The fd underneath, or -1."""
        return self._ctrl_fd()

    getfd = fileno

    def get_base(self) -> EventBase:
        """The event base."""
        return self.base

    def set_max_single_read(self, n: int) -> None:
        """Largest read per system call (-1: adaptive, growing toward 256 KiB under load)."""
        if n == 0 or n < -1:
            raise ValueError("max single read must be positive or -1")
        self._max_single_read = n

    def set_max_single_write(self, n: int) -> None:
        """Largest write per system call (-1: as much as one ``writev`` takes)."""
        if n == 0 or n < -1:
            raise ValueError("max single write must be positive or -1")
        self._max_single_write = n

    def get_max_single_read(self) -> int:
        """See :meth:`set_max_single_read`."""
        return self._max_single_read

    def get_max_single_write(self) -> int:
        """See :meth:`set_max_single_write`."""
        return self._max_single_write

    def connect(self, address: Any) -> None:
        """Connect (socket bufferevents only)."""
        raise EvbufferError(f"connect() needs a socket bufferevent, not a {self.kind} one")

    def connect_hostname(self, dns_base: Any, family: int, host: str, port: int) -> None:
        """Resolve then connect (socket bufferevents only)."""
        raise EvbufferError(f"connect_hostname() needs a socket bufferevent, not a {self.kind} one")

    # ------------------------------------------------------------------ rate limits
    def _read_budget(self) -> int:
        """Bytes we may read now: the max single read, cut by the rate limit (-1: adaptive)."""
        n = self._max_single_read
        rate = self._rate
        if rate is not None:
            allowed = rate.read_allowance()
            if n < 0 or allowed < n:
                n = allowed
        return n

    def _write_budget(self) -> int:
        n = self._max_single_write
        rate = self._rate
        if rate is not None:
            allowed = rate.write_allowance()
            if n < 0 or allowed < n:
                n = allowed
        return n

    def set_rate_limit(self, cfg: RateLimit | None) -> None:
        """Limit this bufferevent with a token bucket (``None`` removes the limit)."""
        from .ratelimit import set_rate_limit

        set_rate_limit(self, cfg)

    def get_read_limit(self) -> int:
        """Bytes the bucket(s) would let it read now."""
        from .ratelimit import get_read_limit

        return get_read_limit(self)

    def get_write_limit(self) -> int:
        """Bytes the bucket(s) would let it write now."""
        from .ratelimit import get_write_limit

        return get_write_limit(self)

    def get_max_to_read(self) -> int:
        """Bytes it would read now at most (limits and max single read)."""
        from .ratelimit import get_max_to_read

        return get_max_to_read(self)

    def get_max_to_write(self) -> int:
        """Bytes it would write now at most."""
        from .ratelimit import get_max_to_write

        return get_max_to_write(self)

    def decrement_read_limit(self, n: int) -> None:
        """Take ``n`` bytes from the read bucket by hand."""
        from .ratelimit import decrement_read_limit

        decrement_read_limit(self, n)

    def decrement_write_limit(self, n: int) -> None:
        """Take ``n`` bytes from the write bucket by hand."""
        from .ratelimit import decrement_write_limit

        decrement_write_limit(self, n)

    # ------------------------------------------------------------------ teardown
    def free(self) -> None:
        """Stop all IO, release the kind's resources (closing an owned fd now); idempotent.

        Safe inside the bufferevent's own callbacks.
        """
        self.lock()
        try:
            if self._freed:
                return
            self._freed = True
            self._readcb = self._writecb = self._eventcb = None
            self._pending_read = self._pending_write = False
            self._pending_events = 0
            try:
                self._disable_io(_RW)
            finally:
                try:
                    if self._rate is not None:
                        from .ratelimit import _detach

                        _detach(self)
                finally:
                    self._destruct()
        finally:
            self.unlock()

    @property
    def freed(self) -> bool:
        """Whether :meth:`free` was called."""
        return self._freed

    def __repr__(self) -> str:
        try:
            state = "freed" if self._freed else f"enabled={EV(self._enabled)!r}"
            return (
                f"<{type(self).__name__} fd={self.fileno()} {state} "
                f"in={len(self.input)} out={len(self.output)}>"
            )
        except Exception:  # pragma: no cover - a repr must never raise
            return f"<{type(self).__name__} at {id(self):#x}>"
