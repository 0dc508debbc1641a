"""The loop suite on a backend that uses the raw-dispatch hot path (``raw_table`` + ``dispatch_raw``).

None of the backends shipped with evcore itself use that path (epoll in evbackends-unix
may), so this module runs the whole conformance suite on ``select`` wrapped to report
raw codes: the base must translate them through ``raw_table`` exactly as it would
the translated ``dispatch`` results.  The backend is registered per test (each runs
forked), so it never shows up in other tests' ``supported_methods()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest

from evcore import backend as backend_mod
from evcore.backend import BADFD, register_backend
from evcore.flags import EV_READ, EV_WRITE
from evcore.select_backend import SelectBackend
from evcore.testing.loop_suite import *  # noqa: F403
from evcore.testing.loop_suite import make_base_fixtures

# raw code: bit 0 readable, bit 1 writable, bit 2 closed behind our back
_TABLE = [0] * 8
for _raw in range(8):
    _TABLE[_raw] = (EV_READ if _raw & 1 else 0) | (EV_WRITE if _raw & 2 else 0)
    if _raw & 4:
        _TABLE[_raw] = BADFD


def _to_raw(events: int) -> int:
    if events >= BADFD:
        return 4
    return (1 if events & EV_READ else 0) | (2 if events & EV_WRITE else 0)


class RawSelectBackend(SelectBackend):
    """``select`` reporting kernel-style raw codes through ``dispatch_raw``."""

    name = "rawselect"
    raw_table = _TABLE

    def dispatch_raw(self, timeout: float | None) -> Iterable[tuple[int, int]]:
        return [(fd, _to_raw(events)) for fd, events in self.dispatch(timeout)]


@pytest.fixture(autouse=True)
def _raw_backend_registered() -> Iterator[None]:
    register_backend(RawSelectBackend)
    try:
        yield
    finally:
        backend_mod._manual.pop("rawselect", None)


base_factory, io_base_factory = make_base_fixtures(["rawselect"])


def test_raw_backend_is_the_one_under_test(base_factory: BaseFactory) -> None:  # noqa: F405
    """The bases of this module really use the raw path."""
    base = base_factory()
    assert base.method == "rawselect"
    assert base._backend.raw_table is _TABLE
