"""The placeholder distribution ``evextras`` installs, imports and reports its version."""

from __future__ import annotations

import importlib
import importlib.metadata

import pytest


@pytest.mark.parametrize("name", ["evextras"])
def test_imports_and_reports_installed_version(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__version__ == importlib.metadata.version("evextras")
