"""le-proxy: a TCP proxy on bufferevents with bounded memory (libevent's ``sample/le-proxy.c``).

Usage::

    python -m evbuffer.samples.le_proxy [--max-output BYTES] LISTEN_ADDR CONNECT_ADDR
    python -m evbuffer.samples.le_proxy 127.0.0.1:8888 127.0.0.1:80

Each client that connects to ``LISTEN_ADDR`` gets its own connection to ``CONNECT_ADDR``,
and bytes flow both ways until either side hangs up. Ctrl-C (SIGINT) or SIGTERM stops it.

Theory of operation
-------------------
*Relaying.* On accept the proxy makes two socket bufferevents: ``client`` over the accepted
socket and ``server`` over a new socket that connects to ``CONNECT_ADDR``. Each one's read
callback is :meth:`Proxy.readcb` with the other one as its argument (its *partner*): it moves
everything in its input to the partner's output. ``write_buffer`` moves chunks, never bytes,
and the socket bufferevent writes eagerly, so a byte is usually on its way out before the
callback returns. Data the client sends while the server connection is still connecting
waits in the server's output and leaves once it connected.

*Flow control.* ``write()`` never refuses data, so a fast source and a slow destination would
pile everything up in the destination's output. The proxy prevents that the way le-proxy
does: when the destination's output reaches ``max_output`` bytes it stops reading the source
(``disable(EV_READ)``; the kernel's buffers then fill and TCP slows the sender down), and gives
the destination a write low watermark of ``max_output // 2`` with :meth:`Proxy.drained_writecb`
as write callback. That callback runs once the output has drained to half: it clears the
watermark and its own registration and re-enables reading on the source. So an output never
holds more than ``max_output`` plus one read's worth of bytes (a read is at most 256 KiB, the
input buffer's ``read_max``), whatever the peers do.

*Closing.* On ``EOF`` or ``ERROR`` from one side, :meth:`Proxy.eventcb` first passes on what
that side had still received, then deals with the partner: with nothing left to send it is
freed at once; otherwise it stops reading and gets :meth:`Proxy.close_on_finished_writecb`,
which frees it once its output is empty. The side that ended is freed. As in le-proxy there
is no half-close: when one side ends, the other gets what is pending and is then closed. Also
as in le-proxy, a peer that stops reading for good keeps its side open (with at most
``max_output`` plus a read buffered); ``set_timeouts(write=...)`` on both bufferevents would
turn that into a ``TIMEOUT`` event, which a real proxy should treat like an error.

All bufferevents use ``BEV_OPT.DEFER_CALLBACKS`` (as le-proxy does): a callback never runs in
the middle of another bufferevent's IO, so freeing the partner from a callback is always safe.

>>> parse_address("8888"), parse_address("[::1]:8888")
(('127.0.0.1', 8888), ('::1', 8888, 0, 0))
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from typing import Any

from evbuffer import BEV_EVENT, BEV_OPT, LEV_OPT, Bufferevent, Listener
from evbuffer.samples import format_sockaddr
from evcore import EV_READ, EV_WRITE, Event, EventBase, EventError
from evcore.util import parse_sockaddr_port

__all__ = ["MAX_OUTPUT", "Proxy", "parse_address", "main"]

log = logging.getLogger("evbuffer.samples")

#: Bytes a destination's output may hold before the proxy stops reading the source (le-proxy's).
MAX_OUTPUT = 512 * 1024

# le-proxy's options: close the socket with the bufferevent, run callbacks from the loop.
_BEV_OPTIONS = BEV_OPT.CLOSE_ON_FREE | BEV_OPT.DEFER_CALLBACKS

# Signals that stop main() cleanly.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_address(text: str) -> tuple[Any, ...]:
    """``"ip:port"``, ``"[ipv6]:port"``, or a bare port meaning ``127.0.0.1:port`` (as le-proxy).

    >>> parse_address("10.0.0.1:80")
    ('10.0.0.1', 80)
    >>> parse_address("70000")
    Traceback (most recent call last):
    ...
    ValueError: bad port '70000'
    """
    if text.isdigit():
        port = int(text)
        if not 1 <= port <= 65535:
            raise ValueError(f"bad port {text!r}")
        return ("127.0.0.1", port)
    return parse_sockaddr_port(text)


class Proxy:
    """A listening proxy: accepts on ``listen_addr`` and relays each client to ``connect_addr``.

    :attr:`listener` is the :class:`~evbuffer.Listener` (its ``address`` is the bound one, so
    port 0 works); :attr:`bufferevents` holds the live bufferevents of all connections, both
    sides; :meth:`close` frees everything. The methods named ``*cb`` are le-proxy's callbacks.
    ``on_connection(client, server)``, if given, is called for each new pair (for logging or
    tests).

    >>> import socket, threading
    >>> base = EventBase()
    >>> upstream = socket.create_server(("127.0.0.1", 0))        # the real server
    >>> proxy = Proxy(base, ("127.0.0.1", 0), upstream.getsockname())
    >>> loop = threading.Thread(target=base.dispatch); loop.start()
    >>> client = socket.create_connection(proxy.address)
    >>> far_end, _ = upstream.accept()
    >>> client.sendall(b"ping"); far_end.recv(4)
    b'ping'
    >>> far_end.sendall(b"pong"); client.recv(4)
    b'pong'
    >>> far_end.close(); client.recv(4)       # the server hung up, so the proxy hangs up too
    b''
    >>> base.loopbreak(); loop.join(); proxy.close(); base.free()
    >>> client.close(); upstream.close()
    """

    def __init__(
        self,
        base: EventBase,
        listen_addr: Any,
        connect_addr: Any,
        *,
        max_output: int = MAX_OUTPUT,
        on_connection: Callable[[Bufferevent, Bufferevent], object] | None = None,
    ) -> None:
        if max_output < 2:
            raise ValueError("max_output must be at least 2 bytes")
        self.base = base
        self.connect_addr = connect_addr
        self.max_output = max_output
        self.on_connection = on_connection
        self.bufferevents: set[Bufferevent] = set()
        self.listener = Listener(
            base, self.accept, flags=LEV_OPT.CLOSE_ON_FREE | LEV_OPT.REUSEABLE, address=listen_addr
        )

    @property
    def address(self) -> Any:
        """The address the proxy listens on."""
        return self.listener.address

    # ------------------------------------------------------------------ le-proxy's callbacks
    def accept(self, listener: Listener, sock: socket.socket, address: Any, arg: Any) -> None:
        """A client connected: make its bufferevent and one that connects to the server, and join them."""
        client = Bufferevent.socket(self.base, sock, _BEV_OPTIONS)
        server = Bufferevent.socket(self.base, None, _BEV_OPTIONS)
        try:
            server.connect(self.connect_addr)  # the outcome comes later, to eventcb
        except OSError as exc:  # no socket could be made (out of descriptors)
            log.error("cannot connect to %s: %s", format_sockaddr(self.connect_addr), exc)
            server.free()
            client.free()
            return
        self.bufferevents.update((client, server))
        # each side's callbacks get the other side as their argument
        client.setcb(self.readcb, None, self.eventcb, server)
        server.setcb(self.readcb, None, self.eventcb, client)
        client.enable(EV_READ | EV_WRITE)
        server.enable(EV_READ | EV_WRITE)
        if self.on_connection is not None:
            self.on_connection(client, server)

    def readcb(self, bev: Bufferevent, partner: Bufferevent) -> None:
        """Data arrived on ``bev``: pass all of it to ``partner``; stop reading if that is too much."""
        dst = partner.output
        partner.write_buffer(bev.input)
        if len(dst) >= self.max_output:
            # The partner cannot send as fast as we receive. Stop reading here until its
            # output has drained to half; drained_writecb will tell.
            partner.setcb(self.readcb, self.drained_writecb, self.eventcb, bev)
            partner.setwatermark(EV_WRITE, self.max_output // 2, self.max_output)
            bev.disable(EV_READ)

    def drained_writecb(self, bev: Bufferevent, partner: Bufferevent) -> None:
        """``bev``'s output drained to half: stop watching it and read from ``partner`` again."""
        bev.setcb(self.readcb, None, self.eventcb, partner)
        bev.setwatermark(EV_WRITE, 0, 0)
        partner.enable(EV_READ)

    def close_on_finished_writecb(self, bev: Bufferevent, arg: Any) -> None:
        """``bev``'s own peer is gone: free it once everything it still had to send went out."""
        if not bev.output:
            self._free(bev)

    def eventcb(self, bev: Bufferevent, what: BEV_EVENT, partner: Bufferevent | None) -> None:
        """EOF or an error on ``bev``: pass on what it received, close the partner once flushed, free it."""
        if not what & (BEV_EVENT.EOF | BEV_EVENT.ERROR):
            return  # CONNECTED: the server side is up; nothing to do
        if what & BEV_EVENT.ERROR:
            log.warning("connection error: %s", os.strerror(bev.socket_error) if bev.socket_error else what)
        if partner is not None:
            self.readcb(bev, partner)  # flush what bev still holds to the other side
            if partner.output:
                # Still sending to the other side: close it when that is done. Its
                # eventcb gets no partner any more, so an error there just frees it.
                partner.setcb(None, self.close_on_finished_writecb, self.eventcb, None)
                partner.disable(EV_READ)
            else:
                self._free(partner)  # nothing left to say to the other side
        self._free(bev)

    # ------------------------------------------------------------------ teardown
    def _free(self, bev: Bufferevent) -> None:
        self.bufferevents.discard(bev)
        bev.free()

    def close(self) -> None:
        """Stop listening and drop every connection (idempotent)."""
        self.listener.free()
        for bev in list(self.bufferevents):
            self._free(bev)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy until SIGINT or SIGTERM; 0 then, 1 if it cannot start (2: bad arguments).

    >>> main(["127.0.0.1:1", "127.0.0.1:2", "--max-output", "0"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    parser = argparse.ArgumentParser(
        prog="python -m evbuffer.samples.le_proxy",
        description="A TCP proxy on bufferevents with bounded memory (libevent's le-proxy).",
        epilog="Example: python -m evbuffer.samples.le_proxy 127.0.0.1:8888 127.0.0.1:80",
    )
    parser.add_argument(
        "listen", metavar="LISTEN_ADDR", help="ip:port (or a bare port on 127.0.0.1) to accept on"
    )
    parser.add_argument("connect", metavar="CONNECT_ADDR", help="ip:port to relay each client to")
    parser.add_argument(
        "--max-output",
        type=int,
        default=MAX_OUTPUT,
        metavar="BYTES",
        help=f"stop reading a side while the other's output holds this much (default {MAX_OUTPUT})",
    )
    parser.add_argument("--method", help="event backend to use (default: the best available)")
    args = parser.parse_args(argv)
    try:
        listen_addr = parse_address(args.listen)
        connect_addr = parse_address(args.connect)
    except ValueError as exc:
        parser.error(str(exc))
    if args.max_output < 2:
        parser.error("--max-output must be at least 2")
    logging.basicConfig(format="le-proxy: %(message)s", level=logging.INFO)
    try:
        base = EventBase(method=args.method)
    except EventError as exc:
        log.error("%s", exc)
        return 1
    with base:
        try:
            proxy = Proxy(base, listen_addr, connect_addr, max_output=args.max_output)
        except OSError as exc:
            log.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
            return 1
        with proxy:
            stoppers = [Event.signal(base, signum, lambda *_: base.loopexit()) for signum in _STOP_SIGNALS]
            for ev in stoppers:
                ev.add()
            print(
                f"listening on {format_sockaddr(proxy.address)}, relaying to {format_sockaddr(connect_addr)}",
                flush=True,
            )
            base.dispatch()
            for ev in stoppers:
                ev.free()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
