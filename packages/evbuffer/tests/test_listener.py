"""evbuffer.Listener (evconnlistener): accepting, options, ownership, errors, EMFILE without spinning.

Real sockets only: TCP on 127.0.0.1 (and ::1 where the machine has it), AF_UNIX paths in tmp
dirs, real clients.  The EMFILE tests lower RLIMIT_NOFILE in the forked test process.
"""

from __future__ import annotations

import errno
import gc
import itertools
import logging
import os
import select
import socket
import threading
import time

import pytest

import evcore
from evbuffer.errors import EvbufferError
from evbuffer.listener import (
    LEV_OPT,
    LEV_OPT_CLOSE_ON_FREE,
    PAUSE_MAX,
    Listener,
)
from evbuffer.testing.bev_suite_support import run_passes as run_for
from evbuffer.testing.bev_suite_support import run_until
from evcore import EVLOOP_NONBLOCK, EVLOOP_ONCE, EventBase

resource = pytest.importorskip("resource", reason="RLIMIT_NOFILE needs POSIX")

LOCAL = ("127.0.0.1", 0)


@pytest.fixture(params=evcore.supported_methods())
def base(request):
    b = EventBase(method=request.param)
    yield b
    b.free()


@pytest.fixture
def any_base():
    """One base on the default backend, for tests about the listener rather than the loop."""
    b = EventBase()
    yield b
    b.free()


class Acceptor:
    """An accept callback that keeps what it gets."""

    def __init__(self):
        self.calls = []

    def __call__(self, listener, sock, address, arg):
        self.calls.append((listener, sock, address, arg))

    @property
    def socks(self):
        return [c[1] for c in self.calls]

    def close(self):
        for s in self.socks:
            s.close()


def fd_is_open(fd):
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


def open_fds():
    return sorted(int(n) for n in os.listdir("/proc/self/fd"))


class FdsExhausted:
    """Lower RLIMIT_NOFILE and fill every slot below it, so the next new fd fails with EMFILE."""

    def __init__(self, limit=None):
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = limit if limit is not None else max(open_fds()) + 8
        self.fillers = []

    def __enter__(self):
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.limit, self.hard))
        for _ in range(self.limit + 1):
            try:
                self.fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        with pytest.raises(OSError) as info:
            socket.socket()
        assert info.value.errno == errno.EMFILE
        return self

    def restore(self):
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.soft, self.hard))
        for fd in self.fillers:
            os.close(fd)
        self.fillers = []

    def __exit__(self, *exc):
        self.restore()


pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="POSIX only")


# ----------------------------------------------------------------------------------- basics
def test_accepts_and_passes_the_callback_its_arguments(base):
    acc = Acceptor()
    lev = Listener(base, acc, "the-arg", address=LOCAL)
    client = socket.create_connection(lev.address)
    run_until(base, lambda: acc.calls)
    listener, sock, address, arg = acc.calls[0]
    assert listener is lev and arg == "the-arg"
    assert isinstance(sock, socket.socket)
    assert address == client.getsockname()
    assert sock.getpeername() == client.getsockname()
    assert sock.getblocking() is False
    with pytest.raises(BlockingIOError):
        sock.recv(1)  # non-blocking at the OS level too
    client.sendall(b"ping")
    run_until(base, lambda: select_readable(sock))
    assert sock.recv(10) == b"ping"
    lev.free()
    acc.close()
    client.close()
    assert base.num_events() == 0


def select_readable(sock):
    return bool(select.select([sock], [], [], 0)[0])


def test_accepts_many_clients_in_bounded_batches(base):
    acc = Acceptor()
    lev = Listener(base, acc, address=LOCAL)
    lev.accept_batch = 4
    clients = [socket.create_connection(lev.address) for _ in range(10)]
    time.sleep(0.05)
    base.loop(EVLOOP_ONCE)
    assert len(acc.calls) == 4  # one batch per readiness, the rest on the next passes
    run_until(base, lambda: len(acc.calls) == 10)
    assert sorted(c[2] for c in acc.calls) == sorted(c.getsockname() for c in clients)
    lev.free()
    acc.close()
    for c in clients:
        c.close()


