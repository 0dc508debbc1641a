"""Loopback TCP bandwidth: a tight Python sender and receiver on 127.0.0.1 (two processes).

This is the ceiling the echo benchmark's 1 MiB rows are measured against: what one Python
process can push through one loopback TCP connection to another with no event loop at all,
only large blocking ``sendall`` and ``recv_into`` calls.  Two roles::

    python loopback.py sink [--cpu K] [--warmup W]
        listens on 127.0.0.1 (any port), prints the port, accepts one connection, reads it
        with recv_into into a 1 MiB buffer until EOF, and prints one JSON line:
        {"bytes": B, "seconds": S, "gb_per_s": B / S / 1e9}, counting only what arrived
        after the first W seconds (the warm-up) of the transfer.
    python loopback.py source --port P [--cpu K] [--seconds S] [--chunk BYTES]
        connects (TCP_NODELAY), sendall()s one CHUNK-byte buffer (1 MiB) again and again for
        S seconds, then closes.

GB = 10^9 bytes; bytes travel one way and are counted once, as in the echo client's MB/s.

>>> parse(["source", "--port", "1"]).seconds
3.0
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Sequence


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line.

    >>> parse(["sink"]).role
    'sink'
    """
    p = argparse.ArgumentParser(description="loopback TCP bandwidth (sink / source)")
    p.add_argument("role", choices=["sink", "source"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cpu", type=int, default=None)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--chunk", type=int, default=1 << 20)
    return p.parse_args(argv)


def sink(ns: argparse.Namespace) -> None:
    """Accept one connection, read it to EOF, print the measured bandwidth."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", ns.port))
    lsock.listen(1)
    sys.stdout.write(f"{lsock.getsockname()[1]}\n")
    sys.stdout.flush()
    conn, _ = lsock.accept()
    lsock.close()
    buf = memoryview(bytearray(ns.chunk))
    recv_into = conn.recv_into
    n = recv_into(buf)
    t_start = time.perf_counter() + ns.warmup
    counted = 0
    t0 = None
    while n:
        if t0 is not None:
            counted += n
        elif time.perf_counter() >= t_start:
            t0 = time.perf_counter()
        n = recv_into(buf)
    t1 = time.perf_counter()
    conn.close()
    secs = (t1 - t0) if t0 is not None else 0.0
    out = {"bytes": counted, "seconds": round(secs, 4), "gb_per_s": counted / secs / 1e9 if secs else 0.0}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def source(ns: argparse.Namespace) -> None:
    """Send for ``ns.seconds`` seconds, then close."""
    sock = socket.create_connection(("127.0.0.1", ns.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = memoryview(b"x" * ns.chunk)
    sendall = sock.sendall
    end = time.perf_counter() + ns.seconds
    while time.perf_counter() < end:
        sendall(data)
    sock.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run one role."""
    ns = parse(argv)
    if ns.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {ns.cpu})
    (sink if ns.role == "sink" else source)(ns)


if __name__ == "__main__":
    main()
