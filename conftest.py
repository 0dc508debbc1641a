"""Repository-wide pytest hooks: a hanging test must fail, never hang the whole run.

Facts and theory of operation
-----------------------------
* pytest-timeout arms its timer in ``pytest_runtest_protocol`` unless ``timeout_func_only`` is
  set. With pytest-forked that hook runs in the xdist worker, the *parent* of the forked test, so
  a test that hangs makes the timer kill the worker, while the forked child lives on, holding the
  worker's pipes: xdist never sees the worker go and the run never ends.
* So the root ``pyproject.toml`` sets ``timeout_func_only = true``: pytest-timeout then arms its
  timer in ``pytest_runtest_call``, which pytest-forked runs in the child. A hanging test
  function dumps every thread's stack and ends its own process, which pytest-forked reports as a
  crash of that one test.
* That leaves fixture setup and teardown unguarded; :class:`_Watchdog` covers them. It is armed
  in the process that runs the test (the forked child under ``--forked``) from the start of setup
  to the end of teardown, with the test's timeout plus a margin (so pytest-timeout's report for
  the call phase comes first), and it ends the process the same way (stacks, then ``os._exit``).
  It is a thread, never ``SIGALRM``: the signal tests own the signal handlers.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
from collections.abc import Generator

import pytest

#: Seconds the watchdog allows beyond the test's own timeout (setup plus teardown).
WATCHDOG_MARGIN = 30.0


class _Watchdog:
    """A one-shot timer that dumps all stacks and ends the process when it fires.

    >>> dog = _Watchdog("doc::example", 60.0)
    >>> dog.cancel()
    """

    def __init__(self, nodeid: str, seconds: float) -> None:
        self._nodeid = nodeid
        self._seconds = seconds
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:  # pragma: no cover - it ends the process
        sys.stderr.write(
            f"\n+++ watchdog: {self._nodeid} still running after {self._seconds:g} s "
            "(setup + call + teardown); stacks follow, then this test's process exits +++\n"
        )
        sys.stderr.flush()
        faulthandler.dump_traceback(all_threads=True)
        os._exit(1)

    def cancel(self) -> None:
        """Disarm the watchdog."""
        self._timer.cancel()


def _timeout_of(item: pytest.Item) -> float:
    """The test's timeout: its ``timeout`` marker, else --timeout / the ini value; 0 means none."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout", 0)
    else:
        value = item.config.getoption("timeout", None)
        if value is None:
            try:
                value = item.config.getini("timeout")
            except ValueError:  # pytest-timeout is not installed: no ini value of that name
                value = 0
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


_ARMED: dict[str, _Watchdog] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    seconds = _timeout_of(item)
    if seconds > 0:
        _ARMED[item.nodeid] = _Watchdog(item.nodeid, seconds + WATCHDOG_MARGIN)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        dog = _ARMED.pop(item.nodeid, None)
        if dog is not None:
            dog.cancel()
