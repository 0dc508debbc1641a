"""Fixtures for the backend tests: real socketpairs and pipes, closed after each test."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def pair() -> Iterator[Callable[[], tuple[socket.socket, socket.socket]]]:
    """A factory of non-blocking socketpairs, all closed at teardown."""
    made: list[socket.socket] = []

    def make() -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        made.extend((a, b))
        return a, b

    yield make
    for s in made:
        s.close()


@pytest.fixture
def pipe() -> Iterator[Callable[[], tuple[int, int]]]:
    """A factory of pipes ``(r, w)``; whatever the test left open is closed at teardown."""
    made: list[int] = []

    def make() -> tuple[int, int]:
        r, w = os.pipe()
        made.extend((r, w))
        return r, w

    yield make
    for fd in made:
        try:
            os.close(fd)
        except OSError:
            pass


def run_in_child(fn: Callable[[], int]) -> int:
    """Run ``fn`` in a forked child and return its exit status (``fn``'s result)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - measured in the child through coverage's fork patch
        code = 99
        try:
            code = fn()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def in_child() -> Callable[[Callable[[], int]], int]:
    """``in_child(fn)`` runs ``fn`` in a forked child and returns its exit code."""
    return run_in_child
