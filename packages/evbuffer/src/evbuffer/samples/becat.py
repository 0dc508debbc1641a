"""becat: netcat on bufferevents.

Usage::

    python -m evbuffer.samples.becat [-v] HOST PORT        # connect, like `nc HOST PORT`
    python -m evbuffer.samples.becat -l [-v] HOST PORT     # listen, serve one client, like `nc -l`

Copies stdin to the socket and the socket to stdout. Exit status: 0 when the peer ended the
connection and everything it sent is written out, 1 on errors (refused, reset, unknown host,
stdout closed), 2 on bad arguments, 130 on Ctrl-C. ``-v`` reports the address listened on
(``PORT`` 0 picks a free one) and the peer's.

Theory of operation
-------------------
*Three bufferevents.* ``net`` over the socket, ``stdin`` over fd 0 and ``stdout`` over fd 1.
:meth:`Bufferevent.socket` takes any fd the event loop can watch, not only sockets: pipes and
terminals work, read with ``readv`` and written with ``writev``. ``stdout`` is only ever
enabled for writing.

*Copying, with bounded memory.* ``stdin``'s read callback moves its input to ``net``'s output;
``net``'s moves its input to ``stdout``'s output (``write_buffer`` moves chunks, not bytes).
When a destination's output reaches ``--max-output`` bytes the source stops reading; the
destination's write callback, which runs once its output drained below the write low
watermark (half of ``--max-output``), starts it again. So a slow stdout or a slow peer holds
memory flat instead of filling it (libevent's le-proxy pattern; see
:mod:`evbuffer.samples.le_proxy`).

*Half-close.* EOF on stdin does not end anything: once ``net``'s output has gone out, the
socket is shut down for writing (``shutdown(SHUT_WR)``), so the peer sees EOF and can still
answer. EOF from the socket ends the program, once ``stdout``'s output is written.

*Fds the loop cannot watch.* epoll refuses regular files and devices other than terminals
(``EPERM``; poll and select report them always ready), so a bufferevent cannot read them
with the default backend. A regular file on stdin is sent with :meth:`Buffer.add_file`
instead: ``sendfile`` from the file to the socket, no reads, no copies. Any other device
(``/dev/null``) counts as empty input; an endless one (``/dev/zero``) is not supported.
Output to a regular file or ``/dev/null`` works: writes there never block, so the bufferevent
never has to wait for writability.

*Non-blocking mode.* Bufferevents need non-blocking fds, and ``O_NONBLOCK`` belongs to the
open file, which a terminal shares with the shell: :func:`main` restores the modes of stdin
and stdout when it ends.

>>> Netcat.__name__, MAX_OUTPUT
('Netcat', 524288)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import stat
from collections.abc import Sequence
from typing import Any

from evbuffer import BEV_EVENT, BEV_OPT, LEV_OPT, Bufferevent, Listener
from evbuffer.samples import format_sockaddr
from evcore import EV_READ, EV_WRITE, Event, EventBase, EventError

__all__ = ["MAX_OUTPUT", "Netcat", "main"]

log = logging.getLogger("evbuffer.samples")

#: Bytes an output may hold before its source stops reading.
MAX_OUTPUT = 512 * 1024


def _pollable(fd: int) -> bool:
    """Whether every event backend can watch ``fd``: pipes, sockets and terminals can."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


