"""libevent's ``hello-world`` sample on evcore alone: greet each client, then close.

Run ``python -m evcore.samples.hello [--host H] [--port P]`` (default
127.0.0.1:9995) and connect with ``nc 127.0.0.1 9995``.  Ctrl-C (SIGINT) says it
will exit cleanly and stops the loop two seconds later, letting greetings in
flight finish.

>>> import socket
>>> from evcore import EventBase, EVLOOP_ONCE, EVLOOP_NONBLOCK
>>> with EventBase() as base:
...     server = HelloServer(base, "127.0.0.1", 0)
...     c = socket.create_connection(server.address)
...     _ = base.loop(EVLOOP_ONCE)
...     _ = base.loop(EVLOOP_NONBLOCK)
...     c.recv(100)
...     server.close(); c.close()
b'Hello, World!\\n'
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
from typing import Any

from evcore import EV_PERSIST, EV_READ, EV_WRITE, Event, EventBase

__all__ = ["HelloServer", "MESSAGE", "main"]

MESSAGE = b"Hello, World!\n"


class HelloServer:
    """A listener that writes :data:`MESSAGE` to each client and closes it.

    >>> from evcore import EventBase
    >>> with EventBase() as base:
    ...     srv = HelloServer(base, "127.0.0.1", 0)
    ...     srv.address[1] > 0
    ...     srv.close()
    True
    """

    def __init__(self, base: EventBase, host: str = "127.0.0.1", port: int = 9995) -> None:
        self.base = base
        self.sock = socket.create_server((host, port), reuse_port=False, backlog=128)
        self.sock.setblocking(False)
        self.address: tuple[Any, ...] = self.sock.getsockname()
        self.greeted = 0
        self._accept_ev = Event(base, self.sock, EV_READ | EV_PERSIST, self._on_accept)
        self._accept_ev.add()

    def _on_accept(self, fd: int, what: int, arg: Any) -> None:
        for _ in range(64):  # bounded batch per readiness, fair to other events
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                    return
                raise
            conn.setblocking(False)
            self._send(conn, MESSAGE)

    def _send(self, conn: socket.socket, data: bytes) -> None:
        try:
            n = conn.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            conn.close()
            return
        rest = data[n:]
        if not rest:
            self.greeted += 1
            conn.close()
            return

        def _writable(fd: int, what: int, arg: Any) -> None:
            self._send(conn, rest)

        self.base.once(conn, EV_WRITE, _writable)

    def close(self) -> None:
        """Stop listening."""
        self._accept_ev.free()
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT, then exit two seconds later; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m evcore.samples.hello", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9995)
    args = parser.parse_args(argv)
    with EventBase() as base:
        try:
            server = HelloServer(base, args.host, args.port)
        except OSError as exc:
            print(f"Could not create a listener on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1

        def _on_signal(signum: int, what: int, arg: Any) -> None:
            print("Caught an interrupt signal; exiting cleanly in two seconds.", flush=True)
            base.loopexit(2.0)

        sig = Event.signal(base, signal.SIGINT, _on_signal)
        sig.add()
        host, port = server.address[:2]
        print(f"evcore hello-world on {base.method}: listening on {host}:{port} (Ctrl-C to stop)", flush=True)
        base.dispatch()
        sig.free()
        server.close()
        print(f"done; greeted {server.greeted} clients", flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    raise SystemExit(main())
