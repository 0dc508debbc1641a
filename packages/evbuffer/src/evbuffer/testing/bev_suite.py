"""evbuffer's bufferevent conformance suite: one set of tests, run on every bufferevent kind.

Every kind (socket over a socketpair and over TCP, pair, filters over pairs and
over sockets; TLS in evbufferevent-ssl; completion ports in evbackends-iocp) runs
the same tests.  A test module imports them and defines the fixture they take::

    from evbuffer.testing.bev_suite import *  # noqa: F403
    from evbuffer.testing.bev_suite import make_bev_fixture

    bev_pair_factory = make_bev_fixture()            # evbuffer's own kinds

A package with another kind describes it with :class:`BevKind` and passes it in::

    from evbuffer.testing.bev_suite import BevKind, make_bev_fixture

    def make(base, options):                         # -> (a, b), connected, each owning its side
        ...

    TLS = BevKind("tls-socket", make, half_close=None, abort=..., has_fd=True, all_backends=True)
    bev_pair_factory = make_bev_fixture([TLS])

The fixture yields a :class:`BevPairFactory`: ``factory.base()`` gives a fresh
:class:`evcore.EventBase` on the backend under test, ``factory(base, options=0)`` a
connected pair ``(a, b)``; the kind's capability flags and hooks read through it
(``factory.has_fd``, ``factory.half_close(bev)``).  Tests needing a capability the
kind lacks are skipped with a reason naming it.  Kinds with ``all_backends`` run
over every method of :func:`evcore.supported_methods`, others over the default.

Every test here is wrapped by :func:`bev_test`: after a passing body, every
bufferevent the factory made is freed and the bases must then hold no events.
Every loop is bounded in time (:func:`run_until`); timeouts use real time with
short values (50-150 ms).  Run it forked (``pytest --forked``): tests use threads
and many fds.

This file's name does not match ``test_*.py``, so pytest never collects it from the
source tree; its ``test_*`` functions are collected where they are imported.  The
tests live in ``bev_suite_data`` (order, volume, watermarks, memory),
``bev_suite_events`` (EOF, half-close, errors, connect, timeouts) and
``bev_suite_lifecycle`` (free, callbacks, deferral, threads, enable, flush).

>>> "test_large_transfer_checksum" in __all__ and "make_bev_fixture" in __all__
True
"""

from __future__ import annotations

from . import bev_suite_data, bev_suite_events, bev_suite_lifecycle
from .bev_suite_support import (
    BEV_KIND_NAMES,
    FILTER_UNDERLYING_HIGH,
    KINDS,
    BevKind,
    BevPairFactory,
    Feeder,
    Recorder,
    Source,
    bev_kind_params,
    bev_test,
    bottom,
    bottom_fd,
    clog,
    held_bytes,
    make_bev_fixture,
    requires,
    run_for,
    run_until,
)

_MODULES = (bev_suite_data, bev_suite_events, bev_suite_lifecycle)

#: Every test function of the suite, by module.
SUITE_TESTS: tuple[str, ...] = tuple(name for mod in _MODULES for name in mod.__all__)

for _mod in _MODULES:
    for _name in _mod.__all__:
        globals()[_name] = bev_test(getattr(_mod, _name))
del _mod, _name

__all__ = [
    "BEV_KIND_NAMES",
    "FILTER_UNDERLYING_HIGH",
    "KINDS",
    "SUITE_TESTS",
    "BevKind",
    "BevPairFactory",
    "Feeder",
    "Recorder",
    "Source",
    "bev_kind_params",
    "bev_test",
    "bottom",
    "bottom_fd",
    "clog",
    "held_bytes",
    "make_bev_fixture",
    "requires",
    "run_for",
    "run_until",
    *SUITE_TESTS,
]
