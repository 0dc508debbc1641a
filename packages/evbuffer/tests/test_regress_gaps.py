"""Rows of libevent 2.0's regress suite that the other evbuffer tests left open.

* ``bufferevent_connect_lock``, ``bufferevent_connect_lock_defer`` and
  ``bufferevent_connect_unlocked_cbs`` (regress_bufferevent.c, ``test_bufferevent_connect``
  with "lock", "lock defer", "unlocked_cbs"): socket bufferevents made with ``THREADSAFE``
  (and ``DEFER_CALLBACKS``, and ``UNLOCK_CALLBACKS``) connect to a :class:`Listener` on
  127.0.0.1, get ``CONNECTED``, exchange data both ways and see the accepting side's EOF;
  several connections at once, also started from other threads while the loop runs.
  Without ``UNLOCK_CALLBACKS`` a callback runs with the bufferevent's lock held (another
  thread's ``lock()`` waits for it to return); with it, the lock is free.
* ``error_ts`` (regress_listener.c): the error callback of a ``THREADSAFE`` listener, driven
  by a real ``EMFILE`` (RLIMIT_NOFILE lowered in the forked test process, the fd table
  filled), without spinning, and accepting again once descriptors are free.

Real sockets only; every loop bounded in passes and wall-clock time.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import socket
import threading
import time

import pytest

import evcore
from evbuffer import BEV_EVENT, BEV_OPT, Bufferevent
from evbuffer.listener import LEV_OPT, Listener
from evbuffer.testing.bev_suite_support import run_passes as run_for
from evbuffer.testing.bev_suite_support import run_until
from evcore import EV_READ, EV_WRITE, EVLOOP_NONBLOCK, EVLOOP_ONCE, Event, EventBase

resource = pytest.importorskip("resource", reason="RLIMIT_NOFILE needs POSIX")

LOCAL = ("127.0.0.1", 0)
RW = EV_READ | EV_WRITE
N_CONN = 5

LOCK = BEV_OPT.THREADSAFE
LOCK_DEFER = BEV_OPT.THREADSAFE | BEV_OPT.DEFER_CALLBACKS
UNLOCKED_CBS = BEV_OPT.THREADSAFE | BEV_OPT.DEFER_CALLBACKS | BEV_OPT.UNLOCK_CALLBACKS
OPTION_SETS = pytest.mark.parametrize(
    "options", [LOCK, LOCK_DEFER, UNLOCKED_CBS], ids=["lock", "lock_defer", "unlocked_cbs"]
)


@pytest.fixture(params=evcore.supported_methods())
def base(request):
    b = EventBase(method=request.param)
    yield b
    b.free()


# -------------------------------------------------------------- connect with the lock
class Server:
    """The accepting side: a socket bufferevent per connection, with the same options.

    Each one greets the client, answers the client's line with ``echo:<line>`` and then
    frees itself, so the client sees the greeting, the answer, then EOF (libevent's test
    writes and frees the accepted side the same way).
    """

    def __init__(self, base, options):
        self.base = base
        self.options = options
        self.bevs = []
        self.received = []
        self.errors = []
        self.listener = Listener(base, self._accept, flags=LEV_OPT.REUSEABLE, address=LOCAL)

    def _accept(self, listener, sock, address, arg):
        bev = Bufferevent.socket(self.base, sock, BEV_OPT.CLOSE_ON_FREE | self.options)
        bev.setcb(self._read, self._write, self._event)
        bev.enable(RW)
        bev.write(b"hello\n")
        self.bevs.append(bev)

    def _read(self, bev, arg):
        line = bev.input.readln()
        if line is not None:
            self.received.append(line)
            bev.write(b"echo:" + line + b"\n")
            bev.setcb(None, self._write, self._event)  # free once the answer left

    def _write(self, bev, arg):
        if bev.getcb()[0] is None and not bev.output:
            bev.free()

    def _event(self, bev, what, arg):  # pragma: no cover - only on failure
        self.errors.append((what, bev.socket_error))
        bev.free()

    def free(self):
        self.listener.free()
        for bev in self.bevs:
            bev.free()


class Client:
    """One connecting bufferevent; records what it sees and checks the lock in its callbacks."""

    def __init__(self, base, options, n, probe_lock=True):
        self.n = n
        # with UNLOCK_CALLBACKS the other thread should get the lock: wait long for it; else it
        # should be stuck until the callback returns: a short wait shows it is
        self.probe_wait = 2.0 if options & BEV_OPT.UNLOCK_CALLBACKS else 0.05
        self.events = []
        self.data = bytearray()
        self.lock_free_in_cb = []  # per probed callback: could another thread take the lock?
        self.waiters = []
        self.probe_lock = probe_lock
        self.bev = Bufferevent.socket(base, None, BEV_OPT.CLOSE_ON_FREE | options)
        self.bev.setcb(self._read, None, self._event, n)

    def start(self, address):
        self.bev.enable(RW)
        self.bev.connect(address)

    def start_from_thread(self, address):
        # connect() first, then enable reading: from a thread other than the loop's, neither
        # call then deletes an event of this bufferevent while holding its lock
        self.bev.connect(address)
        self.bev.enable(RW)

    def _probe(self, bev):
        """From another thread, try ``bev.lock()`` while this callback runs (bounded wait)."""
        got = threading.Event()

        def other():
            bev.lock()
            got.set()
            bev.unlock()

        t = threading.Thread(target=other, daemon=True)
        t.start()
        t.join(self.probe_wait)
        self.lock_free_in_cb.append(got.is_set())
        self.waiters.append(t)

    def _read(self, bev, arg):
        assert arg == self.n
        self.data += bev.read()
        if self.probe_lock and len(self.lock_free_in_cb) == 1:  # once, after CONNECTED's
            self._probe(bev)

    def _event(self, bev, what, arg):
        assert arg == self.n
        self.events.append(what)
        if what & BEV_EVENT.CONNECTED:
            bev.write(b"ping-%d\n" % self.n)
        if self.probe_lock:
            self._probe(bev)

    @property
    def done(self):
        return len(self.events) >= 2

    def check(self):
        assert self.events == [BEV_EVENT.CONNECTED, BEV_EVENT.READING | BEV_EVENT.EOF], self.events
        assert bytes(self.data) == b"hello\necho:ping-%d\n" % self.n
        assert self.bev.socket_error == 0


def _check_lock_probes(clients, options):
    unlocked = bool(options & BEV_OPT.UNLOCK_CALLBACKS)
    for c in clients:
        assert c.lock_free_in_cb, "no callback probed the lock"
        # UNLOCK_CALLBACKS: the other thread took the lock at once; else it waited for the callback
        assert c.lock_free_in_cb == [unlocked] * len(c.lock_free_in_cb), c.lock_free_in_cb
        for t in c.waiters:  # once the callbacks returned, every waiting thread got the lock
            t.join(2.0)
            assert not t.is_alive()


def _connect_many(base, options, start_from_threads):
    server = Server(base, options)
    clients = [Client(base, options, n, probe_lock=not start_from_threads) for n in range(N_CONN)]
    address = server.listener.address
    if start_from_threads:
        # connect() on THREADSAFE bufferevents from other threads while the loop runs
        barrier = threading.Barrier(N_CONN, timeout=5.0)
        failures = []

        def go(c):
            try:
                barrier.wait()
                c.start_from_thread(address)
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=go, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        run_until(base, lambda: all(c.done for c in clients) or failures)
        for t in threads:
            t.join(2.0)
            assert not t.is_alive()
        assert failures == []
    else:
        for c in clients:
            c.start(address)
        run_until(base, lambda: all(c.done for c in clients))
    run_for(base, 0.05)  # nothing more arrives
    for c in clients:
        c.check()
    assert sorted(server.received) == sorted(b"ping-%d" % n for n in range(N_CONN))
    assert server.errors == []
    assert all(b.freed for b in server.bevs) and len(server.bevs) == N_CONN
    if not start_from_threads:
        _check_lock_probes(clients, options)
    for c in clients:
        c.bev.free()
    server.free()
    assert base.loop(EVLOOP_NONBLOCK) == 1  # nothing left behind


@OPTION_SETS
def test_connect_threadsafe(base, options):
    """``bufferevent_connect_lock*``: several THREADSAFE connects, data both ways, then EOF."""
    _connect_many(base, options, start_from_threads=False)


@OPTION_SETS
def test_connect_threadsafe_from_other_threads(base, options):
    """The same, with each ``connect()`` called from its own thread while the loop runs.

    Reading is enabled after ``connect()`` here, not before as in the other test.
    """
    _connect_many(base, options, start_from_threads=True)


@OPTION_SETS
def test_connect_threadsafe_write_queued_before_connect(base, options):
    """Data written before ``connect()`` leaves once ``CONNECTED`` arrives, read enabled first."""
    got = []
    lev = Listener(base, lambda listener, sock, address, arg: got.append(sock), address=LOCAL)
    bev = Bufferevent.socket(base, None, BEV_OPT.CLOSE_ON_FREE | options)
    events = []
    bev.setcb(None, None, lambda b, what, arg: events.append(what))
    bev.enable(EV_READ)
    bev.write(b"queued before connect")
    bev.connect(lev.address)
    run_until(base, lambda: events and got)
    assert events == [BEV_EVENT.CONNECTED]
    peer = got[0]
    peer.setblocking(True)
    peer.settimeout(5.0)
    data = b""
    while len(data) < 21:
        chunk = peer.recv(64)
        assert chunk
        data += chunk
    assert data == b"queued before connect"
    peer.sendall(b"back")
    run_until(base, lambda: len(bev.input) == 4)
    assert bev.read() == b"back"
    bev.free()
    peer.close()
    lev.free()


# ------------------------------------------------------------------- error_ts (EMFILE)
def open_fds():
    return sorted(int(n) for n in os.listdir("/proc/self/fd"))


class FdsExhausted:
    """Lower RLIMIT_NOFILE and fill every slot below it, so the next new fd fails with EMFILE."""

    def __init__(self):
        self.soft, self.hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = max(open_fds()) + 8
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


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_threadsafe_listener_error_callback_at_emfile(base):
    """``error_ts``: a THREADSAFE listener reports EMFILE, pauses instead of spinning, resumes."""
    accepted = []
    errors = []
    other_thread_ok = []

    def on_accept(listener, sock, address, arg):
        accepted.append(sock)

    def on_error(listener, arg):
        errors.append((listener.socket_error, arg, time.monotonic()))
        if len(errors) == 1:
            # the error callback runs without the listener's lock: another thread's
            # set_error_cb() (which takes it) completes while we are still in here
            t = threading.Thread(target=lambda: (listener.set_error_cb(on_error), other_thread_ok.append(1)))
            t.daemon = True
            t.start()
            t.join(2.0)

    lev = Listener(base, on_accept, "arg", flags=LEV_OPT.THREADSAFE, address=LOCAL)
    lev.set_error_cb(on_error)
    clients = [socket.create_connection(lev.address) for _ in range(3)]
    with FdsExhausted() as fds:
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        passes = run_for(base, 0.3)
        wall = time.monotonic() - t0
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
        assert accepted == []
        assert errors and all(e[:2] == (errno.EMFILE, "arg") for e in errors)
        assert lev.socket_error == errno.EMFILE
        assert other_thread_ok == [1]
        # a growing pause (10, 20, 40... ms): a handful of attempts in 0.3 s, not thousands
        assert 2 <= len(errors) <= 8, len(errors)
        assert passes <= 40, passes
        assert cpu < 0.25 * wall, (cpu, wall)
        gaps = [b[2] - a[2] for a, b in itertools.pairwise(errors)]
        assert all(g >= 0.008 for g in gaps), gaps
        assert lev.paused
        fds.restore()
        t1 = time.monotonic()
        run_until(base, lambda: len(accepted) == 3, timeout=2.0)
        assert time.monotonic() - t1 < 1.0
    assert sorted(s.getpeername() for s in accepted) == sorted(c.getsockname() for c in clients)
    assert not lev.paused
    # and it keeps accepting; another thread may disable and re-enable it meanwhile
    toggler = threading.Thread(target=lambda: (lev.disable(), lev.enable()), daemon=True)
    toggler.start()
    toggler.join(2.0)
    assert not toggler.is_alive() and lev.enabled
    late = socket.create_connection(lev.address)
    run_until(base, lambda: len(accepted) == 4, timeout=2.0)
    lev.free()
    assert base.loop(EVLOOP_NONBLOCK) == 1
    for s in [*accepted, *clients, late]:
        s.close()


def test_threadsafe_disable_from_another_thread_never_deadlocks() -> None:
    """disable()/enable() on a THREADSAFE bufferevent from another thread while its read
    callback is due: the bufferevent deletes its events without waiting for the callback
    (evcore's ``del_noblock``), so the two threads never wait on each other."""


    base = EventBase()
    a, b = socket.socketpair()
    bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE | BEV_OPT.THREADSAFE)
    bev.setcb(lambda bv, arg: bv.input.drain(len(bv.input)), None, None)
    bev.enable(EV_READ)
    stop = threading.Event()

    def run_loop() -> None:
        tick = Event.timer(base, lambda *x: None)
        while not stop.is_set():
            tick.add(0.01)
            base.loop(EVLOOP_ONCE)
        tick.free()

    t = threading.Thread(target=run_loop, daemon=True)
    t.start()
    b.setblocking(False)
    deadline = time.monotonic() + 20.0
    for _ in range(3000):
        with contextlib.suppress(BlockingIOError):
            b.send(b"x" * 512)
        bev.disable(EV_READ)
        bev.enable(EV_READ)
        assert time.monotonic() < deadline, "disable()/enable() stalled"
    stop.set()
    t.join(5.0)
    assert not t.is_alive(), "the loop thread is stuck"
    bev.free()
    b.close()
    base.free()
