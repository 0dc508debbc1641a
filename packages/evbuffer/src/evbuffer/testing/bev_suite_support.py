"""Kinds, the ``bev_pair_factory`` fixture and helpers of the bufferevent conformance suite.

Facts and theory of operation
-----------------------------
* A *kind* (:class:`BevKind`) says how to make two connected bufferevents and what
  they can do.  Its ``make(base, options) -> (a, b)`` returns a connected pair on
  ``base`` (it may run the loop to finish a handshake, and must pass ``options``,
  ``BEV_OPT`` bits, to the bufferevents the test talks to): what ``a`` writes
  ``b`` reads and back; each end owns what lies under it, so freeing an end
  closes its side of the connection (the peer sees ``READING|EOF``).  Optional
  hooks and capability flags (``None``/``False`` when the kind cannot) gate the
  tests that need them:

  - ``half_close(bev)``: stop ``bev``'s sending side for good once its output
    drained (sockets: ``shutdown(SHUT_WR)``; pairs: ``flush(EV_WRITE,
    FINISHED)``); the peer reads what was sent, then ``READING|EOF``, and may still
    write back;
  - ``abort(bev)``: free ``bev`` abortively, so that the peer's writes fail with
    an errno (sockets: ``SO_LINGER`` 0 then close);
  - ``new_unconnected(base, options) -> bev`` and ``connect(bev, address)``: a
    bufferevent not yet connected, and the way to connect it to a listening
    socket (it reports ``CONNECTED`` or ``ERROR`` with :attr:`socket_error`);
  - ``has_fd``: a real fd lies at the bottom (found through ``get_underlying()``);
  - ``io_chunks``: ``set_max_single_read``/``write`` bound each system call;
  - ``rate_limits``: ``set_rate_limit`` bounds the bytes moved per tick (sockets and pairs;
    libevent 2.0's filters ignore rate limits, and so do ours);
  - ``flush_moves``: ``flush(EV_WRITE, FLUSH)`` moves queued data to the peer even
    when the peer does not read, and returns 1 (pairs, filters); else ``flush``
    returns 0 and moves nothing (sockets, as libevent);
  - ``all_backends``: run over every backend of :func:`evcore.supported_methods`,
    not only the default one.

* The fixture (:func:`make_bev_fixture`) is parametrized over kinds (and
  backends) and yields a :class:`BevPairFactory`: ``factory.base()`` makes a base
  on the backend under test, ``factory(base, options=0)`` a connected pair.  Every
  base and bufferevent it made is freed at teardown; :func:`bev_test` (which wraps
  every suite test) first frees the test's bufferevents and fails a passing test
  whose bases still hold events: freeing a bufferevent must leave nothing behind.

* Every loop runs through :func:`run_until` / :func:`run_for`: ``EVLOOP_ONCE``
  passes with a 10 ms ticker so a pass never blocks for long, bounded in
  wall-clock time; a condition not reached in time fails the test.

>>> f = BevPairFactory(KINDS["pair"], "select")
>>> base = f.base()
>>> a, b = f(base)
>>> b.enable(EV_READ); a.write(b"hi")
>>> run_until(base, lambda: len(b.input) == 2)
>>> f.finish()
[]
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from evcore import (
    EV_PERSIST,
    EV_READ,
    EV_WRITE,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
    Event,
    EventBase,
    supported_methods,
)

from ..bufferevent import BEV_EVENT, BEV_OPT, Bufferevent, FlushMode

__all__ = [
    "BevKind",
    "BevPairFactory",
    "KINDS",
    "BEV_KIND_NAMES",
    "FILTER_UNDERLYING_HIGH",
    "Recorder",
    "Source",
    "Feeder",
    "bev_kind_params",
    "make_bev_fixture",
    "bev_test",
    "requires",
    "run_until",
    "run_for",
    "clog",
    "held_bytes",
    "bottom",
    "bottom_fd",
    "fd_is_open",
    "LOOP_LIMIT",
    "RW",
]

RW = EV_READ | EV_WRITE

#: Default wall-clock bound of :func:`run_until`, in seconds.
LOOP_LIMIT = 20.0

#: Write high watermark the filter kinds set on the bufferevent under a filter: without one a
#: pass-through filter moves everything written to it below at once, so a writer watching the
#: filter's output (the le-proxy pattern) never sees it fill up (libevent behaves the same).
FILTER_UNDERLYING_HIGH = 256 * 1024


# ---------------------------------------------------------------------------- running the loop
def _noop(fd: int, what: int, arg: Any) -> None:
    pass


def run_until(
    base: EventBase, pred: Callable[[], object], timeout: float = LOOP_LIMIT, what: str = ""
) -> None:
    """Run ``EVLOOP_ONCE`` passes until ``pred()`` is true; fail after ``timeout`` seconds.

    >>> with EventBase(method="select") as b:
    ...     run_until(b, lambda: True)
    """
    deadline = time.monotonic() + timeout
    ticker = Event(base, -1, EV_PERSIST, _noop)
    ticker.add(0.01)
    try:
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached within {timeout}s: {what or pred!r}")
            base.loop(EVLOOP_ONCE)
    finally:
        ticker.free()


def run_for(base: EventBase, seconds: float) -> None:
    """Run the loop for about ``seconds`` (callbacks run; nothing is awaited).

    >>> with EventBase(method="select") as b:
    ...     run_for(b, 0.01)
    """
    end = time.monotonic() + seconds
    ticker = Event(base, -1, EV_PERSIST, _noop)
    ticker.add(min(0.01, max(seconds, 0.001)))
    try:
        base.loop(EVLOOP_NONBLOCK)
        while time.monotonic() < end:
            base.loop(EVLOOP_ONCE)
    finally:
        ticker.free()


def run_passes(base: EventBase, seconds: float) -> int:
    """Run ``EVLOOP_ONCE`` passes for about ``seconds``; return how many passes ran.

    Each pass waits at most 50 ms, so a loop that is not spinning makes about
    ``seconds / 0.05`` passes; a test that counts passes tells an idle loop from a
    busy one (the listener's EMFILE tests do).

    >>> with EventBase(method="select") as b:
    ...     run_passes(b, 0.01) >= 1
    True
    """
    deadline = time.monotonic() + seconds
    tick = Event.timer(base, _noop)
    passes = 0
    try:
        while time.monotonic() < deadline:
            tick.add(min(0.05, max(0.0, deadline - time.monotonic())))
            base.loop(EVLOOP_ONCE)
            passes += 1
    finally:
        tick.free()
    return passes


# ---------------------------------------------------------------------------- stacks
def bottom(bev: Bufferevent) -> Bufferevent:
    """The lowest bufferevent of a stack (``bev`` itself when nothing is under it).

    >>> with EventBase(method="select") as base:
    ...     a, b = Bufferevent.pair(base)
    ...     bottom(a) is a
    True
    """
    seen = 0
    while True:
        u = bev.get_underlying()
        if u is None or seen > 16:
            return bev
        bev = u
        seen += 1


def bottom_fd(bev: Bufferevent) -> int:
    """The fd at the bottom of ``bev``'s stack, or -1."""
    return bottom(bev).fileno()


def held_bytes(*bevs: Bufferevent) -> int:
    """Bytes held in the input and output buffers of ``bevs`` and every bufferevent under them."""
    total = 0
    for bev in bevs:
        seen = 0
        cur: Bufferevent | None = bev
        while cur is not None and seen < 16:
            total += len(cur.input) + len(cur.output)
            cur = cur.get_underlying()
            seen += 1
    return total


def fd_is_open(fd: int) -> bool:
    """Whether ``fd`` is an open descriptor."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _socket_of(bev: Bufferevent) -> socket.socket:
    """A socket object sharing the bottom fd (detach it after use)."""
    fd = bottom_fd(bev)
    if fd < 0:
        raise AssertionError(f"{bev!r} has no fd")
    return socket.socket(fileno=fd)


def _shutdown_wr(bev: Bufferevent) -> None:
    s = _socket_of(bev)
    try:
        s.shutdown(socket.SHUT_WR)
    finally:
        s.detach()


def _abort_socket(bev: Bufferevent) -> None:
    s = _socket_of(bev)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.detach()
    bev.free()


def _finish_flush(bev: Bufferevent) -> None:
    bev.flush(EV_WRITE, FlushMode.FINISHED)


# ---------------------------------------------------------------------------- kinds
@dataclasses.dataclass(frozen=True)
class BevKind:
    """One kind of bufferevent under test, with what it can do (see the module docs).

    >>> KINDS["pair"].half_close is not None, KINDS["pair"].has_fd
    (True, False)
    """

    name: str
    make: Callable[[EventBase, int], tuple[Bufferevent, Bufferevent]]
    half_close: Callable[[Bufferevent], None] | None = None
    abort: Callable[[Bufferevent], None] | None = None
    new_unconnected: Callable[[EventBase, int], Bufferevent] | None = None
    connect: Callable[[Bufferevent, Any], None] | None = None
    has_fd: bool = False
    io_chunks: bool = False
    rate_limits: bool = False
    flush_moves: bool = False
    all_backends: bool = False

    @property
    def supports_half_close(self) -> bool:
        """Whether :attr:`half_close` is provided.

        >>> KINDS["socket-tcp"].supports_half_close
        True
        """
        return self.half_close is not None

    def capable(self, capability: str) -> bool:
        """Whether this kind has ``capability`` (a hook name or a flag name).

        >>> KINDS["pair"].capable("abort")
        False
        """
        return bool(getattr(self, capability))


def _tcp_socketpair() -> tuple[socket.socket, socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lst:
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        a = socket.create_connection(lst.getsockname())
        b, _ = lst.accept()
    for s in (a, b):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return a, b


def _socket_bevs(
    pair: tuple[socket.socket, socket.socket], base: EventBase, options: int
) -> tuple[Bufferevent, Bufferevent]:
    opts = options | BEV_OPT.CLOSE_ON_FREE
    return Bufferevent.socket(base, pair[0], opts), Bufferevent.socket(base, pair[1], opts)


def _make_socket_unix(base: EventBase, options: int) -> tuple[Bufferevent, Bufferevent]:
    return _socket_bevs(socket.socketpair(), base, options)


def _make_socket_tcp(base: EventBase, options: int) -> tuple[Bufferevent, Bufferevent]:
    return _socket_bevs(_tcp_socketpair(), base, options)


def _filter_over(u: Bufferevent, options: int) -> Bufferevent:
    u.setwatermark(EV_WRITE, 0, FILTER_UNDERLYING_HIGH)
    return Bufferevent.filter(u, None, None, options | BEV_OPT.CLOSE_ON_FREE)


def _under_options(options: int) -> int:
    return options & BEV_OPT.THREADSAFE


def _make_filter_pair(base: EventBase, options: int) -> tuple[Bufferevent, Bufferevent]:
    ua, ub = Bufferevent.pair(base, _under_options(options))
    return _filter_over(ua, options), _filter_over(ub, options)


def _make_filter_socket(base: EventBase, options: int) -> tuple[Bufferevent, Bufferevent]:
    ua, ub = _socket_bevs(_tcp_socketpair(), base, _under_options(options))
    return _filter_over(ua, options), _filter_over(ub, options)


def _new_socket(base: EventBase, options: int) -> Bufferevent:
    return Bufferevent.socket(base, None, options | BEV_OPT.CLOSE_ON_FREE)


def _connect_socket(bev: Bufferevent, address: Any) -> None:
    bev.connect(address)


def _new_filter_socket(base: EventBase, options: int) -> Bufferevent:
    u = Bufferevent.socket(base, None, _under_options(options) | BEV_OPT.CLOSE_ON_FREE)
    return _filter_over(u, options)


def _connect_filter_socket(bev: Bufferevent, address: Any) -> None:
    bottom(bev).connect(address)


def _half_close_filter_socket(bev: Bufferevent) -> None:
    bev.flush(EV_WRITE, FlushMode.FINISHED)
    _shutdown_wr(bev)


#: The kinds evbuffer itself provides, by name.
KINDS: dict[str, BevKind] = {
    k.name: k
    for k in (
        BevKind(
            "socket-unix",
            _make_socket_unix,
            half_close=_shutdown_wr,
            abort=_abort_socket,
            new_unconnected=_new_socket,
            connect=_connect_socket,
            has_fd=True,
            io_chunks=True,
            rate_limits=True,
            all_backends=True,
        ),
        BevKind(
            "socket-tcp",
            _make_socket_tcp,
            half_close=_shutdown_wr,
            abort=_abort_socket,
            new_unconnected=_new_socket,
            connect=_connect_socket,
            has_fd=True,
            io_chunks=True,
            rate_limits=True,
            all_backends=True,
        ),
        BevKind("pair", Bufferevent.pair, half_close=_finish_flush, rate_limits=True, flush_moves=True),
        BevKind("filter-pair", _make_filter_pair, half_close=_finish_flush, flush_moves=True),
        BevKind(
            "filter-socket",
            _make_filter_socket,
            half_close=_half_close_filter_socket,
            abort=_abort_socket,
            new_unconnected=_new_filter_socket,
            connect=_connect_filter_socket,
            has_fd=True,
            flush_moves=True,
        ),
    )
}

#: The names of :data:`KINDS`, in order.
BEV_KIND_NAMES: tuple[str, ...] = tuple(KINDS)


# ---------------------------------------------------------------------------- the factory
class BevPairFactory:
    """Makes bases and connected bufferevents of one kind on one backend; cleans up after the test.

    >>> f = BevPairFactory(KINDS["socket-unix"], "select")
    >>> a, b = f(f.base())
    >>> f.kind.name, f.method, bottom_fd(a) >= 0
    ('socket-unix', 'select', True)
    >>> f.finish()
    []
    """

    def __init__(self, kind: BevKind, method: str) -> None:
        self.kind = kind
        self.method = method
        self._bases: list[EventBase] = []
        self._bevs: list[Bufferevent] = []
        self._socks: list[socket.socket] = []
        #: Set when the test body failed: teardown then frees without judging.
        self.quiet = False

    def base(self) -> EventBase:
        """A fresh base on the backend under test (freed at teardown)."""
        base = EventBase(method=self.method)
        self._bases.append(base)
        return base

    def __call__(self, base: EventBase, options: int = 0) -> tuple[Bufferevent, Bufferevent]:
        """A connected pair ``(a, b)`` of this kind on ``base`` with ``options`` (``BEV_OPT``)."""
        a, b = self.kind.make(base, options)
        self.track(a, b)
        return a, b

    def track(self, *bevs: Bufferevent) -> None:
        """Free ``bevs`` (and everything under them) at teardown."""
        for bev in bevs:
            cur: Bufferevent | None = bev
            while cur is not None and cur not in self._bevs:
                self._bevs.append(cur)
                cur = cur.get_underlying()

    def __getattr__(self, name: str) -> Any:
        # capability flags and hooks of the kind: factory.has_fd, factory.half_close, ...
        return getattr(self.kind, name)

    def new_unconnected(self, base: EventBase, options: int = 0) -> Bufferevent:
        """A bufferevent of this kind that :meth:`connect` connects."""
        if self.kind.new_unconnected is None:
            raise AssertionError(f"kind {self.kind.name} cannot make unconnected bufferevents")
        bev = self.kind.new_unconnected(base, options)
        self.track(bev)
        return bev

    def listener(self, family: int = socket.AF_INET, path: str | None = None) -> socket.socket:
        """A listening socket (127.0.0.1 port 0, ``::1``, or the AF_UNIX ``path``), closed at teardown."""
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._socks.append(sock)
        if family == socket.AF_INET:
            sock.bind(("127.0.0.1", 0))
        elif family == socket.AF_INET6:
            sock.bind(("::1", 0))
        else:
            assert path is not None, "an AF_UNIX listener needs a path"
            sock.bind(path)
        sock.listen(8)
        return sock

    def own(self, sock: socket.socket) -> socket.socket:
        """Close ``sock`` at teardown."""
        self._socks.append(sock)
        return sock

    def finish(self) -> list[str]:
        """Free every bufferevent made, check the bases hold no events, free them; the problems found."""
        problems: list[str] = []
        for bev in self._bevs:
            try:
                bev.free()
            except Exception as exc:
                problems.append(f"{bev!r}.free() raised {exc!r}")
        for base in self._bases:
            if base._freed:
                continue
            n = base.num_events()
            if n:
                problems.append(f"{base!r} still holds {n} events after every bufferevent was freed")
            base.free()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()
        self._bevs.clear()
        self._bases.clear()
        self._socks.clear()
        return problems

    def __repr__(self) -> str:
        return f"<BevPairFactory kind={self.kind.name} method={self.method}>"


def bev_kind_params(
    kinds: Sequence[BevKind] | None = None, methods: Sequence[str] | None = None
) -> list[tuple[BevKind, str]]:
    """``(kind, method)`` pairs: every kind on the default backend, ``all_backends`` kinds on all.

    >>> [(k.name, m) for k, m in bev_kind_params([KINDS["pair"]], ["poll", "select"])]
    [('pair', 'poll')]
    """
    if kinds is None:
        kinds = list(KINDS.values())
    if methods is None:
        methods = supported_methods()
    out = []
    for kind in kinds:
        for m in methods if kind.all_backends else list(methods)[:1]:
            out.append((kind, m))
    return out


def make_bev_fixture(
    kinds: Sequence[BevKind] | None = None,
    methods: Sequence[str] | None = None,
    name: str = "bev_pair_factory",
) -> Any:
    """A pytest fixture yielding a :class:`BevPairFactory` per ``(kind, backend)``.

    Assign it to a module global named ``name`` next to the imported suite tests.

    >>> callable(make_bev_fixture([KINDS["pair"]], ["select"]))
    True
    """
    params = bev_kind_params(kinds, methods)

    def _fixture(request: Any) -> Iterator[BevPairFactory]:
        kind, method = request.param
        factory = BevPairFactory(kind, method)
        try:
            yield factory
        finally:
            factory.finish()

    _fixture.__name__ = name
    return pytest.fixture(params=params, ids=[f"{k.name}-{m}" for k, m in params], name=name)(_fixture)


def requires(*capabilities: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a suite test as needing kind capabilities; :func:`bev_test` skips it elsewhere.

    >>> @requires("has_fd")
    ... def test_x(bev_pair_factory): pass
    >>> test_x.bev_requires
    ('has_fd',)
    """

    def deco(fn: Callable[..., None]) -> Callable[..., None]:
        fn.bev_requires = capabilities  # type: ignore[attr-defined]
        return fn

    return deco


def bev_test(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a suite test: skip it for kinds lacking what it requires; after it passes, free and check.

    >>> def test_x(bev_pair_factory): bev_pair_factory(bev_pair_factory.base())
    >>> bev_test(test_x)(bev_pair_factory=BevPairFactory(KINDS["pair"], "select"))
    """
    needed: tuple[str, ...] = getattr(fn, "bev_requires", ())

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        factories = [v for v in (*args, *kwargs.values()) if isinstance(v, BevPairFactory)]
        for f in factories:
            missing = [c for c in needed if not f.kind.capable(c)]
            if missing:
                pytest.skip(f"kind {f.kind.name} lacks {', '.join(missing)}")
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


# ---------------------------------------------------------------------------- callbacks and data
class Recorder:
    """Installs callbacks on a bufferevent and records what they saw.

    ``drain``: the read callback takes all input (into :attr:`data`).  A callback
    arriving after the bufferevent was freed, or while :attr:`busy` is set (inside
    an API call the test marked), is recorded in :attr:`violations`.

    >>> with EventBase(method="select") as base:
    ...     a, b = Bufferevent.pair(base)
    ...     rec = Recorder(b)
    ...     b.enable(EV_READ); a.write(b"x"); run_until(base, lambda: rec.data)
    ...     bytes(rec.data), rec.violations
    ...     a.free(); b.free()
    (b'x', [])
    """

    def __init__(
        self,
        bev: Bufferevent,
        drain: bool = True,
        on_read: Callable[[Bufferevent], object] | None = None,
        on_write: Callable[[Bufferevent], object] | None = None,
        on_event: Callable[[Bufferevent, BEV_EVENT], object] | None = None,
    ) -> None:
        self.bev = bev
        self.drain = drain
        self.data = bytearray()
        self.reads = 0
        self.writes = 0
        self.events: list[BEV_EVENT] = []
        self.violations: list[str] = []
        self.busy = False
        self._on_read = on_read
        self._on_write = on_write
        self._on_event = on_event
        bev.setcb(self.readcb, self.writecb, self.eventcb, self)

    def _check(self, bev: Bufferevent, arg: Any, name: str) -> None:
        if arg is not self:
            self.violations.append(f"{name} got arg {arg!r}")
        if bev is not self.bev:
            self.violations.append(f"{name} got another bufferevent {bev!r}")
        if bev.freed:
            self.violations.append(f"{name} ran after free()")
        if self.busy:
            self.violations.append(f"{name} ran inside an API call")

    def readcb(self, bev: Bufferevent, arg: Any) -> None:
        """The read callback."""
        self._check(bev, arg, "readcb")
        self.reads += 1
        if self.drain:
            self.data += bev.read()
        if self._on_read is not None:
            self._on_read(bev)

    def writecb(self, bev: Bufferevent, arg: Any) -> None:
        """The write callback."""
        self._check(bev, arg, "writecb")
        self.writes += 1
        if self._on_write is not None:
            self._on_write(bev)

    def eventcb(self, bev: Bufferevent, what: BEV_EVENT, arg: Any) -> None:
        """The event callback."""
        self._check(bev, arg, "eventcb")
        self.events.append(BEV_EVENT(what))
        if self._on_event is not None:
            self._on_event(bev, BEV_EVENT(what))

    def saw(self, what: int) -> bool:
        """Whether some event callback got all the bits of ``what``."""
        return any(e & what == what for e in self.events)

    @contextlib.contextmanager
    def api_call(self) -> Iterator[None]:
        """Mark the body as inside an API call: a callback running now is a violation."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False


class Source:
    """Deterministic pseudo-random data in pieces, with a running digest of what it gave out.

    >>> s = Source(10, seed=1); len(s.take(4)) + len(s.take(100)), s.left
    (10, 0)
    """

    _BLOCK = 1 << 20

    def __init__(self, total: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self._block = rng.randbytes(self._BLOCK)
        self._step = rng.randrange(1, 4096) * 7 + 1
        self.total = total
        self.given = 0
        self.digest = hashlib.sha256()

    @property
    def left(self) -> int:
        """Bytes not given out yet."""
        return self.total - self.given

    def take(self, n: int) -> bytes:
        """The next ``min(n, left)`` bytes."""
        n = min(n, self.left)
        start = (self.given * 31 + self._step) % (self._BLOCK - n) if n < self._BLOCK else 0
        data = self._block[start : start + n]
        self.given += n
        self.digest.update(data)
        return data


class Feeder:
    """Writes a :class:`Source` to a bufferevent the le-proxy way: only while its output is below ``high``.

    Feeding stops while the output holds ``high`` bytes or more and resumes from the
    write callback, which runs once the output drained to ``low`` (set as the write
    low watermark).  :attr:`max_output` is the largest output length seen right after
    feeding; ``watch`` bufferevents are summed by :func:`held_bytes` into
    :attr:`max_held`.
    """

    def __init__(
        self,
        bev: Bufferevent,
        source: Source,
        high: int,
        low: int,
        chunk: int = 64 * 1024,
        watch: Sequence[Bufferevent] = (),
        rec: Recorder | None = None,
    ) -> None:
        self.bev = bev
        self.source = source
        self.high = high
        self.chunk = chunk
        self.watch = tuple(watch) or (bev,)
        self.max_output = 0
        self.max_held = 0
        self.feeds = 0
        bev.setwatermark(EV_WRITE, low, 0)
        self.rec = rec if rec is not None else Recorder(bev, drain=False)
        self.rec._on_write = lambda _bev: self.feed()

    def feed(self) -> None:
        """Write while the output is below the high mark and data is left."""
        bev = self.bev
        if bev.freed:
            return
        self.feeds += 1
        while self.source.left and len(bev.output) < self.high:
            bev.write(self.source.take(self.chunk))
        self.max_output = max(self.max_output, len(bev.output))
        self.sample()

    def sample(self) -> None:
        """Record the bytes held now."""
        self.max_held = max(self.max_held, held_bytes(*self.watch))


def clog(base: EventBase, bev: Bufferevent, limit: int = 64 << 20, step: int = 256 * 1024) -> int:
    """Write to ``bev`` (whose peer does not read) until data stays in its output; returns bytes written.

    Sockets first fill the kernel's buffers; other kinds hold data at once.
    """
    written = 0
    filler = b"\xa5" * step
    while written < limit:
        bev.write(filler)
        written += step
        for _ in range(3):
            base.loop(EVLOOP_NONBLOCK)
        if len(bev.output) >= 4 * step:
            return written
    raise AssertionError(f"{bev!r} took {written} bytes without holding any back")


#: errnos a write to a reset or closed peer may fail with.
PEER_GONE_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ESHUTDOWN})
