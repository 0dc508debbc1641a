"""The suite really runs each test in its own process (pytest --forked), as libevent's tinytest
does: a test that breaks process-wide state (signal handlers, the wakeup fd, fds) cannot leak it
into the next one."""

from __future__ import annotations

import os
import signal

import pytest


def test_each_test_runs_in_a_child_of_the_collecting_process(
    request: pytest.FixtureRequest, collector_pid: int
) -> None:
    if not request.config.getoption("forked", default=False):
        pytest.skip("run without --forked: isolation is not in force (nox -s tests uses it)")
    assert os.getpid() != collector_pid
    assert os.getppid() == collector_pid


@pytest.mark.parametrize("round_", [1, 2])
def test_process_state_does_not_leak_between_tests(request: pytest.FixtureRequest, round_: int) -> None:
    if not request.config.getoption("forked", default=False):
        pytest.skip("run without --forked: isolation is not in force (nox -s tests uses it)")
    # Both rounds find the default handler, whichever runs first, because each round's change
    # dies with its process.
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_DFL
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    assert signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN
