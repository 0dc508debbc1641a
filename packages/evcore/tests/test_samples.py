"""The hello-world sample (:mod:`evcore.samples.hello`) run for real: a server process, a client, SIGINT."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time


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