def test_port_zero_address_fileno_base_repr_context_manager(any_base):
    with Listener(any_base, print, flags=LEV_OPT.REUSEABLE, address=("127.0.0.1", 0)) as lev:
        host, port = lev.address
        assert host == "127.0.0.1" and port > 0
        assert lev.get_base() is any_base
        fd = lev.fileno()
        assert fd >= 0 and fd_is_open(fd)
        with socket.socket(fileno=os.dup(fd)) as s:
            assert s.getsockname() == lev.address
        r = repr(lev)
        assert f"fd={fd}" in r and "enabled" in r and str(port) in r and "owned" in r
        lev.disable()
        assert "disabled" in repr(lev)
        lev.set_cb(None)
        assert "no-callback" in repr(lev)
    assert lev.fileno() == -1 and not fd_is_open(fd)
    assert "freed" in repr(lev)
    assert not lev.enabled
    lev.free()  # idempotent
    lev.disable()  # no-op once freed


def test_levopt_values_match_libevent():
    assert [int(f) for f in LEV_OPT] == [1 << i for i in range(9)]
    assert LEV_OPT.CLOSE_ON_FREE == LEV_OPT_CLOSE_ON_FREE == 2
    assert LEV_OPT.DISABLED == 32 and LEV_OPT.DEFERRED_ACCEPT == 64 and LEV_OPT.REUSEABLE_PORT == 128


def test_backlog_default_and_explicit(any_base):
    with Listener(any_base, print, address=LOCAL) as lev:
        assert lev.fileno() >= 0
    with Listener(any_base, print, backlog=5, address=LOCAL) as lev:
        client = socket.create_connection(lev.address)
        client.close()
    with pytest.raises(ValueError, match="backlog=0"):
        Listener(any_base, print, backlog=0, address=LOCAL)


# ------------------------------------------------------------------------------ ownership
def test_sock_object_not_owned_without_close_on_free(any_base):
    s = socket.socket()
    s.bind(LOCAL)
    acc = Acceptor()
    lev = Listener(any_base, acc, sock=s)
    assert lev.address == s.getsockname() and lev.fileno() == s.fileno()
    assert s.getblocking() is False  # the listener needs it non-blocking
    client = socket.create_connection(lev.address)
    run_until(any_base, lambda: acc.calls)
    lev.free()
    assert s.fileno() >= 0 and s.getsockname() == lev.address
    s.close()
    acc.close()
    client.close()


def test_sock_object_owned_with_close_on_free(any_base):
    s = socket.create_server(LOCAL)
    lev = Listener(any_base, print, flags=LEV_OPT.CLOSE_ON_FREE, sock=s)
    fd = s.fileno()
    lev.free()
    assert s.fileno() == -1 and not fd_is_open(fd)


def test_int_fd_not_owned_survives_free_and_garbage_collection(any_base):
    s = socket.create_server(LOCAL)
    fd = s.fileno()
    acc = Acceptor()
    lev = Listener(any_base, acc, sock=fd)
    assert lev.fileno() == fd and lev.address == s.getsockname()
    client = socket.create_connection(lev.address)
    run_until(any_base, lambda: acc.calls)
    lev.free()
    assert fd_is_open(fd)
    lev2 = Listener(any_base, acc, sock=fd, flags=LEV_OPT.DISABLED)
    del lev2  # dropped without free(): the caller's fd must stay open
    gc.collect()
    assert fd_is_open(fd)
    assert s.getsockname()[1] == lev.address[1]
    s.close()
    acc.close()
    client.close()


def test_int_fd_owned_with_close_on_free(any_base):
    s = socket.create_server(LOCAL)
    fd = s.detach()
    lev = Listener(any_base, print, flags=LEV_OPT.CLOSE_ON_FREE, sock=fd)
    assert fd_is_open(fd)
    lev.free()
    assert not fd_is_open(fd)


def test_already_listening_socket_with_backlog_zero(any_base):
    s = socket.create_server(LOCAL, backlog=3)
    acc = Acceptor()
    with Listener(any_base, acc, backlog=0, sock=s):
        client = socket.create_connection(s.getsockname())
        run_until(any_base, lambda: acc.calls)
    s.close()
    acc.close()
    client.close()


