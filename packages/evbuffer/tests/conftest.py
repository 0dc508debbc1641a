"""Shared test setup for evbuffer: pytest rewrites the asserts of the importable conformance suite."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("evbuffer.testing")
