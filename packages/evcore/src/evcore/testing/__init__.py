"""Test helpers: a fake clock, and (in :mod:`evcore.testing.loop_suite`) the loop conformance suite.

>>> clock = FakeClock()
>>> clock.advance(2.5)
>>> clock.monotonic()
2.5
"""

from __future__ import annotations

import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that moves only when told: inject it with ``EventBase(clock=...)``.

    With a fake clock the base never sleeps for a timer: where it would wait for a
    deadline it polls without blocking, or, with ``autojump=True``, jumps the
    clock to that deadline (so ``loop()`` runs a whole timer schedule instantly).
    ``time()`` is wall-clock time: ``start_wall`` plus the seconds advanced.

    >>> clock = FakeClock(start=10.0, autojump=True)
    >>> clock.monotonic(), clock.autojump
    (10.0, True)
    """

    def __init__(
        self, start: float = 0.0, autojump: bool = False, start_wall: float = 1_000_000_000.0
    ) -> None:
        self._now = float(start)
        self._start = float(start)
        self._wall0 = float(start_wall)
        self.autojump = autojump
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        """The current fake monotonic time in seconds."""
        return self._now

    def time(self) -> float:
        """The current fake wall-clock time (``time.time()`` semantics).

        >>> FakeClock(start_wall=100.0).time()
        100.0
        """
        return self._wall0 + (self._now - self._start)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never backwards).

        >>> c = FakeClock(); c.advance(1); c.advance(0.5); c.monotonic()
        1.5
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += float(seconds)

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now} autojump={self.autojump}>"