def test_constructor_errors_leave_nothing_behind(any_base):
    before = open_fds()
    with pytest.raises(ValueError):
        Listener(any_base, print)
    with pytest.raises(ValueError):
        Listener(any_base, print, address=LOCAL, sock=3)
    with pytest.raises(TypeError):
        Listener(any_base, "not callable", address=LOCAL)
    with pytest.raises(TypeError):
        Listener(any_base, print, sock=1.5)
    with pytest.raises(TypeError):
        Listener(any_base, print, address=12)
    with pytest.raises(ValueError):
        Listener(any_base, print, address=("127.0.0.1", 0, 1))
    taken = socket.create_server(LOCAL)
    with pytest.raises(OSError) as info:
        Listener(any_base, print, address=taken.getsockname())
    assert info.value.errno == errno.EADDRINUSE
    closed = socket.socket()
    closed.close()
    with pytest.raises(ValueError):
        Listener(any_base, print, sock=closed)
    # a socket that cannot listen (UDP) raises; the caller keeps it, owned or not
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(OSError):
        Listener(any_base, print, flags=LEV_OPT.CLOSE_ON_FREE, sock=udp)
    assert udp.fileno() >= 0
    with pytest.raises(OSError):
        Listener(any_base, print, flags=LEV_OPT.CLOSE_ON_FREE, sock=udp.fileno())
    assert fd_is_open(udp.fileno())
    with pytest.raises(OSError):
        Listener(any_base, print, sock=udp.fileno())
    assert fd_is_open(udp.fileno())
    udp.close()
    taken.close()
    assert open_fds() == before
    assert any_base.num_events() == 0


# ---------------------------------------------------------------------------- enable/disable
def test_disabled_flag_then_enable(base):
    acc = Acceptor()
    lev = Listener(base, acc, flags=LEV_OPT.DISABLED, address=LOCAL)
    assert not lev.enabled
    client = socket.create_connection(lev.address)
    assert run_for(base, 0.1) >= 1
    assert acc.calls == []
    lev.enable()
    assert lev.enabled
    run_until(base, lambda: acc.calls)
    assert acc.calls[0][2] == client.getsockname()
    lev.free()
    acc.close()
    client.close()


def test_disable_keeps_connections_in_the_backlog_until_enable(base):
    acc = Acceptor()
    lev = Listener(base, acc, address=LOCAL)
    first = socket.create_connection(lev.address)
    run_until(base, lambda: len(acc.calls) == 1)
    lev.disable()
    assert base.loop(EVLOOP_NONBLOCK) == 1  # nothing pending: the listener left the loop
    second = socket.create_connection(lev.address)
    run_for(base, 0.1)
    assert len(acc.calls) == 1
    lev.enable()
    run_until(base, lambda: len(acc.calls) == 2)
    assert acc.calls[1][2] == second.getsockname()
    lev.free()
    acc.close()
    first.close()
    second.close()


def test_set_cb_replaces_callback_and_arg_and_none_disables(base):
    acc1, acc2 = Acceptor(), Acceptor()
    lev = Listener(base, None, "a", address=LOCAL)
    assert lev.callback is None and lev.arg == "a"
    c1 = socket.create_connection(lev.address)
    run_for(base, 0.05)
    lev.set_cb(acc1, "one")
    run_until(base, lambda: acc1.calls)
    assert acc1.calls[0][3] == "one" and acc1.calls[0][2] == c1.getsockname()
    lev.set_cb(acc2, "two")
    c2 = socket.create_connection(lev.address)
    run_until(base, lambda: acc2.calls)
    assert acc2.calls[0][3] == "two" and len(acc1.calls) == 1
    lev.set_cb(None)
    c3 = socket.create_connection(lev.address)
    run_for(base, 0.05)
    assert len(acc2.calls) == 1
    with pytest.raises(TypeError):
        lev.set_cb(42)
    with pytest.raises(TypeError):
        lev.set_error_cb(42)
    lev.free()
    for call in (lev.enable, lambda: lev.set_cb(print), lambda: lev.set_error_cb(print)):
        with pytest.raises(EvbufferError, match="freed listener"):
            call()
    acc1.close()
    acc2.close()
    for c in (c1, c2, c3):
        c.close()


