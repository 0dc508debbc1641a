"""What sibling packages use of a base beyond DESIGN.md's API: virtual events; and ``FakeClock``'s edges."""

from __future__ import annotations

import threading
import time

import pytest

from evcore import EVENT_BASE_COUNT_VIRTUAL, EVLOOP_NONBLOCK, EventBase
from evcore.testing import FakeClock


def test_virtual_events_keep_the_loop_alive() -> None:
    """``_virtual_add`` keeps an empty loop running; ``_virtual_del`` from a thread wakes and ends it."""
    with EventBase(method="select") as base:
        base._virtual_add()
        assert base.num_events(EVENT_BASE_COUNT_VIRTUAL) == 1
        assert base.loop(EVLOOP_NONBLOCK) == 0  # not empty: a pass that ran nothing

        def later() -> None:
            time.sleep(0.05)
            base._virtual_del()

        t = threading.Thread(target=later)
        t0 = time.monotonic()
        t.start()
        try:
            assert base.loop() == 1
        finally:
            t.join(10)
        assert time.monotonic() - t0 < 5
        assert base.num_events() == 0
        base._virtual_add()
        base._virtual_del()  # from the loop's own thread (not looping): no wakeup needed
        assert base.loop() == 1


def test_fake_clock_edges() -> None:
    """A fake clock never goes backwards and says what it is."""
    clock = FakeClock(start=3.0, autojump=True)
    with pytest.raises(ValueError):
        clock.advance(-0.1)
    clock.advance(0)
    assert clock.monotonic() == 3.0
    assert "autojump=True" in repr(clock) and "3.0" in repr(clock)
