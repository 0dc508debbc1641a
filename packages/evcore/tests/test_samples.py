"""The hello-world sample (:mod:`evcore.samples.hello`) run for real: a server process, a client, SIGINT."""

from __future__ import annotations

import errno
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import pytest


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "evcore.samples.hello", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_hello_serves_and_exits_on_sigint() -> None:
    """The server greets each client, and exits cleanly (code 0) two seconds after SIGINT."""
    proc = _start("--host", "127.0.0.1", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"listening on ([\d.]+):(\d+)", line)
        assert m, line
        port = int(m.group(2))
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = c.recv(100)
                    if not chunk:
                        break
                    data += chunk
                assert data == b"Hello, World!\n"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "exiting cleanly" in out
        assert "greeted 3 clients" in out
        assert time.monotonic() - t0 >= 1.5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_hello_port_in_use() -> None:
    """A port that cannot be bound: a message on stderr and exit code 1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _start("--port", str(port))
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "Could not create a listener" in err


def test_hello_in_process() -> None:
    """In one process: accept, greet, close; the count of greeted clients goes up."""
    from evcore import EVLOOP_NONBLOCK, EVLOOP_ONCE, EventBase
    from evcore.samples import hello

    with EventBase() as base:
        server = hello.HelloServer(base, "127.0.0.1", 0)
        c = socket.create_connection(server.address[:2])
        try:
            base.loop(EVLOOP_ONCE)
            base.loop(EVLOOP_NONBLOCK)
            assert c.recv(100) == hello.MESSAGE
            assert server.greeted == 1
        finally:
            c.close()
            server.close()


def _server_and_conn() -> tuple[Any, Any, socket.socket, socket.socket]:
    from evcore import EventBase
    from evcore.samples import hello

    base = EventBase()
    server = hello.HelloServer(base, "127.0.0.1", 0)
    client = socket.create_connection(server.address[:2])
    conn, _ = server.sock.accept()
    conn.setblocking(False)
    return base, server, client, conn


def test_hello_partial_write_finishes_when_writable() -> None:
    """A reply larger than the socket buffers is finished from a write event as the client reads."""
    from evcore import EVLOOP_NONBLOCK, EVLOOP_ONCE

    base, server, client, conn = _server_and_conn()
    payload = b"x" * (8 << 20)
    try:
        prefill = 0
        while True:  # fill the send buffer first, so the first send would block outright
            try:
                prefill += conn.send(b"p" * 65536)
            except BlockingIOError:
                break
        server._send(conn, payload)
        assert server.greeted == 0 and base.num_events() == 2  # the listener and the pending write
        got = 0
        client.settimeout(10)
        for _ in range(100_000):
            if server.greeted:
                break
            got += len(client.recv(1 << 20))
            base.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE)
        while True:
            chunk = client.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
        assert got == prefill + len(payload)
        assert server.greeted == 1
        base.loop(EVLOOP_NONBLOCK)
        assert base.num_events() == 1
    finally:
        client.close()
        server.close()
        base.free()


def test_hello_write_to_reset_peer_closes() -> None:
    """A client that reset the connection: the write fails, the connection is closed, nothing raised."""
    base, server, client, conn = _server_and_conn()
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST
        time.sleep(0.05)
        server._send(conn, b"x" * (1 << 20))
        server._send(conn, b"more")  # on the closed socket: OSError path again
        assert server.greeted == 0
        assert conn.fileno() == -1
    finally:
        server.close()
        base.free()


def test_hello_accept_emfile_does_not_raise() -> None:
    """Out of descriptors (EMFILE) while accepting: the callback returns quietly; service resumes later."""
    from evcore import EVLOOP_NONBLOCK, EVLOOP_ONCE

    once = EVLOOP_NONBLOCK | EVLOOP_ONCE  # one pass: the listener stays ready while accept fails
    base, server, client, conn = _server_and_conn()
    conn.close()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    second = socket.create_connection(server.address[:2])
    try:
        highest = max(int(n) for n in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
        filler = []
        try:
            while True:
                filler.append(os.dup(0))
        except OSError:
            pass
        try:
            base.loop(once)  # accept fails with EMFILE: no exception, nobody greeted
            assert server.greeted == 0
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        base.loop(once)
        assert server.greeted == 1
        second.settimeout(10)
        assert second.recv(100) == b"Hello, World!\n"
    finally:
        second.close()
        client.close()
        server.close()
        base.free()


def test_hello_accepts_in_bounded_batches() -> None:
    """More pending clients than one batch (64): the rest are accepted on the next pass."""
    from evcore import EVLOOP_NONBLOCK, EVLOOP_ONCE

    base, server, client, conn = _server_and_conn()
    conn.close()
    clients = [socket.create_connection(server.address[:2]) for _ in range(70)]
    try:
        time.sleep(0.05)  # let the kernel finish the handshakes
        base.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE)
        assert server.greeted == 64
        base.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE)
        assert server.greeted == 70
    finally:
        for c in clients:
            c.close()
        client.close()
        server.close()
        base.free()


def test_hello_unexpected_accept_error_propagates() -> None:
    """An accept error other than running out of fds (EINVAL on a shut-down listener) leaves the loop."""
    from evcore import EVLOOP_NONBLOCK

    base, server, client, conn = _server_and_conn()
    try:
        server.sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(OSError) as info:
            base.loop(EVLOOP_NONBLOCK)
        assert info.value.errno == errno.EINVAL
    finally:
        conn.close()
        client.close()
        server.close()
        base.free()