def test_free_inside_the_callback(base):
    got = []

    def on_accept(listener, sock, address, arg):
        got.append(sock)
        listener.free()

    lev = Listener(base, on_accept, address=LOCAL)
    fd = lev.fileno()
    clients = [socket.create_connection(lev.address) for _ in range(3)]
    time.sleep(0.05)
    run_until(base, lambda: got)
    assert base.loop(EVLOOP_NONBLOCK) == 1
    assert len(got) == 1 and lev.fileno() == -1 and not fd_is_open(fd)
    for s in got + clients:
        s.close()


def test_disable_inside_the_callback_stops_the_batch(base):
    got = []

    def on_accept(listener, sock, address, arg):
        got.append(sock)
        listener.disable()

    lev = Listener(base, on_accept, address=LOCAL)
    clients = [socket.create_connection(lev.address) for _ in range(3)]
    time.sleep(0.05)
    run_until(base, lambda: got)
    run_for(base, 0.05)
    assert len(got) == 1
    lev.enable()
    run_until(base, lambda: len(got) == 2)
    lev.free()
    for s in got + clients:
        s.close()


def test_callback_exception_propagates_and_listener_keeps_working(any_base):
    seen = []

    def on_accept(listener, sock, address, arg):
        seen.append(sock)
        if len(seen) == 1:
            raise RuntimeError("boom")

    lev = Listener(any_base, on_accept, address=LOCAL)
    c1 = socket.create_connection(lev.address)
    with pytest.raises(RuntimeError, match="boom"):
        run_until(any_base, lambda: False, timeout=2)
    c2 = socket.create_connection(lev.address)
    run_until(any_base, lambda: len(seen) == 2)
    lev.free()
    for s in [*seen, c1, c2]:
        s.close()


def test_threadsafe_enable_and_disable_from_another_thread(any_base):
    acc = Acceptor()
    lev = Listener(any_base, acc, flags=LEV_OPT.THREADSAFE | LEV_OPT.DISABLED, address=LOCAL)
    client = socket.create_connection(lev.address)
    done = threading.Event()

    def other():
        time.sleep(0.05)
        lev.enable()
        done.wait(5)
        lev.disable()
        lev.enable()
        lev.disable()

    t = threading.Thread(target=other)
    t.start()
    run_until(any_base, lambda: acc.calls)
    done.set()
    t.join(5)
    assert not lev.enabled
    assert any_base.loop(EVLOOP_NONBLOCK) == 1
    lev.free()
    acc.close()
    client.close()


def test_threadsafe_racing_toggles_end_in_the_last_state(any_base):
    lev = Listener(any_base, print, flags=LEV_OPT.THREADSAFE, address=LOCAL)

    def toggle(n):
        for i in range(200):
            (lev.enable if (i + n) % 2 else lev.disable)()

    threads = [threading.Thread(target=toggle, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    lev.enable()
    assert any_base.num_events() == 1
    lev.disable()
    assert any_base.num_events() == 0
    lev.free()


# ------------------------------------------------------------------------------ options
def test_reuseable_sets_so_reuseaddr(any_base):
    with Listener(any_base, print, address=LOCAL) as plain:
        s = socket.socket(fileno=os.dup(plain.fileno()))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        s.close()
    with Listener(any_base, print, flags=LEV_OPT.REUSEABLE, address=LOCAL) as lev:
        s = socket.socket(fileno=os.dup(lev.fileno()))
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        s.close()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT on this OS")
def test_reuseable_port_lets_two_listeners_share_a_port(any_base):
    acc = Acceptor()
    one = Listener(any_base, acc, "one", flags=LEV_OPT.REUSEABLE_PORT, address=LOCAL)
    two = Listener(any_base, acc, "two", flags=LEV_OPT.REUSEABLE_PORT, address=one.address)
    assert two.address == one.address
    with pytest.raises(OSError) as info:
        Listener(any_base, acc, address=one.address)
    assert info.value.errno == errno.EADDRINUSE
    clients = [socket.create_connection(one.address) for _ in range(8)]
    run_until(any_base, lambda: len(acc.calls) == 8)
    assert {c[3] for c in acc.calls} <= {"one", "two"}
    one.free()
    two.free()
    acc.close()
    for c in clients:
        c.close()


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="no TCP_DEFER_ACCEPT on this OS")
def test_deferred_accept_sets_tcp_defer_accept(any_base):
    acc = Acceptor()
    with Listener(any_base, acc, flags=LEV_OPT.DEFERRED_ACCEPT, address=LOCAL) as lev:
        s = socket.socket(fileno=os.dup(lev.fileno()))
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) > 0
        s.close()
        client = socket.create_connection(lev.address)
        client.sendall(b"first words")  # the client speaks first: then the kernel reports it
        run_until(any_base, lambda: acc.calls)
    with Listener(any_base, acc, address=LOCAL) as plain:
        s = socket.socket(fileno=os.dup(plain.fileno()))
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
        s.close()
    acc.close()
    client.close()


