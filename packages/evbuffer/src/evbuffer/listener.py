"""``Listener``: accept connections on a listening socket (libevent's ``evconnlistener``).

Facts and theory of operation
-----------------------------
A listener is one persistent ``EV_READ`` :class:`evcore.Event` on a listening socket.  When
the socket is readable, :meth:`Listener._on_read` accepts in a *bounded batch* (at most
:attr:`Listener.accept_batch` connections, 32 by default): libevent loops until ``EAGAIN``,
which lets one busy listener starve every other event; the readiness is level-triggered, so
what is left in the backlog is taken on the next loop pass.  Each accepted socket is made
non-blocking (unless ``LEV_OPT.LEAVE_SOCKETS_BLOCKING``) and handed to
``callback(listener, sock, address, arg)``, which owns it from then on.

Ownership.  A socket the listener creates from ``address=`` is always its own and is closed
by :meth:`Listener.free`.  A socket passed as ``sock=`` (a :class:`socket.socket` or an int
fd) is closed by ``free()`` only with ``LEV_OPT.CLOSE_ON_FREE``; otherwise it stays open,
even when the listener is garbage-collected without ``free()``.  If the constructor raises,
a socket passed in stays the caller's.  The listener always makes its socket non-blocking
(a blocking one would hang the loop on the second accept of a batch).

Options (``LEV_OPT``, libevent 2.1's values).  ``REUSEABLE`` sets ``SO_REUSEADDR`` and
``REUSEABLE_PORT`` sets ``SO_REUSEPORT`` (ignored where the OS has none, as libevent), and
``BIND_IPV6ONLY`` sets ``IPV6_V6ONLY``, before ``bind``, so they only matter with
``address=``.  ``DEFERRED_ACCEPT`` sets ``TCP_DEFER_ACCEPT`` on a TCP socket where the OS
has it (Linux); use it only for protocols where the client speaks first.  ``DISABLED``
creates the listener disabled.  ``CLOSE_ON_EXEC`` is always in effect: Python creates
every socket non-inheritable (PEP 446).  ``THREADSAFE`` puts a lock around the listener's
state so that :meth:`~Listener.enable`, :meth:`~Listener.disable`, :meth:`~Listener.set_cb`
and :meth:`~Listener.free` may be called from any thread.

``backlog``: ``-1`` (or any negative) listens with a backlog of 128, libevent's default
(the kernel caps it at ``net.core.somaxconn``); ``0`` means "``sock`` is already listening,
do not call ``listen``" (refused with ``address=``, where it could never accept); a positive
value is passed to ``listen``.

Errors of ``accept``.  ``EAGAIN`` ends the batch.  Transient errors (``ECONNABORTED``,
``EINTR``, ``EPROTO``, ``EPERM`` from a firewall, and the network errors Linux's
``accept(2)`` says to treat like ``EAGAIN``) are skipped without a word.  Everything else
is reported to the error callback, ``errorcb(listener, arg)``, with the errno in
:attr:`Listener.socket_error` (as libevent's ``EVUTIL_SOCKET_ERROR()``; ``arg`` is the
listener's callback argument); without an error callback it is logged on the ``evbuffer``
logger (a warning when trouble starts, debug while it lasts).

Running out of descriptors.  At ``EMFILE``/``ENFILE`` (and ``ENOBUFS``/``ENOMEM``) the
pending connection stays in the backlog and the socket stays readable, so a
level-triggered loop that just retries spins at 100% CPU: libevent 2.0 does
(libevent issues #71 and #363).  This listener instead *pauses*: it removes its read event
and re-adds it from a timer after 10 ms, doubling the pause at each further failure up to
0.5 s, and resetting it at the first successful accept.  So it never spins, and it
resumes by itself within about half a second of descriptors becoming free, whether an
error callback is set or not; the clients wait in the kernel's backlog meanwhile and are
then served (what nginx does too).  Any other unexpected error (say ``EINVAL`` once the
socket stopped listening) gets the same pause, so a broken socket cannot spin either.

Opt-in load shedding: with ``reserve_fd=True`` the listener keeps one spare descriptor
open (``/dev/null``).  At ``EMFILE``/``ENFILE`` it closes the spare, accepts and at once
closes the pending connections (up to one batch), and reopens the spare: clients see the
connection closed instead of hanging, and no pause is needed since every wake-up is
caused by a new client.  If the spare cannot be reopened it falls back to pausing.  Not
the default: it turns a short descriptor shortage into dropped clients.

Threads.  The lock never covers a call into evcore or user code: state changes bump a
version under the lock, and :meth:`Listener._sync` applies the wanted state (read event
added or not) outside it, redoing the work if another thread changed the state
meanwhile.  So a ``disable()`` from another thread, which evcore makes wait for a running
accept batch to end, cannot deadlock against a callback that itself calls the listener.

>>> import socket
>>> from evcore import EventBase
>>> got = []
>>> def on_accept(listener, sock, address, arg):
...     got.append((arg, sock.recv(5)))
...     sock.close()
...     listener.get_base().loopbreak()
>>> with EventBase() as base, Listener(base, on_accept, "hi", address=("127.0.0.1", 0)) as lev:
...     client = socket.create_connection(lev.address)
...     client.sendall(b"hello")
...     base.loopexit(5)
...     base.dispatch()
0
>>> got
[('hi', b'hello')]
>>> client.close()
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from evcore import EV_PERSIST, EV_READ, Event, EventBase

from .errors import EvbufferError

__all__ = [
    "LEV_OPT",
    "Listener",
    "ListenerCallback",
    "ErrorCallback",
    "LEV_OPT_LEAVE_SOCKETS_BLOCKING",
    "LEV_OPT_CLOSE_ON_FREE",
    "LEV_OPT_CLOSE_ON_EXEC",
    "LEV_OPT_REUSEABLE",
    "LEV_OPT_THREADSAFE",
    "LEV_OPT_DISABLED",
    "LEV_OPT_DEFERRED_ACCEPT",
    "LEV_OPT_REUSEABLE_PORT",
    "LEV_OPT_BIND_IPV6ONLY",
]

log = logging.getLogger("evbuffer")

ListenerCallback = Callable[["Listener", socket.socket, Any, Any], object]
ErrorCallback = Callable[["Listener", Any], object]


class LEV_OPT(enum.IntFlag):
    """Listener options, with libevent 2.1's ``LEV_OPT_*`` values.

    >>> LEV_OPT.CLOSE_ON_FREE | LEV_OPT.REUSEABLE
    <LEV_OPT.CLOSE_ON_FREE|REUSEABLE: 10>
    >>> int(LEV_OPT.REUSEABLE_PORT)
    128
    """

    LEAVE_SOCKETS_BLOCKING = 1 << 0
    CLOSE_ON_FREE = 1 << 1
    CLOSE_ON_EXEC = 1 << 2
    REUSEABLE = 1 << 3
    THREADSAFE = 1 << 4
    DISABLED = 1 << 5
    DEFERRED_ACCEPT = 1 << 6
    REUSEABLE_PORT = 1 << 7
    BIND_IPV6ONLY = 1 << 8


LEV_OPT_LEAVE_SOCKETS_BLOCKING = LEV_OPT.LEAVE_SOCKETS_BLOCKING
LEV_OPT_CLOSE_ON_FREE = LEV_OPT.CLOSE_ON_FREE
LEV_OPT_CLOSE_ON_EXEC = LEV_OPT.CLOSE_ON_EXEC
LEV_OPT_REUSEABLE = LEV_OPT.REUSEABLE
LEV_OPT_THREADSAFE = LEV_OPT.THREADSAFE
LEV_OPT_DISABLED = LEV_OPT.DISABLED
LEV_OPT_DEFERRED_ACCEPT = LEV_OPT.DEFERRED_ACCEPT
LEV_OPT_REUSEABLE_PORT = LEV_OPT.REUSEABLE_PORT
LEV_OPT_BIND_IPV6ONLY = LEV_OPT.BIND_IPV6ONLY

DEFAULT_BACKLOG = 128
PAUSE_MIN = 0.01
PAUSE_MAX = 0.5

# accept() errors that concern one connection, not the listener: skip them and go on.  Linux's
# accept(2) asks to treat the pending network errors of the new socket like EAGAIN.
_TRANSIENT = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "EINTR",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENOPROTOOPT",
        "EHOSTDOWN",
        "ENONET",
        "EHOSTUNREACH",
        "EOPNOTSUPP",
        "ENETUNREACH",
        "ECONNRESET",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
)
_OUT_OF_FDS = frozenset((errno.EMFILE, errno.ENFILE))


class _BorrowedSocket(socket.socket):
    """A socket object around an fd the listener does not own: never closes it."""

    def __del__(self) -> None:  # replaces the close-on-finalize of _socket.socket
        if self.fileno() >= 0:
            self.detach()


def _family_of(address: Any) -> tuple[int, Any]:
    """The address family for ``address`` and the address as ``bind`` takes it."""
    if isinstance(address, tuple):
        if len(address) == 4 or (len(address) == 2 and ":" in str(address[0])):
            return socket.AF_INET6, address
        if len(address) == 2:
            return socket.AF_INET, address
        raise ValueError(f"cannot listen on {address!r}: expected (host, port) or an IPv6 4-tuple")
    if isinstance(address, (str, bytes, os.PathLike)) and hasattr(socket, "AF_UNIX"):
        return socket.AF_UNIX, os.fspath(address)
    raise TypeError(f"address must be a tuple or an AF_UNIX path, not {type(address).__name__}")


class Listener:
    """Accept connections and hand them to ``callback(listener, sock, address, arg)``.

    Give either ``address`` (a socket address tuple such as ``("127.0.0.1", 0)`` or
    ``("::1", 0)``, or a path for ``AF_UNIX``) for the listener to create, bind and own a
    socket, or ``sock`` (a listening or bound :class:`socket.socket`, or an int fd) that it
    owns only with ``LEV_OPT.CLOSE_ON_FREE``.  ``callback`` may be ``None``: the listener
    then accepts nothing until :meth:`set_cb` gives it one.  ``reserve_fd=True`` turns on
    load shedding at ``EMFILE`` (see the module documentation).

    >>> from evcore import EventBase
    >>> with EventBase() as base:
    ...     lev = Listener(base, None, flags=LEV_OPT.REUSEABLE | LEV_OPT.DISABLED,
    ...                    address=("127.0.0.1", 0))
    ...     lev.address[1] > 0, lev.enabled, lev.fileno() >= 0
    ...     lev.free()
    ...     lev.fileno()
    (True, False, True)
    -1
    """

    accept_batch: int = 32
    """At most this many ``accept`` calls per readiness of the listening socket."""

    def __init__(
        self,
        base: EventBase,
        callback: ListenerCallback | None,
        arg: Any = None,
        flags: int = 0,
        backlog: int = -1,
        address: Any = None,
        sock: socket.socket | int | None = None,
        *,
        reserve_fd: bool = False,
    ) -> None:
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        if (address is None) == (sock is None):
            raise ValueError("give exactly one of address= and sock=")
        self.flags = LEV_OPT(int(flags))
        self._base = base
        self._cb: ListenerCallback | None = callback
        self._arg = arg
        self._errorcb: ErrorCallback | None = None
        self._lock: Any = threading.RLock() if self.flags & LEV_OPT.THREADSAFE else contextlib.nullcontext()
        self._ver = 0
        self._enabled = not self.flags & LEV_OPT.DISABLED
        self._freed = False
        self._paused = False
        self._pause = PAUSE_MIN
        self._failing = False
        self._reserve = -1
        self._leave_blocking = bool(self.flags & LEV_OPT.LEAVE_SOCKETS_BLOCKING)
        self.socket_error = 0
        """The errno of the last ``accept`` error reported to the error callback (0 if none)."""
        if address is not None:
            if backlog == 0:
                raise ValueError("backlog=0 means 'already listening', which a new socket is not")
            s, self._owned = self._bind(address), True
        else:
            s, self._owned = self._adopt(sock), bool(self.flags & LEV_OPT.CLOSE_ON_FREE)
        try:
            s.setblocking(False)
            self._set_deferred(s)
            if backlog:
                s.listen(DEFAULT_BACKLOG if backlog < 0 else backlog)
            self.address: Any = s.getsockname()
            """The bound address, as ``getsockname()`` gives it (so port 0 tells the real port)."""
            if reserve_fd:
                self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            if address is not None:
                s.close()
            elif s is not sock:  # our wrapper around the caller's int fd: leave the fd open
                s.detach()
            raise
        self._sock: Any = s
        self._want_reserve = reserve_fd
        self._family, self._type, self._proto = int(s.family), int(s.type), s.proto
        self._fd = s.fileno()
        self._ev = Event(base, self._fd, EV_READ | EV_PERSIST, self._on_read)
        self._timer = Event.timer(base, self._on_resume)
        self._sync()

    # -- construction helpers -------------------------------------------------------------
    def _bind(self, address: Any) -> socket.socket:
        family, where = _family_of(address)
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            fl = self.flags
            if fl & LEV_OPT.REUSEABLE and family != socket.AF_UNIX:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fl & LEV_OPT.REUSEABLE_PORT and family != socket.AF_UNIX:
                if hasattr(socket, "SO_REUSEPORT"):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                else:  # pragma: no cover - platforms without SO_REUSEPORT
                    log.debug("evbuffer: LEV_OPT.REUSEABLE_PORT ignored: no SO_REUSEPORT here")
            if fl & LEV_OPT.BIND_IPV6ONLY and family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(where)
        except BaseException:
            s.close()
            raise
        return s

    def _adopt(self, sock: Any) -> socket.socket:
        if isinstance(sock, socket.socket):
            if sock.fileno() < 0:
                raise ValueError("sock is closed")
            return sock
        if isinstance(sock, int) and not isinstance(sock, bool):
            if self.flags & LEV_OPT.CLOSE_ON_FREE:
                return socket.socket(fileno=sock)
            return _BorrowedSocket(fileno=sock)
        raise TypeError(f"sock must be a socket.socket or an int fd, not {type(sock).__name__}")

    def _set_deferred(self, s: socket.socket) -> None:
        if not self.flags & LEV_OPT.DEFERRED_ACCEPT:
            return
        if s.family in (socket.AF_INET, socket.AF_INET6) and hasattr(socket, "TCP_DEFER_ACCEPT"):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)
        else:
            log.debug("evbuffer: LEV_OPT.DEFERRED_ACCEPT ignored for %r", s)

    # -- state ----------------------------------------------------------------------------
    def _want(self) -> bool:
        return self._enabled and self._cb is not None and not self._paused and not self._freed

    def _sync(self) -> None:
        """Add or delete the read event to match the state (never under the lock).

        The state is read with its version under the lock, applied outside it, and the
        version checked again: another thread that changed the state in between makes
        this pass redo the work, so the last change always wins.
        """
        lock = self._lock
        ev = self._ev
        ver = -1
        while ver != self._ver:
            with lock:
                want = self._want()
                ver = self._ver
            if want:
                ev.add()
            else:
                ev.delete()

    def _checked(self, what: str) -> None:
        if self._freed:
            raise EvbufferError(f"{what} on a freed listener")

    # -- public API ---------------------------------------------------------------------------
    def enable(self) -> None:
        """Start (or resume) accepting (libevent's ``evconnlistener_enable``).

        During an ``EMFILE`` pause the listener resumes when the pause ends.

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, print, flags=LEV_OPT.DISABLED, address=("127.0.0.1", 0)) as lev:
        ...         lev.enable()
        ...         lev.enabled
        True
        """
        with self._lock:
            self._checked("enable()")
            self._enabled = True
            self._ver += 1
        self._sync()

    def disable(self) -> None:
        """Stop accepting; new connections wait in the kernel's backlog (``evconnlistener_disable``).

        An ``EMFILE`` pause in progress is cancelled (its growing delay is kept).

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, print, address=("127.0.0.1", 0)) as lev:
        ...         lev.disable()
        ...         lev.enabled, base.loop()
        (False, 1)
        """
        with self._lock:
            if self._freed:
                return
            self._enabled = False
            self._paused = False
            self._ver += 1
        self._timer.delete()
        self._sync()

    @property
    def enabled(self) -> bool:
        """Whether the listener is enabled (it may still be pausing after ``EMFILE``)."""
        return self._enabled and not self._freed

    @property
    def paused(self) -> bool:
        """Whether accepting is paused after a resource error such as ``EMFILE``.

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, print, address=("127.0.0.1", 0)) as lev:
        ...         lev.paused
        False
        """
        return self._paused

    def set_cb(self, callback: ListenerCallback | None, arg: Any = None) -> None:
        """Replace the callback and its argument (``evconnlistener_set_cb``).

        A ``None`` callback stops accepting until a callback is set again.

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, None, address=("127.0.0.1", 0)) as lev:
        ...         lev.set_cb(print, "arg")
        ...         lev.callback is print, lev.arg
        (True, 'arg')
        """
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable or None")
        with self._lock:
            self._checked("set_cb()")
            self._cb = callback
            self._arg = arg
            self._ver += 1
        self._sync()

    @property
    def callback(self) -> ListenerCallback | None:
        """The accept callback (``None`` when unset)."""
        return self._cb

    @property
    def arg(self) -> Any:
        """The argument given to the accept and error callbacks."""
        return self._arg

    def set_error_cb(self, errorcb: ErrorCallback | None) -> None:
        """Call ``errorcb(listener, arg)`` when ``accept`` fails (``evconnlistener_set_error_cb``).

        ``listener.socket_error`` holds the errno.  Transient errors (``ECONNABORTED``...)
        are not reported; after ``EMFILE`` and the like the listener pauses and resumes by
        itself, whether or not this callback does anything.

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, print, address=("127.0.0.1", 0)) as lev:
        ...         lev.set_error_cb(lambda listener, arg: print(listener.socket_error))
        ...         lev.socket_error
        0
        """
        if errorcb is not None and not callable(errorcb):
            raise TypeError("errorcb must be callable or None")
        with self._lock:
            self._checked("set_error_cb()")
            self._errorcb = errorcb

    def get_base(self) -> EventBase:
        """The base the listener runs on (``evconnlistener_get_base``).

        >>> from evcore import EventBase
        >>> with EventBase() as base:
        ...     with Listener(base, print, address=("127.0.0.1", 0)) as lev:
        ...         lev.get_base() is base
        True
        """
        return self._base

    def fileno(self) -> int:
        """The listening socket's fd, -1 once freed (``evconnlistener_get_fd``)."""
        return -1 if self._freed else self._fd

    def free(self) -> None:
        """Stop accepting and release what the listener owns, now (idempotent).

        Safe from inside the listener's own callbacks.

        >>> import socket
        >>> from evcore import EventBase
        >>> s = socket.create_server(("127.0.0.1", 0))
        >>> with EventBase() as base:
        ...     Listener(base, print, sock=s).free()
        >>> s.fileno() >= 0   # not CLOSE_ON_FREE: still the caller's
        True
        >>> s.close()
        """
        with self._lock:
            if self._freed:
                return
            self._freed = True
            self._ver += 1
            self._errorcb = None
        # From another thread, each delete waits for a running callback of that event: after
        # the pause timer's (which may re-add the read event), the read event's (which may
        # re-add the timer), the timer's again; then nothing of ours can run or re-arm.
        ev, timer = self._ev, self._timer
        timer.delete()
        ev.delete()
        timer.delete()
        ev.free()
        timer.free()
        if self._reserve >= 0:
            os.close(self._reserve)
            self._reserve = -1
        sock, self._sock = self._sock, None
        if self._owned:
            sock.close()
        elif isinstance(sock, _BorrowedSocket):
            sock.detach()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        try:
            if self._freed:
                state = "freed"
            else:
                state = "enabled" if self._enabled else "disabled"
                if self._paused:
                    state += f" paused={self._pause:g}s"
                if self._cb is None:
                    state += " no-callback"
            own = " owned" if self._owned else ""
            return f"<Listener fd={self.fileno()} address={self.address!r} {state}{own}>"
        except Exception:  # pragma: no cover - a repr must never raise
            return f"<Listener at {id(self):#x}>"

    # -- the loop side ----------------------------------------------------------------------
    def _on_read(self, fd: int, what: int, _arg: Any) -> None:
        """Accept up to :attr:`accept_batch` connections (in the loop thread)."""
        sock = self._sock
        accept = sock._accept  # socket.accept() minus the wrapping
        family, type_, proto = self._family, self._type, self._proto
        lock = self._lock
        blocking = self._leave_blocking
        for _ in range(self.accept_batch):
            if not self._want():
                return
            try:
                newfd, address = accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _TRANSIENT:
                    continue
                self._accept_failed(exc)
                return
            conn = socket.socket(family, type_, proto, fileno=newfd)
            if not blocking:
                conn.setblocking(False)
            elif conn.gettimeout() is not None:  # pragma: no cover - socket.setdefaulttimeout() in use
                conn.setblocking(True)
            if self._failing:
                self._recovered()
            with lock:
                cb = None if self._freed else self._cb
                arg = self._arg
            if cb is None:  # pragma: no cover - another thread freed it or cleared the callback
                conn.close()
                return
            cb(self, conn, address, arg)

    def _recovered(self) -> None:
        self._failing = False
        self._pause = PAUSE_MIN
        log.info("evbuffer: listener fd %d accepts again", self._fd)

    def _accept_failed(self, exc: OSError) -> None:
        err = exc.errno or 0
        self.socket_error = err
        if err in _OUT_OF_FDS and self._reserve >= 0 and self._shed():
            self._report(exc, "closed the pending connections (reserve fd)")
            return
        delay = self._pause
        with self._lock:
            if self._freed:  # pragma: no cover - freed by another thread during accept()
                return
            self._paused = True
            self._pause = min(delay * 2, PAUSE_MAX)
            self._ver += 1
        self._sync()
        self._timer.add(delay)
        self._report(exc, f"pausing for {delay * 1000:.0f} ms")

    def _report(self, exc: OSError, action: str) -> None:
        errorcb = self._errorcb
        if errorcb is not None:
            errorcb(self, self._arg)
        elif not self._failing:
            log.warning("evbuffer: accept() on fd %d failed: %s; %s", self._fd, exc, action)
        else:
            log.debug("evbuffer: accept() on fd %d failed: %s; %s", self._fd, exc, action)
        self._failing = True

    def _shed(self) -> bool:
        """Close the reserve fd, accept-and-close the backlog, reopen it; True if that worked."""
        sock = self._sock
        assert sock is not None
        os.close(self._reserve)
        self._reserve = -1
        shed = 0
        try:
            for _ in range(self.accept_batch):
                try:
                    newfd, _address = sock._accept()
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in _TRANSIENT:
                        continue
                    break
                os.close(newfd)
                shed += 1
        finally:
            self._reopen_reserve()
        if shed:
            log.debug("evbuffer: listener fd %d shed %d connections", self._fd, shed)
        return shed > 0 and self._reserve >= 0

    def _reopen_reserve(self) -> None:
        try:
            self._reserve = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("evbuffer: cannot reopen the listener's reserve fd: %s", exc)

    def _on_resume(self, fd: int, what: int, _arg: Any) -> None:
        """The pause after a resource error is over: listen again."""
        if self._want_reserve and self._reserve < 0 and not self._freed:
            self._reopen_reserve()
        with self._lock:
            self._paused = False
            self._ver += 1
        self._sync()
