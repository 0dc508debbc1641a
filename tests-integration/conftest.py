"""Shared fixtures for the cross-package tests in tests-integration/."""

from __future__ import annotations

import os
import pathlib

import pytest

#: The repository root (where pyproject.toml holds the shared tool configuration).
ROOT = pathlib.Path(__file__).resolve().parent.parent

#: The pid of the process that imported this conftest: the pytest process (or xdist worker)
#: that collects the tests. Under ``--forked`` every test runs in a child of it.
COLLECTOR_PID = os.getpid()


@pytest.fixture
def repo_root() -> pathlib.Path:
    """The repository root directory."""
    return ROOT


@pytest.fixture
def collector_pid() -> int:
    """The pid of the process that collected the tests (see ``COLLECTOR_PID``)."""
    return COLLECTOR_PID