def test_deferred_accept_is_ignored_for_unix_sockets(any_base, tmp_path):
    with Listener(any_base, print, flags=LEV_OPT.DEFERRED_ACCEPT, address=str(tmp_path / "s")) as lev:
        assert lev.address == str(tmp_path / "s")


def test_leave_sockets_blocking(any_base):
    acc = Acceptor()
    lev = Listener(any_base, acc, flags=LEV_OPT.LEAVE_SOCKETS_BLOCKING, address=LOCAL)
    client = socket.create_connection(lev.address)
    run_until(any_base, lambda: acc.calls)
    sock = acc.socks[0]
    assert sock.getblocking() is True
    client.sendall(b"x")
    assert sock.recv(1) == b"x"
    lev.free()
    acc.close()
    client.close()


def test_unix_socket_path(base, tmp_path):
    path = str(tmp_path / "listener.sock")
    acc = Acceptor()
    lev = Listener(base, acc, "unix", flags=LEV_OPT.REUSEABLE | LEV_OPT.REUSEABLE_PORT, address=path)
    assert lev.address == path
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    run_until(base, lambda: acc.calls)
    sock = acc.socks[0]
    assert sock.family == socket.AF_UNIX and sock.getblocking() is False
    assert acc.calls[0][3] == "unix"
    lev.free()
    assert os.path.exists(path)  # like libevent, the path is the application's to unlink
    acc.close()
    client.close()


def test_unix_socket_pathlike_and_bytes(any_base, tmp_path):
    with Listener(any_base, print, address=tmp_path / "p.sock") as lev:
        assert lev.address == str(tmp_path / "p.sock")
    with Listener(any_base, print, address=os.fsencode(tmp_path / "b.sock")) as lev:
        assert lev.address == str(tmp_path / "b.sock")


