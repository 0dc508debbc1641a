"""evcore's loop conformance suite: libevent 2.0's ``test/regress.c`` main group, as importable tests.

Every backend runs the same suite.  A test module of a backend package imports the
tests and defines the two fixtures they take::

    from evcore.testing.loop_suite import *  # noqa: F403
    from evcore.testing.loop_suite import make_base_fixtures

    base_factory, io_base_factory = make_base_fixtures(["epoll", "poll"])

Every test is re-exported here wrapped by :func:`suite_test`, which fails a test
whose body passed but left events in a base it made.

``make_base_fixtures(methods)`` (default: :func:`evcore.supported_methods` at
collection time) parametrizes ``base_factory`` over the methods and
``io_base_factory`` over them plus an ``-et`` variant for each backend with
``Feature.ET``.  Both yield a :class:`BaseFactory`: call it (``factory(config=None,
*, clock=None, flags=0)``) for a fresh :class:`evcore.EventBase` on the backend under
test.  At teardown every base it made must hold no events (``num_events() == 0``)
unless the test said otherwise; leftovers fail the test.  Run the suite forked
(``pytest --forked``): signal, fork and debug-mode tests change process-wide state.

This file's name does not match ``test_*.py``, so pytest never collects it from the
source tree; its ``test_*`` functions are collected where they are imported.  The
tests live in ``loop_suite_io`` (fd events), ``loop_suite_timers``,
``loop_suite_control`` (loop control, priorities, activation), ``loop_suite_events``
(misuse, errors, introspection),
``loop_suite_signals``, ``loop_suite_threads`` and ``loop_suite_process`` (fork,
debug mode, configuration); each names the libevent test it mirrors.

>>> "test_simpleread" in __all__ and "make_base_fixtures" in __all__
True
"""

from __future__ import annotations

from . import (
    loop_suite_control,
    loop_suite_events,
    loop_suite_io,
    loop_suite_process,
    loop_suite_signals,
    loop_suite_threads,
    loop_suite_timers,
)
from .loop_suite_support import (
    TEST1,
    BackendParam,
    BaseFactory,
    backend_params,
    drain,
    make_base_fixture,
    make_base_fixtures,
    open_fds,
    run,
    suite_test,
)

_MODULES = (
    loop_suite_io,
    loop_suite_timers,
    loop_suite_control,
    loop_suite_events,
    loop_suite_signals,
    loop_suite_threads,
    loop_suite_process,
)

#: Every test function of the suite, by module.
SUITE_TESTS: tuple[str, ...] = tuple(name for mod in _MODULES for name in mod.__all__)

# Re-export every test wrapped by suite_test (leftover events fail the test itself).
for _mod in _MODULES:
    for _name in _mod.__all__:
        globals()[_name] = suite_test(getattr(_mod, _name))
del _mod, _name

__all__ = [
    "BackendParam",
    "BaseFactory",
    "SUITE_TESTS",
    "TEST1",
    "backend_params",
    "drain",
    "make_base_fixture",
    "make_base_fixtures",
    "open_fds",
    "run",
    "suite_test",
    *SUITE_TESTS,
]
