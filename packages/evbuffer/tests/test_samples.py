"""The sample programs (:mod:`evbuffer.samples`) run for real: real sockets, real processes.

le_proxy runs in-process on a loop thread (so a sampler on its own loop can watch the sizes of
its buffers) and as ``python -m evbuffer.samples.le_proxy``; the peers are plain Python socket
threads. becat runs as ``python -m evbuffer.samples.becat`` with its stdin and stdout piped, and
in-process over pipes. Every wait is bounded.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from evbuffer import Buffer, Bufferevent
from evbuffer.samples import becat, format_sockaddr, le_proxy
from evcore import EV_PERSIST, EV_READ, Event, EventBase

#: The most a socket bufferevent reads at once (its input buffer's ``read_max``).
READ_MAX = Buffer().read_max
MIB = 1 << 20
TIMEOUT = 30.0


# ---------------------------------------------------------------------------------- helpers
def _payload(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _listening_socket(rcvbuf: int | None = None) -> socket.socket:
    """A TCP server socket on 127.0.0.1; ``rcvbuf`` (set before listen) is inherited by accepted sockets."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.settimeout(TIMEOUT)
    return s


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 18))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _recv_to_eof(sock: socket.socket) -> bytes:
    buf = bytearray()
    while True:
        chunk = sock.recv(1 << 18)
        if not chunk:
            return bytes(buf)
        buf += chunk


