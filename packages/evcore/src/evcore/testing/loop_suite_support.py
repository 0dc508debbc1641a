"""Fixtures and helpers shared by the loop conformance suite (:mod:`evcore.testing.loop_suite`).

Facts and theory of operation
-----------------------------
* The suite's tests take a ``base_factory`` (or ``io_base_factory``) fixture: a
  :class:`BaseFactory` for one backend, called as ``base_factory(config=None, *,
  clock=None, flags=0)`` to get a fresh :class:`evcore.EventBase` on that backend.
* ``io_base_factory`` is the same, parametrized once more for backends offering
  ``Feature.ET``: its ``"<method>-et"`` variant has ``factory.et == EV_ET``, which the
  fd tests OR into every fd event's flags (their callbacks then drain until
  ``EAGAIN``, as edge-triggered code must).  Elsewhere ``factory.et`` is 0.
* Teardown (uvloop's habit): every base the factory made and the test did not
  free must have ``num_events() == 0`` -- nothing pending, active or virtual --
  unless the test called :meth:`BaseFactory.leave` on it; then it is freed.  The
  socketpairs made by :meth:`BaseFactory.socketpair` are closed.  The check runs
  right after a passing test body (:func:`suite_test` wraps every suite test), so
  leftovers fail the test itself; after a failing body the bases are just freed,
  so one bug is reported once.
* Every loop in the suite runs through :func:`run`, which bounds it in wall-clock
  time with a watchdog thread (``loopbreak()`` from another thread, which the
  suite checks works) and fails the test instead of hanging it.
* Time is a :class:`evcore.testing.FakeClock` wherever a timer matters; no test
  sleeps for a timer.  Real sleeps only happen where a thread must win a race on
  purpose, and are short.

>>> f = BaseFactory("select")
>>> base = f()
>>> base.method, run(base)
('select', 1)
>>> f.finish()
[]
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from ..backend import registered_backends, supported_methods
from ..base import EventBase
from ..config import EventConfig
from ..flags import EV_ET, BaseFlag, Feature

__all__ = [
    "BaseFactory",
    "BackendParam",
    "suite_test",
    "make_base_fixture",
    "make_base_fixtures",
    "backend_params",
    "run",
    "drain",
    "open_fds",
    "TEST1",
]

#: The payload libevent's regress.c sends around.
TEST1 = b"this is a test\0"

#: Default wall-clock bound of :func:`run`.
LOOP_LIMIT = 15.0


def run(base: EventBase, flags: int = 0, *, limit: float = LOOP_LIMIT) -> int:
    """``base.loop(flags)``, failing the test if it has not returned after ``limit`` seconds.

    >>> with EventBase(method="select") as b:
    ...     run(b)
    1
    """
    fired: list[bool] = []

    def _stop() -> None:
        fired.append(True)
        base.loopbreak()

    timer = threading.Timer(limit, _stop)
    timer.daemon = True
    timer.start()
    try:
        rv = base.loop(flags)
    finally:
        timer.cancel()
    if fired:
        raise AssertionError(f"{base!r}: loop({flags!r}) did not return within {limit}s")
    return rv


def drain(sock: socket.socket, limit: int = 1 << 20) -> tuple[bytes, bool]:
    """Read a non-blocking socket until it would block; return ``(data, saw_eof)``.

    >>> a, b = socket.socketpair(); a.setblocking(False)
    >>> _ = b.send(b"hi"); b.shutdown(socket.SHUT_WR)
    >>> drain(a)
    (b'hi', True)
    >>> a.close(); b.close()
    """
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return b"".join(chunks), False
        except ConnectionResetError:
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
        total += len(data)
    return b"".join(chunks), False


def open_fds() -> set[int]:
    """The fds open in this process (Linux ``/proc``; elsewhere probed with ``fstat``).

    >>> 0 in open_fds() or True
    True
    """
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # pragma: no cover - not Linux
        found = set()
        for fd in range(1024):
            try:
                os.fstat(fd)
            except OSError:
                continue
            found.add(fd)
        return found
    fds = {int(n) for n in names}
    # the directory listing itself used one fd that is closed again
    return {fd for fd in fds if _fd_alive(fd)}


def _fd_alive(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class BackendParam:
    """One parametrization of the suite: a backend method, optionally edge-triggered.

    >>> BackendParam("epoll", et=True).id
    'epoll-et'
    """

    __slots__ = ("method", "et")

    def __init__(self, method: str, et: bool = False) -> None:
        self.method = method
        self.et = et

    @property
    def id(self) -> str:
        """The test id fragment (``select``, ``epoll``, ``epoll-et``)."""
        return f"{self.method}-et" if self.et else self.method

    def __repr__(self) -> str:
        return f"BackendParam({self.method!r}, et={self.et})"


def _features_of(method: str) -> Feature:
    for cls in registered_backends():
        if cls.name == method:
            return Feature(cls.features)
    return Feature(0)


def backend_params(
    methods: Sequence[str] | None = None, *, edge_triggered: bool = False
) -> list[BackendParam]:
    """The parametrization for ``methods`` (default: :func:`evcore.supported_methods`).

    With ``edge_triggered`` every method offering ``Feature.ET`` appears twice,
    plain and ``-et``.

    >>> [p.id for p in backend_params(["select"], edge_triggered=True)]
    ['select']
    """
    if methods is None:
        methods = supported_methods()
    out = []
    for m in methods:
        out.append(BackendParam(m))
        if edge_triggered and _features_of(m) & Feature.ET:
            out.append(BackendParam(m, et=True))
    return out


class BaseFactory:
    """Makes fresh bases for one backend; at teardown checks they were left empty.

    >>> f = BaseFactory("select")
    >>> a, b = f.socketpair()
    >>> f.et, f.method, f.features
    (0, 'select', <Feature.FDS: 4>)
    >>> f.finish()
    []
    """

    def __init__(self, method: str, et: bool = False) -> None:
        self.method = method
        #: ``EV_ET`` in the edge-triggered variant, else 0: OR it into fd events.
        self.et = EV_ET if et else 0
        #: The features of the backend under test.
        self.features = _features_of(method)
        self._bases: list[EventBase] = []
        self._left: set[int] = set()
        self._socks: list[socket.socket] = []
        self._cleanups: list[Callable[[], object]] = []
        #: Set when the test body failed: teardown then frees without judging.
        self.quiet = False

    def __call__(self, config: EventConfig | None = None, *, clock: Any = None, flags: int = 0) -> EventBase:
        """A new base on this backend (``config`` may add constraints; ``flags`` are ``BaseFlag``\\ s)."""
        if flags:
            if config is None:
                config = EventConfig()
            config.set_flag(BaseFlag(flags))
        base = EventBase(config, method=self.method, clock=clock)
        self._bases.append(base)
        return base

    def leave(self, base: EventBase) -> None:
        """Allow ``base`` to end the test with events still in it (it is freed quietly)."""
        self._left.add(id(base))

    def socketpair(
        self, family: int | None = None, *, blocking: bool = False
    ) -> tuple[socket.socket, socket.socket]:
        """A connected pair (AF_UNIX by default), non-blocking unless asked, closed at teardown."""
        if family is None or family == getattr(socket, "AF_UNIX", None):
            a, b = socket.socketpair()
        else:
            a, b = _inet_pair(family)
        a.setblocking(blocking)
        b.setblocking(blocking)
        self._socks += [a, b]
        return a, b

    def own(self, sock: socket.socket) -> socket.socket:
        """Close ``sock`` at teardown."""
        self._socks.append(sock)
        return sock

    def on_teardown(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` at teardown (before bases are checked)."""
        self._cleanups.append(fn)

    def finish(self) -> list[str]:
        """Check and free every base, close every socket; return the problems found."""
        problems = []
        for fn in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                fn()
        for base in self._bases:
            if base._freed:
                continue
            if id(base) not in self._left:
                n = base.num_events()
                if n:
                    problems.append(f"{base!r} was left with {n} events (num_events() != 0)")
            base.free()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self._bases.clear()
        self._socks.clear()
        self._cleanups.clear()
        return problems

    def __repr__(self) -> str:
        return f"<BaseFactory method={self.method!r} et={bool(self.et)}>"


