"""Dispatch overhead without system calls: what a loop costs per callback in Python alone.

Facts and theory of operation
-----------------------------
In the chain benchmark about 2.5 of the ~3 µs per callback are the kernel's (a
``read``, a ``write`` and a share of ``epoll_wait``), and on a shared machine the
noise in those microseconds is larger than the difference between two loops.  This
benchmark removes the kernel: each loop gets a stub readiness source that reports the
same ``K`` fds ready on every pass, without any system call, and every callback only
counts (and stops the loop after ``passes * K`` callbacks).  What is left is each
loop's own bookkeeping per callback, measured in nanoseconds:

``bare``
    ``for fd, ev in poll(): cbs[fd](fd)`` over the stub's list.
``evcore`` / ``evcore-nolock``
    an :class:`evcore.EventBase` on a registered stub backend (``bench-stub``), in the
    default configuration and with ``BaseFlag.NOLOCK``; persistent read events.
``asyncio``
    a ``SelectorEventLoop`` over a stub selector whose ``select`` returns the keys of
    the registered fds; ``add_reader`` callbacks.

The stub backend is registered with :func:`evcore.register_backend` only when this
benchmark runs (there is no way to unregister it); ``chain.py`` skips any method whose
name starts with ``bench-``.
"""

from __future__ import annotations

import asyncio
import gc
import selectors
from collections.abc import Callable, Iterable
from time import perf_counter, process_time
from typing import Any

__all__ = ["implementations", "run"]

#: Fake fds (never opened; no system call ever sees them).
_FD0 = 100_000


def _bare(k: int, passes: int) -> tuple[float, float]:
    fired = [(fd, 1) for fd in range(_FD0, _FD0 + k)]
    total = k * passes
    count = 0
    running = True

    def cb(fd: int) -> None:
        nonlocal count, running
        count += 1
        if count == total:
            running = False

    def poll() -> list[tuple[int, int]]:
        return fired

    cbs = {fd: cb for fd, _ in fired}
    gc.collect()
    c0, t0 = process_time(), perf_counter()
    while running:
        for fd, _ev in poll():
            cbs[fd](fd)
    t1, c1 = perf_counter(), process_time()
    assert count == total
    return t1 - t0, c1 - c0


_stub_registered = False


def _stub_backend() -> str:
    global _stub_registered
    import evcore
    from evcore.backend import Backend

    if not _stub_registered:

        class StubBackend(Backend):
            """Reports every fd it watches as readable, on every pass, without a system call."""

            name = "bench-stub"

            def __init__(self, base: Any) -> None:
                super().__init__(base)
                self._ready: list[tuple[int, int]] = []

            def add(self, fd: int, old: int, events: int) -> None:
                self._ready.append((fd, int(evcore.EV_READ)))

            def delete(self, fd: int, old: int, events: int) -> None:
                self._ready = [p for p in self._ready if p[0] != fd]

            def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
                return self._ready

        evcore.register_backend(StubBackend)
        _stub_registered = True
    return "bench-stub"


def _evcore(nolock: bool) -> Callable[[int, int], tuple[float, float]]:
    def run(k: int, passes: int) -> tuple[float, float]:
        import evcore

        method = _stub_backend()
        cfg = evcore.EventConfig()
        for other in evcore.supported_methods():
            if other != method:
                cfg.avoid_method(other)
        if nolock:
            cfg.set_flag(evcore.BaseFlag.NOLOCK)
        base = evcore.EventBase(cfg)
        assert base.method == method
        total = k * passes
        count = 0

        def cb(fd: int, what: int, arg: Any) -> None:
            nonlocal count
            count += 1
            if count == total:
                stop()

        stop = base.loopbreak
        flags = evcore.EV_READ | evcore.EV_PERSIST
        events = [evcore.Event(base, fd, flags, cb) for fd in range(_FD0, _FD0 + k)]
        try:
            for ev in events:
                ev.add()
            gc.collect()
            c0, t0 = process_time(), perf_counter()
            base.loop()
            t1, c1 = perf_counter(), process_time()
        finally:
            for ev in events:
                ev.delete()
            base.free()
        assert count == total
        return t1 - t0, c1 - c0

    return run


class _StubSelector(selectors.BaseSelector):
    """A selector that reports every registered fd readable, without a system call."""

    def __init__(self) -> None:
        self._keys: dict[int, selectors.SelectorKey] = {}
        self._ready: list[tuple[selectors.SelectorKey, int]] = []

    @staticmethod
    def _fd(fileobj: Any) -> int:
        return fileobj if isinstance(fileobj, int) else int(fileobj.fileno())

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, self._fd(fileobj), events, data)
        self._keys[key.fd] = key
        self._ready = [(k, selectors.EVENT_READ) for k in self._keys.values() if k.fd >= _FD0]
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._keys.pop(self._fd(fileobj))
        self._ready = [(k, selectors.EVENT_READ) for k in self._keys.values() if k.fd >= _FD0]
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self._keys.pop(self._fd(fileobj))
        return self.register(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self._ready

    def get_map(self) -> dict[int, selectors.SelectorKey]:  # type: ignore[override]
        return self._keys

    def close(self) -> None:
        self._keys.clear()


def _asyncio(k: int, passes: int) -> tuple[float, float]:
    loop = asyncio.SelectorEventLoop(_StubSelector())
    total = k * passes
    count = 0

    def cb(fd: int) -> None:
        nonlocal count
        count += 1
        if count == total:
            stop()

    stop = loop.stop
    fds = range(_FD0, _FD0 + k)
    try:
        for fd in fds:
            loop.add_reader(fd, cb, fd)
        gc.collect()
        c0, t0 = process_time(), perf_counter()
        loop.run_forever()
        t1, c1 = perf_counter(), process_time()
        for fd in fds:
            loop.remove_reader(fd)
    finally:
        loop.close()
    assert count == total
    return t1 - t0, c1 - c0


def implementations() -> dict[str, Callable[[int, int], tuple[float, float]]]:
    """name -> run(k, passes) returning (wall, CPU) seconds for ``k * passes`` callbacks."""
    out: dict[str, Callable[[int, int], tuple[float, float]]] = {"bare": _bare, "asyncio": _asyncio}
    try:
        import evcore  # noqa: F401
    except ImportError:
        return out
    out["evcore"] = _evcore(nolock=False)
    out["evcore-nolock"] = _evcore(nolock=True)
    return out


def run(name: str, k: int, passes: int) -> tuple[float, float]:
    """One run of ``name``: (wall, CPU) nanoseconds per callback."""
    wall, cpu = implementations()[name](k, passes)
    n = k * passes
    return wall / n * 1e9, cpu / n * 1e9
