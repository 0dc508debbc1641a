"""libevent's "chain" benchmark (``test/bench.c``), rebuilt for Python event loops.

Facts and theory of operation
-----------------------------
libevent's ``bench.c`` opens a number of socketpairs, gives each one a persistent read
event, writes one byte into ``num_active`` of them, and lets every read callback read
its byte and write one byte into the *next* pipe (wrapping around) until
``num_writes`` writes have been made.  It times the loop only (registration happens
before the clock starts) and reports the wall time of each of 25 runs.

Ours differs in how ``N`` is counted and in nothing that matters to the event loop:

* ``N`` counts **file descriptors**: ``N/2`` socketpairs, *both* ends carry a
  persistent read event (DESIGN.md: "Benchmarks count N in file descriptors").  A
  socketpair is full duplex, so writing to one end makes the other end readable.  The
  ring is ``a0, a1, ..., a(P-1), b0, b1, ..., b(P-1)`` and the callback of ring
  position ``i`` writes to the peer of position ``i+1``, which makes position ``i+1``
  readable.  Every registered fd is on the chain, so idle fds are real idle fds.
* ``A`` bytes start the chain, spaced ``N // A`` positions apart (as bench.c spaces
  them); every callback reads 1 byte with ``os.read`` and, while writes remain,
  writes 1 byte with ``os.write``.  The run ends when ``A + W`` bytes have been read;
  the time per callback is the loop's wall time divided by ``A + W``.
* ``A`` is fixed (100) for every ``N``: each loop pass then has about ``A`` ready fds
  whatever ``N`` is, so comparing ``N = 10000`` with ``N = 100`` measures the cost of
  idle registered fds and nothing else.  (At ``N = 100`` every fd holds a byte.)
* All implementations share the same sockets (non-blocking, created once per ``N``),
  the same byte counts, the same callback body (differing only in the signature each
  loop imposes and in how it stops the loop), and the same GC treatment (a
  ``gc.collect()`` before each timed run, the collector left enabled as users have it).
* Each run builds a fresh loop/base, registers all ``N`` fds, runs one non-blocking
  pass (as bench.c does), writes the ``A`` starting bytes, and only then starts the
  clock.  It stops the clock when the loop call returns.  Deregistration and closing
  come after.

``evcore-epoll-et`` registers with ``EV_ET``.  Edge triggering obliges a callback to
drain its fd: when two bytes meet on one fd (at ``N = 100`` every fd holds a byte, and
while the epoll backend's result array is still growing from 32 entries some ready fds
wait a pass and are caught up), a 1-byte read would leave a byte that no edge will ever
report.  So that callback reads up to 4096 bytes (still one system call; a short read
drains a stream socket) and passes on every byte it read in one write.  Bytes that met
travel on together, so that run makes fewer callbacks than ``A + W`` (many fewer at
``N = 100``); its time is divided by the callbacks it actually ran, each of which is
still one read and one write.

The "bare epoll" reference is what a Python programmer would write without a library:
``select.epoll`` plus a dict ``fd -> callback`` and nothing else.  asyncio uses
``loop.add_reader`` on its default (epoll) selector; uvloop the same API on libuv.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import signal
import socket
from collections.abc import Callable
from time import perf_counter, process_time
from types import FrameType
from typing import Any

__all__ = ["Ring", "ChainImpl", "BenchTimeout", "implementations", "run_once"]

#: Byte written along the chain.
_BYTE = b"e"


class BenchTimeout(RuntimeError):
    """A run took longer than its watchdog allowed (a stalled loop): the run is void."""


class Ring:
    """``nfds`` non-blocking socket fds (``nfds // 2`` socketpairs) arranged as a ring.

    ``fds[i]`` is ring position ``i``; ``nxt[fd]`` is the fd to write to so that the
    position after ``fd`` becomes readable.  ``starters(active)`` are the fds to write
    the starting bytes to.
    """

    def __init__(self, nfds: int) -> None:
        if nfds < 2 or nfds % 2:
            raise ValueError(f"nfds must be even and >= 2, not {nfds}")
        firsts: list[int] = []
        seconds: list[int] = []
        for _ in range(nfds // 2):
            a, b = socket.socketpair()
            fa, fb = a.detach(), b.detach()
            os.set_blocking(fa, False)
            os.set_blocking(fb, False)
            firsts.append(fa)
            seconds.append(fb)
        peer = {fa: fb for fa, fb in zip(firsts, seconds, strict=True)}
        peer.update({fb: fa for fa, fb in zip(firsts, seconds, strict=True)})
        self.fds: list[int] = firsts + seconds
        self.peer = peer
        #: indexed by fd: where the callback of that fd writes.
        self.nxt: list[int] = [-1] * (max(self.fds) + 1)
        n = len(self.fds)
        for i, fd in enumerate(self.fds):
            self.nxt[fd] = peer[self.fds[(i + 1) % n]]
        self.max_fd = max(self.fds)

    def __len__(self) -> int:
        return len(self.fds)

    def starters(self, active: int) -> list[int]:
        """The fds to write the ``active`` starting bytes to (spaced as bench.c)."""
        n = len(self.fds)
        active = min(active, n)
        space = n // active
        return [self.peer[self.fds[i * space]] for i in range(active)]

    def drain(self) -> int:
        """Read every pending byte (after an aborted run); return how many."""
        total = 0
        for fd in self.fds:
            while True:
                try:
                    data = os.read(fd, 4096)
                except BlockingIOError:
                    break
                if not data:
                    break
                total += len(data)
        return total

    def close(self) -> None:
        """Close every fd (idempotent)."""
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


#: A run: (ring, active, writes) -> (wall seconds, CPU seconds, bytes read, callbacks run).
RunFn = Callable[[Ring, int, int], tuple[float, float, int, int]]


class ChainImpl:
    """One implementation of the chain loop: a name and a run function."""

    def __init__(self, name: str, run: RunFn, max_nfds: int | None = None, note: str = "") -> None:
        self.name = name
        self.run = run
        self.max_nfds = max_nfds
        self.note = note

    def fits(self, ring: Ring) -> bool:
        """Whether this implementation can take the ring (``select``: fds < 1024)."""
        if self.max_nfds is not None and len(ring) >= self.max_nfds:
            return False
        return not (self.name.endswith("-select") and ring.max_fd >= 1024)

    def __repr__(self) -> str:
        return f"<ChainImpl {self.name}>"


# ---------------------------------------------------------------------------
# evcore


def _evcore_run(method: str, extra_flags: int) -> RunFn:
    def run(ring: Ring, active: int, writes: int) -> tuple[float, float, int, int]:
        import evcore

        read, write, nxt = os.read, os.write, ring.nxt
        total = min(active, len(ring)) + writes
        count = 0
        left = writes
        base = evcore.EventBase(method=method)

        def cb(fd: int, what: int, arg: Any) -> None:
            nonlocal count, left
            read(fd, 1)
            count += 1
            if left:
                write(nxt[fd], _BYTE)
                left -= 1
            elif count == total:
                stop()

        calls = 0

        def cb_et(fd: int, what: int, arg: Any) -> None:
            # EV_ET: read everything there is (one read: a short read drains a stream
            # socket) and pass every byte on; bytes end the run, callbacks are counted.
            nonlocal count, left, calls
            calls += 1
            data = read(fd, 4096)
            n = len(data)
            count += n
            if left >= n:
                write(nxt[fd], data)
                left -= n
            elif left:
                write(nxt[fd], data[:left])
                left = 0
            elif count == total:
                stop()

        stop = base.loopbreak
        flags = evcore.EV_READ | evcore.EV_PERSIST | extra_flags
        callback = cb_et if extra_flags & evcore.EV_ET else cb
        events = [evcore.Event(base, fd, flags, callback, None) for fd in ring.fds]
        try:
            for ev in events:
                ev.add()
            base.loop(evcore.EVLOOP_ONCE | evcore.EVLOOP_NONBLOCK)
            for fd in ring.starters(active):
                write(fd, _BYTE)
            gc.collect()
            c0, t0 = process_time(), perf_counter()
            base.loop()
            t1, c1 = perf_counter(), process_time()
        finally:
            for ev in events:
                ev.delete()
            base.free()
        return t1 - t0, c1 - c0, count, (calls if callback is cb_et else count)

    return run


def evcore_impls() -> list[ChainImpl]:
    """evcore on every supported backend (and epoll edge-triggered), or none."""
    try:
        import evcore
    except ImportError:
        return []
    out: list[ChainImpl] = []
    for method in evcore.supported_methods():
        if method.startswith("bench-"):  # overhead.py's stub backend
            continue
        limit = 1000 if method == "select" else None
        out.append(ChainImpl(f"evcore-{method}", _evcore_run(method, 0), max_nfds=limit))
        if method == "epoll":
            et = _evcore_run(method, int(evcore.EV_ET))
            out.append(ChainImpl("evcore-epoll-et", et, note="EV_ET; the callback drains (reads up to 4096)"))
    return out


# ---------------------------------------------------------------------------
# the bare epoll loop


def _bare_epoll_run(ring: Ring, active: int, writes: int) -> tuple[float, float, int, int]:
    read, write, nxt = os.read, os.write, ring.nxt
    total = min(active, len(ring)) + writes
    count = 0
    left = writes
    running = True

    def cb(fd: int) -> None:
        nonlocal count, left, running
        read(fd, 1)
        count += 1
        if left:
            write(nxt[fd], _BYTE)
            left -= 1
        elif count == total:
            running = False

    ep = select.epoll()
    cbs: dict[int, Callable[[int], None]] = {}
    try:
        for fd in ring.fds:
            ep.register(fd, select.EPOLLIN)
            cbs[fd] = cb
        ep.poll(0)
        for fd in ring.starters(active):
            write(fd, _BYTE)
        poll = ep.poll
        gc.collect()
        c0, t0 = process_time(), perf_counter()
        while running:
            for fd, _ev in poll():
                cbs[fd](fd)
        t1, c1 = perf_counter(), process_time()
    finally:
        ep.close()
    return t1 - t0, c1 - c0, count, count


# ---------------------------------------------------------------------------
# asyncio and uvloop


def _asyncio_run(new_loop: Callable[[], asyncio.AbstractEventLoop]) -> RunFn:
    def run(ring: Ring, active: int, writes: int) -> tuple[float, float, int, int]:
        read, write, nxt = os.read, os.write, ring.nxt
        total = min(active, len(ring)) + writes
        count = 0
        left = writes
        loop = new_loop()

        def cb(fd: int) -> None:
            nonlocal count, left
            read(fd, 1)
            count += 1
            if left:
                write(nxt[fd], _BYTE)
                left -= 1
            elif count == total:
                stop()

        stop = loop.stop
        try:
            for fd in ring.fds:
                loop.add_reader(fd, cb, fd)
            loop.call_soon(loop.stop)
            loop.run_forever()
            for fd in ring.starters(active):
                write(fd, _BYTE)
            gc.collect()
            c0, t0 = process_time(), perf_counter()
            loop.run_forever()
            t1, c1 = perf_counter(), process_time()
        finally:
            for fd in ring.fds:
                loop.remove_reader(fd)
            loop.close()
        return t1 - t0, c1 - c0, count, count

    return run


def reference_impls() -> list[ChainImpl]:
    """The bare epoll loop, asyncio, and uvloop when importable."""
    out = [
        ChainImpl("bare-epoll", _bare_epoll_run, note="select.epoll + dict fd->callback"),
        ChainImpl("asyncio", _asyncio_run(asyncio.SelectorEventLoop), note="add_reader, epoll selector"),
    ]
    try:
        import uvloop
    except ImportError:
        pass
    else:
        out.append(ChainImpl("uvloop", _asyncio_run(uvloop.new_event_loop), note="add_reader"))
    return out


def implementations() -> list[ChainImpl]:
    """Every implementation available in this process, references first."""
    return reference_impls() + evcore_impls()


# ---------------------------------------------------------------------------
# one watched run


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise BenchTimeout("chain run exceeded its watchdog")


def run_once(impl: ChainImpl, ring: Ring, active: int, writes: int, watchdog: float) -> tuple[float, float]:
    """Run ``impl`` once; return (wall, CPU) seconds per callback.

    Raises :class:`BenchTimeout` when the run stalls (the exception may surface as
    another error when it lands inside the loop's own code), ``AssertionError`` when
    the callback count is wrong or bytes are left over; the ring is drained either way.
    """
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, watchdog)
    try:
        wall, cpu, count, calls = impl.run(ring, active, writes)
    except BaseException:
        ring.drain()
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    expected = min(active, len(ring)) + writes
    if count != expected:
        ring.drain()
        raise AssertionError(f"{impl.name}: {count} bytes read, expected {expected}")
    leftover = ring.drain()
    if leftover:
        raise AssertionError(f"{impl.name}: {leftover} bytes left unread")
    return wall / calls, cpu / calls