class Netcat:
    """One netcat session: ``stdin_fd`` to a socket, the socket to ``stdout_fd``.

    Call :meth:`connect` or :meth:`listen`, then :meth:`run`, which returns the exit status.
    The methods named ``*cb`` are the bufferevents' callbacks.

    >>> import os, socket, threading
    >>> server = socket.create_server(("127.0.0.1", 0))
    >>> in_r, in_w = os.pipe(); out_r, out_w = os.pipe()
    >>> base = EventBase()
    >>> nc = Netcat(base, stdin_fd=in_r, stdout_fd=out_w)
    >>> nc.connect(*server.getsockname())
    >>> session = threading.Thread(target=nc.run); session.start()
    >>> peer, _ = server.accept()
    >>> os.write(in_w, b"hello"); os.close(in_w)       # stdin: "hello", then EOF
    5
    >>> peer.recv(10), peer.recv(10)                    # ... and the peer sees EOF too
    (b'hello', b'')
    >>> peer.sendall(b"bye"); peer.close()
    >>> session.join(); nc.status, os.read(out_r, 10)
    (0, b'bye')
    >>> nc.close(); base.free()
    >>> for fd in (in_r, out_r, out_w): os.close(fd)
    >>> server.close()
    """

    def __init__(
        self, base: EventBase, *, stdin_fd: int = 0, stdout_fd: int = 1, max_output: int = MAX_OUTPUT
    ) -> None:
        if max_output < 2:
            raise ValueError("max_output must be at least 2 bytes")
        self.base = base
        self.max_output = max_output
        #: The exit status once the session ended (``None`` before).
        self.status: int | None = None
        self.net: Bufferevent | None = None
        self.stdin: Bufferevent | None = None
        self.listener: Listener | None = None
        self._stdin_fd = stdin_fd
        self._stdin_eof = self._stdin_paused = False
        self._net_eof = self._net_paused = False
        self._shut = False
        self._target: tuple[str, int] = ("", 0)
        # stdout: writing only; its write callback runs once the output drained to half
        self.stdout = Bufferevent.socket(base, stdout_fd)
        self.stdout.setcb(None, self.stdout_writecb, self.stdout_eventcb)
        self.stdout.setwatermark(EV_WRITE, max_output // 2, 0)

    # ------------------------------------------------------------------ setting up
    def connect(self, host: str, port: int) -> None:
        """Connect to ``host`` (a name or an address; resolved off the loop) and ``port``."""
        net = Bufferevent.socket(self.base, None, BEV_OPT.CLOSE_ON_FREE)
        self._target = (host, port)
        self._attach(net)
        net.connect_hostname(None, socket.AF_UNSPEC, host, port)  # CONNECTED starts stdin

    def listen(self, address: Any) -> Listener:
        """Listen on ``address`` and take the first client that connects (then stop listening)."""
        self.listener = Listener(
            self.base, self._accept, flags=LEV_OPT.CLOSE_ON_FREE | LEV_OPT.REUSEABLE, address=address
        )
        log.info("listening on %s", format_sockaddr(self.listener.address))
        return self.listener

    def _accept(self, listener: Listener, sock: socket.socket, address: Any, arg: Any) -> None:
        listener.free()  # one client only, as netcat
        log.info("connection from %s", format_sockaddr(address))
        self._attach(Bufferevent.socket(self.base, sock, BEV_OPT.CLOSE_ON_FREE))
        self._start_input()

    def _attach(self, net: Bufferevent) -> None:
        self.net = net
        net.setcb(self.net_readcb, self.net_writecb, self.net_eventcb)
        net.setwatermark(EV_WRITE, self.max_output // 2, 0)
        net.enable(EV_READ | EV_WRITE)

    def _start_input(self) -> None:
        """The socket is connected: start copying stdin to it."""
        assert self.net is not None
        fd = self._stdin_fd
        if _pollable(fd):
            self.stdin = Bufferevent.socket(self.base, fd)
            self.stdin.setcb(self.stdin_readcb, None, self.stdin_eventcb)
            self.stdin.enable(EV_READ)
            return
        # a file (or a device) the loop cannot watch: send a regular file's contents with
        # sendfile; anything else counts as empty
        if stat.S_ISREG(os.fstat(fd).st_mode):
            offset = os.lseek(fd, 0, os.SEEK_CUR)
            size = os.fstat(fd).st_size
            if size > offset:
                self.net.output.add_file(os.dup(fd), offset, size - offset)  # the buffer closes the dup
        self._stdin_ended()

    # ------------------------------------------------------------------ stdin -> net
    def stdin_readcb(self, bev: Bufferevent, arg: Any) -> None:
        """stdin has data: move it to the socket's output; stop reading stdin if that is full."""
        assert self.net is not None
        self.net.write_buffer(bev.input)
        if len(self.net.output) >= self.max_output:
            bev.disable(EV_READ)  # the peer is slow: wait for net_writecb
            self._stdin_paused = True

    def net_writecb(self, bev: Bufferevent, arg: Any) -> None:
        """The socket's output drained to half: read stdin again; after stdin's EOF, half-close."""
        if self._stdin_paused and self.stdin is not None:
            self._stdin_paused = False
            self.stdin.enable(EV_READ)
        if self._stdin_eof and not bev.output:
            self._shutdown_write()

    def stdin_eventcb(self, bev: Bufferevent, what: BEV_EVENT, arg: Any) -> None:
        """EOF on stdin: half-close once the output is out. An error ends the session."""
        if what & BEV_EVENT.EOF:
            bev.free()
            self.stdin = None
            self._stdin_ended()
        else:
            self._fail("reading stdin", bev)

    def _stdin_ended(self) -> None:
        self._stdin_eof = True
        assert self.net is not None
        if not self.net.output:
            self._shutdown_write()
        # else net_writecb shuts it down once the output is empty

    def _shutdown_write(self) -> None:
        """Half-close: the peer sees EOF, and may still answer."""
        if self._shut:
            return
        self._shut = True
        assert self.net is not None
        sock = socket.socket(fileno=self.net.fileno())  # borrow the fd for one call
        try:
            with contextlib.suppress(OSError):  # the peer is gone already: reading will say so
                sock.shutdown(socket.SHUT_WR)
        finally:
            sock.detach()

    # ------------------------------------------------------------------ net -> stdout
    def net_readcb(self, bev: Bufferevent, arg: Any) -> None:
        """The peer sent data: move it to stdout's output; stop reading the socket if that is full."""
        self.stdout.write_buffer(bev.input)
        if len(self.stdout.output) >= self.max_output:
            bev.disable(EV_READ)  # stdout is slow: wait for stdout_writecb
            self._net_paused = True

    def stdout_writecb(self, bev: Bufferevent, arg: Any) -> None:
        """stdout's output drained to half: read the socket again; after its EOF, end once empty."""
        if self._net_paused:
            self._net_paused = False
            assert self.net is not None
            self.net.enable(EV_READ)
        if self._net_eof and not bev.output:
            self.finish(0)

    def net_eventcb(self, bev: Bufferevent, what: BEV_EVENT, arg: Any) -> None:
        """Connected: start on stdin. EOF: end once stdout has everything. Errors end the session."""
        if what & BEV_EVENT.CONNECTED:
            log.info("connected to %s port %s", *self._target)
            self._start_input()
        elif what & BEV_EVENT.EOF:
            self._net_eof = True
            if not self.stdout.output:
                self.finish(0)
            # else stdout_writecb ends it once stdout has everything
        else:
            self._fail("connection", bev)

    def stdout_eventcb(self, bev: Bufferevent, what: BEV_EVENT, arg: Any) -> None:
        """Writing stdout failed (``EPIPE``: nobody reads it any more): the session ends."""
        self._fail("writing stdout", bev)

    # ------------------------------------------------------------------ ending
    def _fail(self, where: str, bev: Bufferevent) -> None:
        if getattr(bev, "get_dns_error", lambda: 0)():
            reason = f"cannot resolve {self._target[0]!r}"
        else:
            reason = os.strerror(bev.socket_error) if bev.socket_error else "failed"
        log.error("%s: %s", where, reason)
        self.finish(1)

    def finish(self, status: int) -> None:
        """End the session with exit status ``status`` (the first call wins)."""
        if self.status is None:
            self.status = status
        self.base.loopbreak()

    def run(self) -> int:
        """Run the loop until the session ends; returns the exit status."""
        self.base.dispatch()
        return 1 if self.status is None else self.status

    def close(self) -> None:
        """Free the bufferevents and the listener (idempotent)."""
        for bev in (self.stdin, self.net, self.stdout):
            if bev is not None:
                bev.free()
        if self.listener is not None:
            self.listener.free()


def main(argv: Sequence[str] | None = None) -> int:
    """Run becat; returns the exit status (see the module docs).

    >>> main(["-l", "127.0.0.1", "99999"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = argparse.ArgumentParser(
        prog="python -m evbuffer.samples.becat",
        description="netcat on bufferevents: copy stdin to a TCP connection and the connection to stdout.",
    )
    parser.add_argument("-l", "--listen", action="store_true", help="listen on HOST PORT for one client")
    parser.add_argument("-v", "--verbose", action="store_true", help="report addresses on stderr")
    parser.add_argument("--max-output", type=int, default=MAX_OUTPUT, metavar="BYTES")
    parser.add_argument("--method", help="event backend to use (default: the best available)")
    parser.add_argument("host", metavar="HOST")
    parser.add_argument("port", metavar="PORT", type=int)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"bad port {args.port}")
    if args.max_output < 2:
        parser.error("--max-output must be at least 2")
    logging.basicConfig(format="becat: %(message)s", level=logging.INFO if args.verbose else logging.WARNING)
    blocking = {fd: os.get_blocking(fd) for fd in (0, 1)}
    try:
        with EventBase(method=args.method) as base:
            nc = Netcat(base, max_output=args.max_output)
            # Ctrl-C ends the session from the loop, like any other ending
            interrupt = Event.signal(base, signal.SIGINT, lambda *_: nc.finish(130))
            interrupt.add()
            try:
                if args.listen:
                    infos = socket.getaddrinfo(
                        args.host, args.port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
                    )
                    nc.listen(infos[0][4])
                else:
                    nc.connect(args.host, args.port)
                return nc.run()
            finally:
                interrupt.free()
                nc.close()
    except (OSError, EventError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        for fd, was_blocking in blocking.items():
            os.set_blocking(fd, was_blocking)


if __name__ == "__main__":
    raise SystemExit(main())