def ipv6_loopback():
    """Whether this machine can bind ::1 (checked with a real bind)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_ipv6_loopback(base):
    acc = Acceptor()
    lev = Listener(base, acc, flags=LEV_OPT.BIND_IPV6ONLY, address=("::1", 0))
    assert lev.address[0] == "::1" and lev.address[1] > 0
    s = socket.socket(fileno=os.dup(lev.fileno()))
    assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1
    s.close()
    client = socket.create_connection(lev.address[:2])
    run_until(base, lambda: acc.calls)
    assert acc.calls[0][2][:2] == client.getsockname()[:2]
    lev.free()
    with Listener(base, acc, address=("::1", 0, 0, 0)) as four:
        assert four.address[0] == "::1"
    acc.close()
    client.close()


# ---------------------------------------------------------------------------- accept errors
class AbortingSocket(socket.socket):
    """A listening socket whose next accepts fail as a client that reset early would make them.

    Linux hands such connections to accept() anyway, so ECONNABORTED cannot be provoked with a
    real peer here: this injects it.
    """

    plan = [errno.ECONNABORTED, errno.EPROTO]  # errnos to fail with, 0 for a real accept

    def _accept(self):
        if self.plan:
            err = self.plan.pop(0)
            if err:
                raise OSError(err, os.strerror(err))
        return super()._accept()


def test_transient_errors_are_skipped_without_error_callback(any_base):
    s = AbortingSocket()
    s.bind(LOCAL)
    acc = Acceptor()
    errors = []
    lev = Listener(any_base, acc, flags=LEV_OPT.CLOSE_ON_FREE, sock=s)
    lev.set_error_cb(lambda listener, arg: errors.append(listener.socket_error))
    client = socket.create_connection(lev.address)
    run_until(any_base, lambda: acc.calls)
    assert errors == [] and not lev.paused and lev.socket_error == 0
    lev.free()
    acc.close()
    client.close()


def test_socket_that_stops_listening_reports_and_does_not_spin(any_base):
    s = socket.create_server(LOCAL)
    errors = []
    lev = Listener(any_base, print, "arg", sock=s)
    lev.set_error_cb(lambda listener, arg: errors.append((listener.socket_error, arg)))
    s.shutdown(socket.SHUT_RD)  # Linux: the socket stops listening, accept() fails with EINVAL
    t0 = time.process_time()
    passes = run_for(any_base, 0.3)
    cpu = time.process_time() - t0
    assert errors and errors[0] == (errno.EINVAL, "arg")
    assert len(errors) <= 8 and passes <= 40, (len(errors), passes)
    assert cpu < 0.15, cpu
    lev.free()
    s.close()


# ------------------------------------------------------------------------------- EMFILE
def test_emfile_pauses_without_spinning_and_resumes_by_itself(base):
    acc = Acceptor()
    errors = []
    lev = Listener(base, acc, "arg", address=LOCAL)
    lev.set_error_cb(lambda listener, arg: errors.append((listener.socket_error, arg, time.monotonic())))
    clients = [socket.create_connection(lev.address) for _ in range(3)]
    with FdsExhausted() as fds:
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        passes = run_for(base, 0.3)
        wall = time.monotonic() - t0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        assert acc.calls == []
        assert errors and all(e[:2] == (errno.EMFILE, "arg") for e in errors)
        # 10 + 20 + 40 + 80 + 160 ms of pauses fit in 0.3 s: a handful of attempts, not thousands
        assert 2 <= len(errors) <= 8, len(errors)
        assert passes <= 40, passes
        assert cpu < 0.25 * wall, (cpu, wall)
        gaps = [b[2] - a[2] for a, b in itertools.pairwise(errors)]
        assert all(g >= 0.008 for g in gaps), gaps
        assert lev.paused and "paused" in repr(lev)
        fds.restore()
        t1 = time.monotonic()
        run_until(base, lambda: len(acc.calls) == 3, timeout=2.0)
        assert time.monotonic() - t1 < 1.0
    assert sorted(c[2] for c in acc.calls) == sorted(c.getsockname() for c in clients)
    assert not lev.paused
    # the growing pause was reset by the successful accepts: a new shortage starts at 10 ms again
    n = len(errors)
    late = socket.create_connection(lev.address)
    with FdsExhausted():
        run_for(base, 0.05)
    assert len(errors) >= n + 2
    run_until(base, lambda: len(acc.calls) == 4, timeout=2.0)
    lev.free()
    acc.close()
    for c in [*clients, late]:
        c.close()


def test_emfile_without_error_callback_logs_and_resumes(any_base, caplog):
    caplog.set_level(logging.DEBUG, logger="evbuffer")
    acc = Acceptor()
    lev = Listener(any_base, acc, address=LOCAL)
    client = socket.create_connection(lev.address)
    with FdsExhausted() as fds:
        run_for(any_base, 0.2)
        assert acc.calls == [] and lev.paused
        fds.restore()
        t1 = time.monotonic()
        run_until(any_base, lambda: acc.calls, timeout=2.0)
        assert time.monotonic() - t1 < 1.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Too many open files" in warnings[0].getMessage()
    assert any("pausing" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert any("accepts again" in r.getMessage() for r in caplog.records)
    lev.free()
    acc.close()
    client.close()


def test_pause_grows_to_its_cap(any_base):
    errors = []
    lev = Listener(any_base, print, address=LOCAL)
    lev.set_error_cb(lambda listener, arg: errors.append(time.monotonic()))
    client = socket.create_connection(lev.address)
    with FdsExhausted():
        run_for(any_base, 1.6)
    gaps = [b - a for a, b in itertools.pairwise(errors)]
    assert gaps and max(gaps) <= PAUSE_MAX + 0.3, gaps
    assert gaps[-1] >= PAUSE_MAX - 0.05, gaps
    lev.free()
    client.close()


def test_disable_during_pause_cancels_it_and_free_during_pause(any_base):
    errors = []
    lev = Listener(any_base, print, address=LOCAL)
    lev.set_error_cb(lambda listener, arg: errors.append(listener.socket_error))
    client = socket.create_connection(lev.address)
    with FdsExhausted():
        run_until(any_base, lambda: lev.paused)
        lev.disable()
        assert not lev.paused
        assert any_base.loop(EVLOOP_NONBLOCK) == 1  # no pause timer left behind
        lev.enable()
        run_until(any_base, lambda: len(errors) == 3)
        assert lev.paused
        lev.free()
        assert any_base.loop(EVLOOP_NONBLOCK) == 1
    client.close()


def test_free_from_the_error_callback(any_base):
    lev = Listener(any_base, print, address=LOCAL)
    lev.set_error_cb(lambda listener, arg: listener.free())
    client = socket.create_connection(lev.address)
    with FdsExhausted():
        run_until(any_base, lambda: lev.fileno() == -1)
        assert any_base.loop(EVLOOP_NONBLOCK) == 1
    client.close()


def test_reserve_fd_sheds_pending_connections_at_emfile(any_base):
    acc = Acceptor()
    errors = []
    s = AbortingSocket()
    s.bind(LOCAL)
    # the listener's own accept skips one ECONNABORTED, then meets EMFILE; while shedding,
    # one more ECONNABORTED is skipped too
    s.plan = [errno.ECONNABORTED, 0, errno.ECONNABORTED]
    lev = Listener(any_base, acc, flags=LEV_OPT.CLOSE_ON_FREE, sock=s, reserve_fd=True)
    lev.accept_batch = 2  # four pending clients: shed in three rounds (1 + 2 + 1 then EAGAIN)
    lev.set_error_cb(lambda listener, arg: errors.append(listener.socket_error))
    clients = [socket.create_connection(lev.address) for _ in range(4)]
    time.sleep(0.05)
    for c in clients:
        c.settimeout(2.0)
    with FdsExhausted() as fds:
        run_until(any_base, lambda: errors)
        assert errors[0] == errno.EMFILE and not lev.paused
        run_until(any_base, lambda: len(errors) == 3)
        assert s.plan == [] and not lev.paused
        for c in clients:  # closed at once, not left hanging
            try:
                assert c.recv(1) == b""
            except ConnectionResetError:
                pass
        assert acc.calls == []
        fds.restore()
    late = socket.create_connection(lev.address)
    run_until(any_base, lambda: acc.calls)
    assert acc.calls[0][2] == late.getsockname()
    reserve_fds = len(open_fds())
    lev.free()
    assert len(open_fds()) == reserve_fds - 2  # the listening socket and the reserve fd
    acc.close()
    for c in [*clients, late]:
        c.close()


def test_reserve_fd_that_cannot_help_falls_back_to_pausing(any_base, caplog):
    # the reserve fd sits above the lowered limit: closing it frees no usable slot
    errors = []
    lev = Listener(any_base, print, address=LOCAL, reserve_fd=True)
    lev.set_error_cb(lambda listener, arg: errors.append(listener.socket_error))
    client = socket.create_connection(lev.address)
    with FdsExhausted(limit=lev._reserve) as fds:
        run_until(any_base, lambda: lev.paused)
        assert errors == [errno.EMFILE]
        assert any("reserve fd" in r.getMessage() for r in caplog.records)
        run_until(any_base, lambda: len(errors) >= 2)  # resumed, still failing, reserve still gone
        fds.restore()
    acc = Acceptor()
    lev.set_cb(acc)
    run_until(any_base, lambda: acc.calls, timeout=2.0)
    before = len(open_fds())
    lev.free()
    assert len(open_fds()) == before - 2  # the reserve fd came back at the resume
    acc.close()
    client.close()


def test_constructor_at_emfile_closes_what_it_opened(any_base):
    with FdsExhausted() as fds:
        os.close(fds.fillers.pop())  # room for the socket, none for the reserve fd
        with pytest.raises(OSError) as info:
            Listener(any_base, print, address=LOCAL, reserve_fd=True)
        assert info.value.errno == errno.EMFILE
        with socket.socket() as s:  # the listening socket was closed: its slot is free again
            assert s.fileno() >= 0