def _wait_until(cond: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class _Thread(threading.Thread):
    """A daemon thread that keeps its target's result or exception for :meth:`result`."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._fn = target
        self.value: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as exc:
            self.error = exc

    def result(self, timeout: float = TIMEOUT) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "thread still running"
        if self.error is not None:
            raise self.error
        return self.value


class Sampler:
    """The largest input and output per name, watched from the loop under test.

    :meth:`note_add` takes an output's exact length each time a sample's read callback adds to
    it (see :class:`_PeakProxy`, :class:`_PeakNetcat`): outputs grow only there, so
    :attr:`max_out` holds their true peaks; :meth:`note_paused` marks in :attr:`paused` a
    bufferevent whose read callback stopped its reading (flow control). A persistent 2 ms
    timer samples the inputs into :attr:`max_in` (``bevs()`` yields ``(name, bufferevent)``).
    :attr:`reached` ``[name]`` is set once that output held ``threshold`` bytes.
    """

    def __init__(
        self, base: EventBase, bevs: Callable[[], Iterable[tuple[str, Bufferevent]]], threshold: int
    ):
        self._bevs = bevs
        self.threshold = threshold
        self.max_out: dict[str, int] = {}
        self.max_in: dict[str, int] = {}
        self.reached: dict[str, threading.Event] = {}
        self.paused: dict[str, threading.Event] = {}
        self.ev = Event(base, None, EV_PERSIST, self._tick)
        self.ev.add(0.002)

    def _event(self, table: dict[str, threading.Event], name: str) -> threading.Event:
        return table.setdefault(name, threading.Event())

    def note(self, name: str, bev: Bufferevent) -> None:
        """A sample of ``bev``'s buffers (from the timer)."""
        out, inp = len(bev.output), len(bev.input)
        self.max_out[name] = max(self.max_out.get(name, 0), out)
        self.max_in[name] = max(self.max_in.get(name, 0), inp)
        if out >= self.threshold:
            self._event(self.reached, name).set()

    def note_add(self, name: str, length: int) -> None:
        """An output's exact length right after data was added to it (its peak)."""
        self.max_out[name] = max(self.max_out.get(name, 0), length)
        if length >= self.threshold:
            self._event(self.reached, name).set()

    def note_paused(self, name: str, bev: Bufferevent) -> None:
        """Called right after a read callback: was reading on ``bev`` just stopped?"""
        if not bev.freed and not bev.get_enabled() & EV_READ:
            self._event(self.paused, name).set()

    def _tick(self, fd: int, what: int, arg: Any) -> None:
        for name, bev in self._bevs():
            if not bev.freed:
                self.note(name, bev)

    def wait_reached(self, name: str, timeout: float = TIMEOUT) -> bool:
        event = self._event(self.reached, name)
        return _wait_until(lambda: self._loop_alive() and event.is_set(), timeout)

    #: The thread that runs the loop under test: waits fail at once when it died.
    loop_thread: _Thread | None = None

    def _loop_alive(self) -> bool:
        t = self.loop_thread
        if t is not None and not t.is_alive():
            raise AssertionError(f"the loop thread ended: {t.error!r}") from t.error
        return True

    def __repr__(self) -> str:
        paused = sorted(name for name, ev in self.paused.items() if ev.is_set())
        return f"<Sampler max_out={self.max_out} max_in={self.max_in} paused={paused}>"

    def was_paused(self, name: str) -> bool:
        return self._event(self.paused, name).is_set()


class LoopThread:
    """``base.dispatch()`` on a thread; :meth:`stop` breaks the loop and re-raises what it raised."""

    def __init__(self, base: EventBase) -> None:
        self.base = base
        self.thread = _Thread(base.dispatch)

    def stop(self) -> None:
        self.base.loopbreak()
        self.thread.result()


class _PeakProxy(le_proxy.Proxy):
    """The sample's proxy, telling ``on_add`` each destination's length as its readcb fills it.

    Data enters an output only in readcb, so these are the outputs' peaks (the bufferevents'
    own write callbacks, deferred, send nothing before readcb returns).
    """

    on_add: Callable[[Bufferevent, int], None]
    on_read_done: Callable[[Bufferevent], None]

    def readcb(self, bev: Bufferevent, partner: Bufferevent) -> None:
        self.on_add(partner, len(partner.output) + len(bev.input))
        super().readcb(bev, partner)
        self.on_read_done(bev)


class ProxyRunner:
    """A :class:`le_proxy.Proxy` in front of ``upstream`` on a loop thread, with a sampler."""

    def __init__(self, upstream: Any, **kwargs: Any) -> None:
        self.base = EventBase()
        self.pairs: list[tuple[Bufferevent, Bufferevent]] = []
        self.names: dict[int, str] = {}
        self.proxy = _PeakProxy(
            self.base, ("127.0.0.1", 0), upstream, on_connection=self._on_connection, **kwargs
        )
        self.proxy.on_add = lambda bev, length: self.sampler.note_add(self.names[id(bev)], length)
        self.proxy.on_read_done = lambda bev: self.sampler.note_paused(self.names[id(bev)], bev)
        self.sampler = Sampler(self.base, self._bevs, self.proxy.max_output)
        self.loop = LoopThread(self.base)
        self.sampler.loop_thread = self.loop.thread

    def _on_connection(self, client: Bufferevent, server: Bufferevent) -> None:
        self.pairs.append((client, server))
        self.names[id(client)] = "client"
        self.names[id(server)] = "server"

    def _bevs(self) -> Iterable[tuple[str, Bufferevent]]:
        for client, server in self.pairs:
            yield "client", client
            yield "server", server

    def peak_output(self) -> int:
        return max(self.sampler.max_out.values(), default=0)

    def idle(self) -> bool:
        return not self.proxy.bufferevents

    def __enter__(self) -> ProxyRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.stop()
        self.sampler.ev.free()
        self.proxy.close()
        self.base.free()


def _echo_server(listener: socket.socket, nconn: int = 1) -> _Thread:
    """Accept ``nconn`` connections and echo each until EOF, each on its own thread."""

    def echo(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TIMEOUT)
            while True:
                chunk = conn.recv(1 << 18)
                if not chunk:
                    return
                conn.sendall(chunk)

    def serve() -> None:
        workers = []
        for _ in range(nconn):
            conn, _addr = listener.accept()
            workers.append(_Thread(functools.partial(echo, conn)))
        for w in workers:
            w.result()

    return _Thread(serve)


def _refused_address() -> tuple[socket.socket, tuple[str, int]]:
    """A bound socket that does not listen: connecting to its address is refused. Keep it open."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()


# ---------------------------------------------------------------------------------- le_proxy
def test_proxy_echo_8mib_checksum() -> None:
    """8 MiB through the proxy to an echo server and back, intact; the buffers stay bounded."""
    data = _payload(8 * MIB)
    with _listening_socket() as upstream, ProxyRunner(upstream.getsockname()) as run:
        server = _echo_server(upstream)
        with socket.create_connection(run.proxy.address, timeout=TIMEOUT) as client:
            sender = _Thread(lambda: client.sendall(data))
            echoed = _recv_exactly(client, len(data))
            sender.result()
        assert len(echoed) == len(data)
        assert _digest(echoed) == _digest(data)
        server.result()
        assert _wait_until(run.idle), run.proxy.bufferevents
        assert run.peak_output() < run.proxy.max_output + READ_MAX
        assert max(run.sampler.max_in.values()) <= READ_MAX


@pytest.mark.parametrize("max_output", [le_proxy.MAX_OUTPUT, 64 * 1024])
def test_proxy_slow_reader_memory_bounded(max_output: int) -> None:
    """A server that does not read: the proxy stops reading the client, holds at most
    max_output + one read per output, and once the server reads, nothing was lost."""
    data = _payload(8 * MIB, seed=2)
    go = threading.Event()

    with (
        _listening_socket(rcvbuf=64 * 1024) as upstream,
        ProxyRunner(upstream.getsockname(), max_output=max_output) as run,
    ):

        def slow_sink() -> bytes:
            conn, _ = upstream.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                assert go.wait(TIMEOUT)
                return _recv_to_eof(conn)  # EOF: the proxy closed it after passing everything on

        sink = _Thread(slow_sink)
        client = socket.create_connection(run.proxy.address, timeout=TIMEOUT)

        def send() -> bytes:
            client.sendall(data)
            client.shutdown(socket.SHUT_WR)
            return client.recv(10)  # the proxy closes the client side too

        sender = _Thread(send)
        # the server side's output filled up to max_output: the proxy stopped reading the client
        assert run.sampler.wait_reached("server"), run.sampler
        assert _wait_until(lambda: run.sampler.was_paused("client")), run.sampler
        # whatever the client keeps sending, nothing more piles up in the proxy
        time.sleep(0.3)
        held = run.sampler.max_out["server"]
        assert max_output <= held < max_output + READ_MAX, run.sampler
        go.set()
        received = sink.result()
        assert sender.result() == b""
        client.close()
        assert len(received) == len(data)
        assert _digest(received) == _digest(data)
        assert _wait_until(run.idle), run.proxy.bufferevents
        assert run.peak_output() < max_output + READ_MAX, run.sampler
        assert max(run.sampler.max_in.values()) <= READ_MAX, run.sampler


def test_proxy_client_eof_propagates() -> None:
    """The client sends, then half-closes: the server gets everything then EOF, and the proxy
    closes the client too (le-proxy does not keep half-open connections)."""
    data = _payload(300_000, seed=3)
    with _listening_socket() as upstream, ProxyRunner(upstream.getsockname()) as run:
        with socket.create_connection(run.proxy.address, timeout=TIMEOUT) as client:
            conn, _ = upstream.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                client.sendall(data)
                client.shutdown(socket.SHUT_WR)
                assert _recv_to_eof(conn) == data
                assert client.recv(10) == b""
        assert _wait_until(run.idle)


def test_proxy_server_closes_with_data_pending() -> None:
    """The server sends 8 MiB and closes at once while the client is not reading yet: the proxy
    keeps the client open until all of it went out (close_on_finished_writecb), then closes."""
    data = _payload(8 * MIB, seed=4)
    with _listening_socket() as upstream, ProxyRunner(upstream.getsockname(), max_output=128 * 1024) as run:
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # so the proxy fills up
            client.settimeout(TIMEOUT)
            client.connect(run.proxy.address)
            conn, _ = upstream.accept()
            conn.settimeout(TIMEOUT)

            def send_and_close() -> None:
                with conn:
                    conn.sendall(data)

            writer = _Thread(send_and_close)
            assert run.sampler.wait_reached("client")  # it piled up in front of the client
            received = _recv_to_eof(client)
            writer.result()
        assert len(received) == len(data)
        assert _digest(received) == _digest(data)
        assert run.sampler.was_paused("server")
        assert _wait_until(run.idle)


@pytest.mark.parametrize("client_resets", [False, True])
def test_proxy_server_eof_with_client_output_pending(client_resets: bool) -> None:
    """The server sends 6 MiB and closes while the client does not read: the proxy frees the
    server side, keeps the client side until its output went out, then closes it; if the client
    resets instead, the proxy frees that side on the error. (A max_output above the data size
    keeps the server side reading, so the proxy sees its EOF with the client's output full; the
    kernel's buffers take at most about 4 MiB here.)"""
    data = _payload(6 * MIB, seed=13)
    with _listening_socket() as upstream, ProxyRunner(upstream.getsockname(), max_output=16 * MIB) as run:
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            client.settimeout(TIMEOUT)
            client.connect(run.proxy.address)
            conn, _ = upstream.accept()
            with conn:
                conn.sendall(data)
            assert _wait_until(lambda: bool(run.pairs) and run.pairs[0][1].freed)  # the server side is gone
            client_bev = run.pairs[0][0]
            assert not client_bev.freed
            assert _wait_until(lambda: len(client_bev.output) > 0 and run.sampler.max_out["client"] > 0)
            if client_resets:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # linger 0: a reset
            else:
                assert _recv_to_eof(client) == data
        assert _wait_until(run.idle), run.proxy.bufferevents


def test_proxy_close_drops_live_connections() -> None:
    """Proxy.close() frees the bufferevents of live connections: the peers see their ends close."""
    with _listening_socket() as upstream, EventBase() as base:
        proxy = le_proxy.Proxy(base, ("127.0.0.1", 0), upstream.getsockname())
        with socket.create_connection(proxy.address, timeout=TIMEOUT) as client:
            assert _wait_until(lambda: base.loop(0x02) is not None and len(proxy.bufferevents) == 2, 10)
            conn, _ = upstream.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                proxy.close()
                proxy.close()  # idempotent
                assert not proxy.bufferevents
                assert client.recv(10) == b""
                assert conn.recv(10) == b""


def test_proxy_server_down_closes_client(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens at CONNECT_ADDR: the client's connection is closed, and the error logged."""
    caplog.set_level(logging.INFO, logger="evbuffer.samples")
    hold, address = _refused_address()
    with hold, ProxyRunner(address) as run:
        with socket.create_connection(run.proxy.address, timeout=TIMEOUT) as client:
            client.sendall(b"hello?")
            try:
                assert client.recv(10) == b""
            except ConnectionResetError:
                pass  # unread data at close: the kernel may answer with a reset
        assert _wait_until(run.idle)
    assert "connection error: Connection refused" in caplog.text


def test_proxy_many_clients() -> None:
    """Twenty clients at once, each echoed its own data."""
    n = 20
    with _listening_socket() as upstream, ProxyRunner(upstream.getsockname()) as run:
        server = _echo_server(upstream, n)

        def one(i: int) -> bool:
            data = _payload(64 * 1024 + i, seed=100 + i)
            with socket.create_connection(run.proxy.address, timeout=TIMEOUT) as c:
                sender = _Thread(lambda: c.sendall(data))
                ok = _recv_exactly(c, len(data)) == data
                sender.result()
                return ok

        clients = [_Thread(functools.partial(one, i)) for i in range(n)]
        assert all(t.result() for t in clients)
        server.result()
        assert _wait_until(run.idle)


def test_proxy_out_of_descriptors(caplog: pytest.LogCaptureFixture) -> None:
    """No descriptor left for the server-side socket: the client is closed and the error logged."""
    caplog.set_level(logging.INFO, logger="evbuffer.samples")
    with _listening_socket() as upstream, EventBase() as base:
        proxy = le_proxy.Proxy(base, ("127.0.0.1", 0), upstream.getsockname())
        client = socket.create_connection(proxy.address, timeout=TIMEOUT)
        client.setblocking(False)

        def is_open(fd: int) -> bool:
            try:
                os.fstat(fd)
            except OSError:
                return False
            return True

        import evbuffer.bev_socket  # noqa: F401 - imported now: under the low limit no file can be opened

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        free = [fd for fd in range(soft) if not is_open(fd)][:2]
        # room for exactly one more descriptor: the accepted socket gets it, the proxy's own
        # socket for the server cannot be made
        resource.setrlimit(resource.RLIMIT_NOFILE, (free[1], hard))
        got: bytes | None = None
        try:
            for _ in range(500):
                base.loop(0x02)  # EVLOOP_NONBLOCK
                try:
                    got = client.recv(10)
                    break
                except BlockingIOError:
                    time.sleep(0.01)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert got == b""
        assert not proxy.bufferevents
        proxy.close()
        client.close()
    assert "cannot connect to" in caplog.text


def test_proxy_rejects_tiny_max_output() -> None:
    with EventBase() as base, pytest.raises(ValueError, match="max_output"):
        le_proxy.Proxy(base, ("127.0.0.1", 0), ("127.0.0.1", 1), max_output=1)


def test_parse_address() -> None:
    assert le_proxy.parse_address("8888") == ("127.0.0.1", 8888)
    assert le_proxy.parse_address("127.0.0.1:80") == ("127.0.0.1", 80)
    assert le_proxy.parse_address("[::1]:80") == ("::1", 80, 0, 0)
    for bad in ("0", "65536", "localhost:80", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            le_proxy.parse_address(bad)
    assert format_sockaddr(("::1", 80, 0, 0)) == "[::1]:80"


def _start_le_proxy(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evbuffer.samples.le_proxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+), relaying to ", line)
    if not m:
        proc.kill()
        pytest.fail(f"no listening line: {line!r} {proc.communicate()}")
    return proc, int(m.group(1))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_le_proxy_process(signum: int) -> None:
    """``python -m evbuffer.samples.le_proxy``: relays 2 MiB to an echo server; a signal ends it with 0."""
    data = _payload(2 * MIB, seed=5)
    with _listening_socket() as upstream:
        server = _echo_server(upstream)
        host, port = upstream.getsockname()
        proc, proxy_port = _start_le_proxy("127.0.0.1:0", f"{host}:{port}", "--max-output", "100000")
        try:
            with socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT) as client:
                sender = _Thread(lambda: client.sendall(data))
                assert _recv_exactly(client, len(data)) == data
                sender.result()
            server.result()
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err


def test_le_proxy_process_server_down() -> None:
    """The process logs the refused connection on stderr and keeps serving."""
    hold, (host, port) = _refused_address()
    with hold:
        proc, proxy_port = _start_le_proxy("127.0.0.1:0", f"{host}:{port}")
        try:
            for _ in range(2):
                with socket.create_connection(("127.0.0.1", proxy_port), timeout=TIMEOUT) as client:
                    assert client.recv(10) == b""
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0
    assert err.count("le-proxy: connection error: Connection refused") == 2


def test_le_proxy_main_in_process() -> None:
    """main() in this process: SIGINT from another thread ends it with 0."""
    with _listening_socket() as upstream:
        server = _echo_server(upstream)
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        host, up_port = upstream.getsockname()

        def drive() -> bytes:
            client = None
            for _ in range(1000):  # until main() listens
                try:
                    client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.01)
            assert client is not None
            with client:
                client.sendall(b"in-process")
                got = _recv_exactly(client, 10)
            os.kill(os.getpid(), signal.SIGINT)
            return got

        driver = _Thread(drive)
        assert le_proxy.main([str(port), f"{host}:{up_port}"]) == 0
        assert driver.result() == b"in-process"
        server.result()


def test_le_proxy_main_errors() -> None:
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        assert le_proxy.main([f"127.0.0.1:{port}", "127.0.0.1:1"]) == 1  # address in use
    assert le_proxy.main(["127.0.0.1:0", "127.0.0.1:1", "--method", "no-such-backend"]) == 1
    for argv in (
        ["127.0.0.1:0"],
        ["nowhere:1", "127.0.0.1:1"],
        ["127.0.0.1:0", "127.0.0.1:1", "--max-output", "1"],
    ):
        with pytest.raises(SystemExit) as info:
            le_proxy.main(argv)
        assert info.value.code == 2


# ---------------------------------------------------------------------------------- becat
def _becat(
    *args: str, stdin: Any = subprocess.PIPE, stdout: Any = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """``python -m evbuffer.samples.becat ARGS``, its stdin and stdout piped unless given; stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "evbuffer.samples.becat", *args],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes], stdin: bytes | None = None) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(stdin, timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_becat_connect_pipes() -> None:
    """stdin (3 MiB) goes to the peer, followed by EOF (half-close); the peer's answer (3 MiB)
    comes out on stdout, and the peer's close ends becat with 0."""
    up, down = _payload(3 * MIB, seed=6), _payload(3 * MIB, seed=7)
    with _listening_socket() as server:
        proc = _becat("-v", "127.0.0.1", str(server.getsockname()[1]))
        feeder = _Thread(lambda: proc.communicate(up, timeout=TIMEOUT))
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            received = _recv_to_eof(conn)  # EOF: becat shut its side down after stdin's EOF
            conn.sendall(down)  # the half-open connection still carries the answer
        out, err = feeder.result()
    assert proc.returncode == 0, err
    assert _digest(received) == _digest(up)
    assert len(out) == len(down) and _digest(out) == _digest(down)
    assert b"connected to 127.0.0.1 port" in err


def test_becat_listen_mode() -> None:
    """``-l``: takes one client; stdin goes to it, what it sends comes out on stdout."""
    proc = _becat("-l", "-v", "127.0.0.1", "0")
    try:
        assert proc.stdin is not None and proc.stderr is not None
        proc.stdin.write(b"from becat")
        proc.stdin.close()
        proc.stdin = None  # communicate() must not flush it
        line = proc.stderr.readline().decode()
        m = re.match(r"becat: listening on 127\.0\.0\.1:(\d+)", line)
        assert m, line
        with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=TIMEOUT) as client:
            client.sendall(b"from the client")
            assert _recv_to_eof(client) == b"from becat"
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == b"from the client"
    assert b"connection from 127.0.0.1:" in err


def test_becat_connection_refused() -> None:
    hold, (host, port) = _refused_address()
    with hold:
        proc = _becat(host, str(port))
        out, err = _finish(proc, b"unsent")
    assert proc.returncode == 1
    assert b"connection: Connection refused" in err


def test_becat_unknown_host() -> None:
    proc = _becat("no-such-host.invalid", "80")
    out, err = _finish(proc, b"")
    assert proc.returncode == 1
    assert b"cannot resolve 'no-such-host.invalid'" in err


def test_becat_regular_files(tmp_path: Any) -> None:
    """stdin and stdout regular files (epoll cannot watch them): stdin is sent with sendfile
    from its current offset, stdout is written directly."""
    content = _payload(2 * MIB, seed=8)
    answer = _payload(MIB, seed=9)
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(content)
    with _listening_socket() as server, open(src, "rb") as fin, open(dst, "wb") as fout:
        fin.seek(1000)  # like `(read header; becat host port) < file`: the rest of the file goes
        proc = _becat("127.0.0.1", str(server.getsockname()[1]), stdin=fin, stdout=fout)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            received = _recv_to_eof(conn)
            conn.sendall(answer)
        out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert received == content[1000:]
    assert dst.read_bytes() == answer


def test_becat_stdin_devnull() -> None:
    """/dev/null on stdin (epoll refuses it too) is empty input: EOF at once."""
    with _listening_socket() as server:
        proc = _becat("127.0.0.1", str(server.getsockname()[1]), stdin=subprocess.DEVNULL)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            assert _recv_to_eof(conn) == b""
            conn.sendall(b"just listening")
        out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert out == b"just listening"


def test_becat_tty_stdin() -> None:
    """stdin a terminal (a pty): lines typed go out; the peer's close ends becat with 0, and the
    terminal, whose open file becat shares, is left blocking as it was."""
    master, slave = os.openpty()
    try:
        with _listening_socket() as server:
            proc = _becat("127.0.0.1", str(server.getsockname()[1]), stdin=slave)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                os.write(master, b"typed line\n")
                assert _recv_exactly(conn, 11) == b"typed line\n"
                conn.sendall(b"answer")
            out, err = _finish(proc)
        assert proc.returncode == 0, err
        assert out == b"answer"
        assert os.get_blocking(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_becat_stdout_closed() -> None:
    """Nobody reads stdout any more (EPIPE): exit 1 with a message."""
    with _listening_socket() as server:
        proc = _becat("127.0.0.1", str(server.getsockname()[1]))
        assert proc.stdout is not None
        proc.stdout.close()
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"nobody hears this")
            _, err = _finish(proc)
    assert proc.returncode == 1
    assert b"writing stdout: Broken pipe" in err


def test_becat_sigint() -> None:
    """Ctrl-C while listening: exit status 130."""
    proc = _becat("-l", "-v", "127.0.0.1", "0")
    try:
        assert proc.stderr is not None
        assert b"listening on" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130


def test_becat_main_errors() -> None:
    with _listening_socket() as busy:
        assert becat.main(["-l", "127.0.0.1", str(busy.getsockname()[1])]) == 1  # address in use
    assert becat.main(["--method", "no-such-backend", "127.0.0.1", "1"]) == 1
    assert becat.main(["-l", "no-such-host.invalid", "0"]) == 1
    for argv in (["127.0.0.1"], ["127.0.0.1", "70000"], ["--max-output", "1", "127.0.0.1", "1"]):
        with pytest.raises(SystemExit) as info:
            becat.main(argv)
        assert info.value.code == 2
    with EventBase() as base, pytest.raises(ValueError, match="max_output"):
        becat.Netcat(base, max_output=1)


class _PeakNetcat(becat.Netcat):
    """The sample's Netcat, telling the sampler each output's length as a read callback fills it."""

    sampler: Sampler

    def stdin_readcb(self, bev: Bufferevent, arg: Any) -> None:
        assert self.net is not None
        self.sampler.note_add("net", len(self.net.output) + len(bev.input))
        super().stdin_readcb(bev, arg)
        self.sampler.note_paused("stdin", bev)

    def net_readcb(self, bev: Bufferevent, arg: Any) -> None:
        self.sampler.note_add("stdout", len(self.stdout.output) + len(bev.input))
        super().net_readcb(bev, arg)
        self.sampler.note_paused("net", bev)


class NetcatRunner:
    """An in-process :class:`becat.Netcat` over two pipes, on a loop thread, with a sampler.

    ``stdin_w`` is stdin's writing end and ``stdout_r`` stdout's reading end (both blocking).
    """

    def __init__(self, max_output: int = becat.MAX_OUTPUT, stdin_fd: int | None = None) -> None:
        self.base = EventBase()
        self.stdin_r, self.stdin_w = os.pipe()
        self.stdout_r, self.stdout_w = os.pipe()
        self.nc = _PeakNetcat(
            self.base,
            stdin_fd=self.stdin_r if stdin_fd is None else stdin_fd,
            stdout_fd=self.stdout_w,
            max_output=max_output,
        )
        self.sampler = self.nc.sampler = Sampler(self.base, self._bevs, max_output)
        self.session: _Thread | None = None

    def _bevs(self) -> Iterable[tuple[str, Bufferevent]]:
        for name in ("net", "stdin", "stdout"):
            bev = getattr(self.nc, name)
            if bev is not None:
                yield name, bev

    def run(self) -> None:
        self.session = self.sampler.loop_thread = _Thread(self.nc.run)

    def status(self) -> int:
        assert self.session is not None
        return int(self.session.result())

    def close_stdin(self) -> None:
        if self.stdin_w >= 0:
            os.close(self.stdin_w)
            self.stdin_w = -1

    def __enter__(self) -> NetcatRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.session is not None and self.session.is_alive():
            self.base.loopbreak()
            self.session.join(TIMEOUT)
        self.sampler.ev.free()
        self.nc.close()
        self.base.free()
        self.close_stdin()
        for fd in (self.stdin_r, self.stdout_r, self.stdout_w):
            os.close(fd)


def test_netcat_flow_control_both_ways() -> None:
    """8 MiB each way with a slow peer and a slow stdout reader: becat stops reading the source
    while an output is full, holds at most max_output + one read per output, loses nothing."""
    max_output = 128 * 1024
    up, down = _payload(8 * MIB, seed=10), _payload(8 * MIB, seed=11)
    with _listening_socket(rcvbuf=64 * 1024) as server, NetcatRunner(max_output) as run:
        run.nc.connect("127.0.0.1", server.getsockname()[1])
        run.run()
        conn, _ = server.accept()
        conn.settimeout(TIMEOUT)

        def feed_stdin() -> None:
            view = memoryview(up)
            while view:
                view = view[os.write(run.stdin_w, view) :]
            run.close_stdin()

        def peer_reads() -> bytes:
            assert run.sampler.wait_reached("net")  # becat's socket output is full
            return _recv_to_eof(conn)

        def stdout_reads() -> bytes:
            assert run.sampler.wait_reached("stdout")  # becat's stdout output is full
            out = bytearray()
            while len(out) < len(down):
                chunk = os.read(run.stdout_r, 1 << 18)
                assert chunk
                out += chunk
            return bytes(out)

        threads = [_Thread(feed_stdin), _Thread(lambda: conn.sendall(down))]
        reader, out_reader = _Thread(peer_reads), _Thread(stdout_reads)
        for t in threads:
            t.result()
        received = reader.result()
        conn.close()  # everything exchanged: the peer hangs up, becat ends
        stdout_data = out_reader.result()
        assert run.status() == 0
    assert _digest(received) == _digest(up)
    assert _digest(stdout_data) == _digest(down)
    assert run.sampler.was_paused("stdin") and run.sampler.was_paused("net")
    for name in ("net", "stdout"):
        assert max_output <= run.sampler.max_out[name] < max_output + READ_MAX, run.sampler.max_out
    assert max(run.sampler.max_in.values()) <= READ_MAX


def test_netcat_listen_in_process() -> None:
    with NetcatRunner() as run:
        listener = run.nc.listen(("127.0.0.1", 0))
        run.run()
        os.write(run.stdin_w, b"hi there")
        run.close_stdin()
        with socket.create_connection(listener.address, timeout=TIMEOUT) as client:
            assert _recv_to_eof(client) == b"hi there"
            client.sendall(b"hello back")
        assert run.status() == 0
        assert os.read(run.stdout_r, 100) == b"hello back"


def test_netcat_stdin_read_error() -> None:
    """stdin is a socket that gets reset: "reading stdin" error, status 1."""
    with _listening_socket() as server, _listening_socket() as side:
        feeder = socket.create_connection(side.getsockname(), timeout=TIMEOUT)
        stdin_sock, _ = side.accept()
        with stdin_sock, NetcatRunner(stdin_fd=stdin_sock.fileno()) as run:
            run.nc.connect("127.0.0.1", server.getsockname()[1])
            run.run()
            conn, _ = server.accept()
            with conn:
                feeder.sendall(b"some input")
                assert _recv_exactly(conn, 10) == b"some input"
                feeder.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                feeder.close()  # linger 0: a reset
                assert run.status() == 1


def test_netcat_peer_eof_with_stdout_pending() -> None:
    """The peer sends 2 MiB and closes while stdout is not read: becat writes all of it out
    before it ends with 0."""
    data = _payload(2 * MIB, seed=12)
    with _listening_socket() as server, NetcatRunner(64 * 1024) as run:
        run.nc.connect("127.0.0.1", server.getsockname()[1])
        run.run()
        conn, _ = server.accept()
        with conn:
            conn.sendall(data[: MIB // 2])
            assert run.sampler.wait_reached("stdout")

            def send_rest() -> None:
                conn.sendall(data[MIB // 2 :])
                conn.shutdown(socket.SHUT_WR)

            writer = _Thread(send_rest)
            out = bytearray()
            while len(out) < len(data):  # slowly: the EOF arrives while stdout still has data
                chunk = os.read(run.stdout_r, 16 * 1024)
                assert chunk
                out += chunk
                time.sleep(0.001)
            writer.result()
            run.close_stdin()
            assert run.status() == 0
    assert bytes(out) == data


def test_netcat_empty_file_stdin(tmp_path: Any) -> None:
    """stdin is an empty regular file: EOF at once; finish() keeps the first status."""
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with _listening_socket() as server, open(empty, "rb") as fin, NetcatRunner(stdin_fd=fin.fileno()) as run:
        run.nc.connect("127.0.0.1", server.getsockname()[1])
        run.run()
        conn, _ = server.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            assert _recv_to_eof(conn) == b""
            conn.sendall(b"ok")
        assert run.status() == 0
        assert os.read(run.stdout_r, 10) == b"ok"
        run.nc.finish(1)
        assert run.nc.status == 0
