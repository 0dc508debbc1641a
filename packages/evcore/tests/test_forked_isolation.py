"""Proof that the tests really run forked (one process per test, as libevent's tinytest does).

The signal, fork and debug-mode tests of the loop suite change process-wide state
(signal handlers, the wakeup fd, ``enable_debug_mode``); they are only safe because
each test runs in its own forked child.  pytest-forked silently stops forking if it
is not installed or ``--forked`` is dropped, so these two tests make that visible:

* this module is imported by the pytest process that collects it, which records
  its pid in ``_IMPORTED_BY``; a forked test runs in a child, so ``os.getpid()``
  differs (without ``--forked`` both tests fail on that first assertion);
* ``test_a_pollutes`` installs a SIGUSR1 handler, turns debug mode on and sets a
  module global; ``test_b_sees_clean_state`` (same module, collected after it, so on
  one worker it runs after it) finds none of that.
"""

from __future__ import annotations

import os
import signal

import evcore
from evcore.debug import _state

_IMPORTED_BY = os.getpid()
POLLUTED: list[str] = []


def _handler(signum: int, frame: object) -> None:
    POLLUTED.append("signal")


def test_a_pollutes() -> None:
    """Runs in a child of the collecting process and leaves process-wide state behind on purpose."""
    assert os.getpid() != _IMPORTED_BY, "not forked: run pytest with --forked"
    assert os.getppid() == _IMPORTED_BY
    signal.signal(signal.SIGUSR1, _handler)
    evcore.enable_debug_mode()
    POLLUTED.append("global")
    assert evcore.debug_mode_enabled()


def test_b_sees_clean_state() -> None:
    """Whatever ran before in this worker, none of ``test_a_pollutes``'s changes reached this process."""
    assert os.getpid() != _IMPORTED_BY, "not forked: run pytest with --forked"
    assert POLLUTED == []
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert not _state["debug"]
