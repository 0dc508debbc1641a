"""The socket bufferevent (libevent's ``bufferevent_sock.c``).

Facts and theory of operation
-----------------------------
* Two persistent events on the fd: a read event (with the read timeout), pending
  while reading is enabled and not suspended; a write event (with the write
  timeout), pending only while there is output to send or a connect in flight, so
  an idle connection costs the kernel nothing.
* Reads go straight into the input buffer's free chunk space
  (:meth:`Buffer.read_from`), as much as the adaptive size, the read high
  watermark and the rate limit allow.  0 bytes is EOF: reading is disabled and the
  event callback gets ``READING|EOF``.  An error gives ``READING|ERROR`` with the
  errno in :attr:`socket_error`.
* Writes are eager, as asyncio's: data added to the output is sent at once when
  nothing is waiting to go out already; only what the kernel did not take waits
  for the write event.  Inside this bufferevent's own read callback the send is
  held until the callback returns, so a callback's many small writes leave in one
  ``sendmsg``.  Each write pass sends many chunks in one ``sendmsg``/``writev``
  (files go out with ``sendfile``).  When the output drains to the write low
  watermark the write callback runs (from the loop, never inside ``write()``).
* The echo path is kept short, since it runs once per message: the read event calls
  ``_on_read`` (``_on_read_locked`` with ``THREADSAFE``), which reads with
  ``buffer_io.read_from`` (for a plain socket and an empty input: one ``recv_into`` into the
  spare), runs the read callback, and sends what the callback queued with one
  ``buffer_io.write_to``. The output is watched through ``Buffer._add_watch`` (called
  directly, without a ``CallbackInfo``, while no user callback is on the output), and the
  output hands each chunk it sent whole to the input as its spare (``_recycle_to``), so an
  echo reads into the chunk it just sent instead of allocating one. Watermarks, a max single
  read and deferred callbacks are one flag (``_plain_read``) on the read path; the rate limit
  one test.
* ``connect()`` makes the socket if there is none (and then owns it), starts a
  non-blocking connect and reports ``CONNECTED`` or ``ERROR`` from the loop, also
  when the connect finished or failed at once; reading starts after it connected.
* ``connect_hostname()`` resolves first, through a DNS base's ``getaddrinfo`` or,
  with ``None``, through :func:`socket.getaddrinfo` on the base's thread pool, so
  the loop never blocks; IO is suspended until the lookup ends.
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from evcore import EV_PERSIST, EV_READ, EV_TIMEOUT, EV_WRITE, Event, EventBase
from evcore.util import sockaddr_family

from .buffer_io import read_from as _read_from
from .buffer_io import write_to as _write_to
from .bufferevent import BEV_EVENT, BEV_OPT, SUSPEND_LOOKUP, Bufferevent
from .errors import EvbufferError

__all__ = ["SocketBufferevent"]

_READ = int(EV_READ)
_WRITE = int(EV_WRITE)
_TIMEOUT = int(EV_TIMEOUT)
_PERSIST = int(EV_PERSIST)
_B_READING = int(BEV_EVENT.READING)
_B_WRITING = int(BEV_EVENT.WRITING)
_B_EOF = int(BEV_EVENT.EOF)
_B_ERROR = int(BEV_EVENT.ERROR)
_B_TIMEOUT = int(BEV_EVENT.TIMEOUT)
_B_CONNECTED = int(BEV_EVENT.CONNECTED)
_CONNECT_PENDING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, errno.EINTR}


def _so_error(fd: int) -> int:
    s = socket.socket(fileno=fd)
    try:
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    finally:
        s.detach()


class SocketBufferevent(Bufferevent):
    """A bufferevent over a stream socket; made by :meth:`Bufferevent.socket`.

    >>> import evcore, socket
    >>> from evbuffer import Bufferevent
    >>> base = evcore.EventBase()
    >>> s1, s2 = socket.socketpair()
    >>> bev = Bufferevent.socket(base, s1)
    >>> bev.write(b"hi"); s2.recv(10)
    b'hi'
    >>> bev.free(); s1.close(); s2.close(); base.free()
    """

    kind = "socket"

    def __init__(self, base: EventBase, sock: Any = None, options: int = 0) -> None:
        super().__init__(base, options)
        self._fd = -1
        self._io: Any = None
        self._sockobj: socket.socket | None = None
        self._owned = bool(options & BEV_OPT.CLOSE_ON_FREE)
        self._connecting = False
        self._connect_err = 0
        self._dns_error = 0
        self._lookup: Any = None
        self._ev_read = Event()
        self._ev_write = Event()
        self._wpending = False
        self._rpending = False
        self._in_read = False
        self._flush_after_read = False
        self._plain_read = True
        self._update_plain()
        self._out_cb = self.output._add_watch(self._output_watch, deletes=False)
        self.output._recycle_to = self.input  # sent chunks become the next read's chunk
        if sock is not None:
            self._setfd(sock)

    # ------------------------------------------------------------------ fd
    def _setfd(self, sock: Any) -> None:
        if isinstance(sock, int):
            fd = sock
            self._sockobj = None
            self._io = fd
        else:
            fd = sock.fileno()
            self._sockobj = sock if isinstance(sock, socket.socket) else None
            self._io = self._sockobj if self._sockobj is not None else fd
        if fd < 0:
            raise EvbufferError("the socket is closed")
        import os

        os.set_blocking(fd, False)
        self._fd = fd
        on_read = self._on_read if self._lock is None else self._on_read_locked
        self._ev_read.assign(self.base, fd, _READ | _PERSIST, on_read, None)
        self._ev_write.assign(self.base, fd, _WRITE | _PERSIST, self._on_write, None)
        self._rpending = self._wpending = False
        if self._reading():
            self._enable_io(_READ)
        if self.output and self._writing():
            self._enable_io(_WRITE)

    def setfd(self, sock: Any) -> None:
        """Use another socket (the old one is not closed)."""
        self.lock()
        try:
            self._disable_io(_READ | _WRITE)
            self._setfd(sock)
        finally:
            self.unlock()

    def _ctrl_fd(self) -> int:
        return self._fd

    # ------------------------------------------------------------------ enable / disable
    def _enable_io(self, events: int) -> None:
        if self._fd < 0:
            return
        if events & _READ and not self._connecting and not self._rpending:
            self._ev_read.add(self.timeout_read)
            self._rpending = True
        if events & _WRITE and (self.output or self._connecting) and not self._wpending:
            self._ev_write.add(self.timeout_write)
            self._wpending = True

    def _disable_io(self, events: int) -> None:
        if events & _READ and self._rpending:
            self._ev_read.del_noblock()
            self._rpending = False
        if events & _WRITE and self._wpending and not self._connecting:
            self._ev_write.del_noblock()
            self._wpending = False

    def _adj_timeouts(self) -> None:
        if self._rpending:
            self._ev_read.del_noblock()
            self._ev_read.add(self.timeout_read)
        if self._wpending:
            self._ev_write.del_noblock()
            self._ev_write.add(self.timeout_write)

    # ------------------------------------------------------------------ reading
    def _on_read_locked(self, fd: int, what: int, arg: Any) -> None:
        with self._lock:  # type: ignore[union-attr]
            # another thread may have disabled reading or freed us (without waiting for
            # this callback: see Event.del_noblock) while we waited for the lock
            if self._rpending and not self._freed:
                self._on_read(fd, what, arg)

    def _on_read(self, fd: int, what: int, arg: Any) -> None:
        # The hot path of every socket bufferevent: kept to one read, one callback, one
        # (eager) write, with the rate-limit and watermark work only when they are in use.
        if what & _TIMEOUT:
            self._disable_io(_READ)
            self._enabled &= ~_READ
            self._run_eventcb(_B_READING | _B_TIMEOUT)
            return
        inp = self.input
        rate = self._rate
        if rate is None and self._plain_read:
            howmuch = -1
        else:
            howmuch = self._read_limit(self._max_single_read)
            if not howmuch:
                return
        try:
            n = _read_from(inp, self._io, howmuch)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._disable_io(_READ)
            self._enabled &= ~_READ
            self._run_eventcb(_B_READING | _B_ERROR, exc.errno or errno.EIO)
            return
        if not n:
            self._disable_io(_READ)
            self._enabled &= ~_READ
            self._run_eventcb(_B_READING | _B_EOF)
            return
        if rate is not None and self._rate is not None:  # (a buffer callback may have dropped it)
            self._rate.consumed_read(n)
        cb = self._readcb
        if cb is None:
            return
        if not self._plain_read:
            if inp._len < self._wm_read[0]:
                return
            if self._defer:
                self._run_readcb()
                return
        self._in_read = True
        try:
            cb(self, self._cbarg)
        finally:
            self._in_read = False
        if self._flush_after_read:
            self._flush_after_read = False
            if not self._freed and self.output._len:
                self._write_now()

    def _update_plain(self) -> None:
        # One test on the read path instead of four: no watermarks, no max single read, no
        # deferred callbacks (the rate limit is tested on its own: ratelimit.py sets _rate).
        self._plain_read = self._wm_read == (0, 0) and self._max_single_read < 0 and not self._defer

    def setwatermark(self, events: int, low: int, high: int) -> None:
        """As :meth:`Bufferevent.setwatermark`.

        >>> import evcore, socket
        >>> s1, s2 = socket.socketpair()
        >>> with evcore.EventBase() as base:
        ...     bev = Bufferevent.socket(base, s1)
        ...     bev.setwatermark(evcore.EV_READ, 2, 0); bev.getwatermark(evcore.EV_READ)
        ...     bev.free()
        (2, 0)
        >>> s1.close(); s2.close()
        """
        self.lock()
        try:
            super().setwatermark(events, low, high)
        finally:
            self._update_plain()
            self.unlock()

    def set_max_single_read(self, n: int) -> None:
        """As :meth:`Bufferevent.set_max_single_read`.

        >>> import evcore, socket
        >>> s1, s2 = socket.socketpair()
        >>> with evcore.EventBase() as base:
        ...     bev = Bufferevent.socket(base, s1)
        ...     bev.set_max_single_read(100); bev.get_max_single_read()
        ...     bev.free()
        100
        >>> s1.close(); s2.close()
        """
        super().set_max_single_read(n)
        self._update_plain()

    def _read_limit(self, howmuch: int) -> int:
        """Cut ``howmuch`` to the rate limit and the read high watermark; 0: read nothing now."""
        rate = self._rate
        if rate is not None:
            allowed = rate.read_allowance()
            if allowed <= 0:
                rate.block_read()
                return 0
            if howmuch < 0 or allowed < howmuch:
                howmuch = allowed
        high = self._wm_read[1]
        if high:
            room = high - self.input._len
            if room <= 0:
                self._input_wm_cb(self.input, None, None)
                return 0
            if howmuch < 0 or room < howmuch:
                howmuch = room
        return howmuch

    # ------------------------------------------------------------------ writing
    def _output_watch(self, added: int, deleted: int) -> None:
        """The output buffer's watcher: data was added; send it now unless something waits."""
        if not added or self._wpending or self._fd < 0 or self._connecting:
            return
        if not self._enabled & _WRITE or self._write_suspended:
            return
        if self._in_read:
            self._flush_after_read = True
            return
        self._write_now()

    def _write_now(self) -> None:
        """Eager write: send what the kernel takes now, wait for the write event for the rest."""
        out = self.output
        rate = self._rate
        budget = self._max_single_write
        if rate is not None:
            budget = self._write_budget()
            if budget == 0:
                rate.block_write()
                return
        try:
            n = _write_to(out, self._io, budget)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            n = 0  # the write event will see the error again and report it from the loop
        if n and rate is not None and self._rate is not None:
            self._rate.consumed_write(n)
        if out._len:
            if not self._wpending and self._writing():
                self._ev_write.add(self.timeout_write)
                self._wpending = True
        elif n and self._writecb is not None:
            # drained (to 0 <= the write low watermark): report it from the loop, never inside write()
            self._ev_write.active(_WRITE)

    def _on_write(self, fd: int, what: int, arg: Any) -> None:
        lock = self._lock
        if lock is not None:
            lock.acquire()
        try:
            if self._freed:  # freed by another thread while we waited for the lock
                return
            if what & _TIMEOUT:
                self._disable_io(_WRITE)
                self._enabled &= ~_WRITE
                self._run_eventcb(_B_WRITING | _B_TIMEOUT)
                return
            if self._connecting and not self._finish_connect():
                return
            out = self.output
            n = 0
            if out and self._writing():
                budget = self._max_single_write
                if self._rate is not None:
                    budget = self._write_budget()
                    if budget == 0:
                        self._rate.block_write()
                        return
                try:
                    n = _write_to(out, self._io, budget)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    self._disable_io(_WRITE)
                    self._enabled &= ~_WRITE
                    self._run_eventcb(_B_WRITING | _B_ERROR, exc.errno or errno.EIO)
                    return
                if self._rate is not None and n:
                    self._rate.consumed_write(n)
            if self._wpending and (not out or not self._writing()):
                self._ev_write.del_noblock()
                self._wpending = False
            if len(out) <= self._wm_write[0] and (n or what == _WRITE):
                self._run_writecb()
        finally:
            if lock is not None:
                lock.release()

    # ------------------------------------------------------------------ connecting
    def connect(self, address: Any) -> None:
        """Connect to ``address`` (a socket address tuple, or a path for AF_UNIX).

        With no socket yet, one is made (and owned: closed at :meth:`free`).  The
        outcome arrives as ``CONNECTED`` or ``ERROR`` in the event callback.
        """
        self.lock()
        try:
            if self._freed:
                raise EvbufferError("connect() on a freed bufferevent")
            if self._fd < 0:
                sock = socket.socket(sockaddr_family(address), socket.SOCK_STREAM)
                sock.setblocking(False)
                self._owned = True
                self._setfd(sock)
            self._start_connect(address)
        finally:
            self.unlock()

    def _start_connect(self, address: Any) -> None:
        sock = self._sockobj
        try:
            if sock is not None:
                err = sock.connect_ex(address)
            else:
                tmp = socket.socket(fileno=self._fd)
                try:
                    err = tmp.connect_ex(address)
                finally:
                    tmp.detach()
        except OSError as exc:  # bad address for the family, and the like
            err = exc.errno or errno.EINVAL
        except (TypeError, ValueError):
            err = errno.EINVAL
        self._connecting = True
        self._connect_err = 0
        if self._rpending:
            self._ev_read.del_noblock()
            self._rpending = False
        if err in _CONNECT_PENDING:
            if not self._wpending:
                self._ev_write.add(self.timeout_write)
                self._wpending = True
            return
        # finished (or failed) at once: report from the loop all the same
        self._connect_err = err if err else -1
        self._ev_write.active(_WRITE)

    def _finish_connect(self) -> bool:
        """Returns True when connected; reports either outcome."""
        err = self._connect_err
        if err == -1:
            err = 0
        elif err == 0:
            try:
                sock = self._sockobj
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if sock else _so_error(self._fd)
            except OSError as exc:  # pragma: no cover - fd vanished
                err = exc.errno or errno.EBADF
            if err in (errno.EINPROGRESS, errno.EALREADY):  # pragma: no cover - spurious wake-up
                return False
        self._connecting = False
        self._connect_err = 0
        if err:
            if self._wpending:
                self._ev_write.del_noblock()
                self._wpending = False
            self._run_eventcb(_B_ERROR, err)
            if err == errno.EISCONN and not self._freed:
                # connect() on a connected socket: the connection itself goes on as it was
                events = (_READ if self._reading() else 0) | (_WRITE if self._writing() else 0)
                self._enable_io(events)
            return False
        self._run_eventcb(_B_CONNECTED)
        if self._freed:
            return False
        if self._reading():
            self._enable_io(_READ)
        if not self.output and self._wpending:
            self._ev_write.del_noblock()
            self._wpending = False
        return True

    def connect_hostname(self, dns_base: Any, family: int, host: str, port: int) -> None:
        """Resolve ``host`` (through ``dns_base.getaddrinfo``, or the thread pool for ``None``), then connect.

        A failed lookup reports ``ERROR``; :meth:`get_dns_error` then gives the
        ``EAI_*`` code.
        """
        self.lock()
        try:
            if self._freed:
                raise EvbufferError("connect_hostname() on a freed bufferevent")
            self._dns_error = 0
            self._suspend_read(SUSPEND_LOOKUP)
            self._suspend_write(SUSPEND_LOOKUP)
            if dns_base is None:
                self.base.run_in_pool(
                    socket.getaddrinfo, host, port, family, socket.SOCK_STREAM, callback=self._resolved_future
                )
            else:
                hints = {"family": family, "type": socket.SOCK_STREAM, "proto": 0, "flags": 0}
                self._lookup = dns_base.getaddrinfo(host, str(port), hints, self._resolved_dns)
        finally:
            self.unlock()

    def _resolved_future(self, fut: Any) -> None:
        exc = fut.exception()
        if exc is not None:
            code = exc.errno if isinstance(exc, socket.gaierror) and exc.errno else socket.EAI_FAIL
            self._resolved(code, [])
        else:
            self._resolved(0, fut.result())

    def _resolved_dns(self, result: int, addrinfos: Any, arg: Any = None) -> None:
        self._resolved(result, addrinfos or [])

    def _resolved(self, result: int, addrinfos: list[Any]) -> None:
        self.lock()
        try:
            self._lookup = None
            if self._freed:
                return
            self._unsuspend_read(SUSPEND_LOOKUP)
            self._unsuspend_write(SUSPEND_LOOKUP)
            if result or not addrinfos:
                self._dns_error = result or socket.EAI_NONAME
                self._run_eventcb(_B_ERROR)
                return
            fam, _type, _proto, _canon, address = addrinfos[0]
            if self._fd < 0:
                sock = socket.socket(fam, socket.SOCK_STREAM)
                sock.setblocking(False)
                self._owned = True
                self._setfd(sock)
            self._start_connect(address)
        finally:
            self.unlock()

    def get_dns_error(self) -> int:
        """The ``EAI_*`` code of the last failed :meth:`connect_hostname` lookup (0 if none)."""
        return self._dns_error

    # ------------------------------------------------------------------ teardown
    def _destruct(self) -> None:
        self._ev_read.free(block=False)
        self._ev_write.free(block=False)
        self._rpending = self._wpending = False
        if self._lookup is not None and hasattr(self._lookup, "cancel"):
            try:
                self._lookup.cancel()
            except Exception:  # pragma: no cover - a DNS base's own failure
                pass
            self._lookup = None
        if self._owned and self._fd >= 0:
            if self._sockobj is not None:
                self._sockobj.close()
            else:
                import os

                try:
                    os.close(self._fd)
                except OSError:  # pragma: no cover - closed behind our back
                    pass
        self._fd = -1
        self._io = None
        self._sockobj = None