def _inet_pair(family: int) -> tuple[socket.socket, socket.socket]:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as lst:
        lst.bind((host, 0))
        lst.listen(1)
        a = socket.create_connection(lst.getsockname()[:2])
        b, _ = lst.accept()
    return a, b


def make_base_fixture(
    methods: Sequence[str] | None = None, *, edge_triggered: bool = False, name: str | None = None
) -> Any:
    """A pytest fixture yielding a :class:`BaseFactory` per backend in ``methods``.

    ``methods`` defaults to :func:`evcore.supported_methods` at collection time.
    ``edge_triggered`` adds the ``-et`` variants; ``name`` is the fixture's name
    (default ``io_base_factory`` with ``edge_triggered``, else ``base_factory``):
    assign the result to a module global of the same name.

    >>> callable(make_base_fixture(["select"]))
    True
    """
    params = backend_params(methods, edge_triggered=edge_triggered)
    if name is None:
        name = "io_base_factory" if edge_triggered else "base_factory"

    def _factory(request: Any) -> Iterator[BaseFactory]:
        p: BackendParam = request.param
        factory = BaseFactory(p.method, et=p.et)
        try:
            yield factory
        finally:
            problems = factory.finish()
        if problems and not factory.quiet:
            pytest.fail("; ".join(problems))

    _factory.__name__ = name
    return pytest.fixture(params=params, ids=[p.id for p in params], name=name)(_factory)


def make_base_fixtures(methods: Sequence[str] | None = None) -> tuple[Any, Any]:
    """``(base_factory, io_base_factory)`` for ``methods``: what a module importing the suite defines.

    >>> bf, iof = make_base_fixtures(["select"])
    >>> callable(bf) and callable(iof)
    True
    """
    return (
        make_base_fixture(methods, name="base_factory"),
        make_base_fixture(methods, edge_triggered=True, name="io_base_factory"),
    )


def suite_test(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a suite test: after its body passes, check its factories' bases were left empty.

    The wrapper keeps ``fn``'s signature (pytest reads it through ``__wrapped__``).

    >>> def test_x(base_factory): base_factory()
    >>> suite_test(test_x)(base_factory=BaseFactory("select"))
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        factories = [v for v in (*args, *kwargs.values()) if isinstance(v, BaseFactory)]
        try:
            fn(*args, **kwargs)
        except BaseException:
            for f in factories:
                f.quiet = True
            raise
        problems = [p for f in factories for p in f.finish()]
        if problems:
            raise AssertionError("; ".join(problems))

    return wrapper
