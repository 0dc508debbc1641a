"""Unit tests of :mod:`evcore.timers`: the min-heap and the common-timeout queues (libevent's ``heap/``)."""

from __future__ import annotations

import random

import pytest

from evcore.timers import CommonTimeout, TimerHeap


def test_heap_randomized() -> None:
    """``heap/randomized``: random pushes, random cancels; ``pop_due`` returns the live ones in order."""
    rng = random.Random(20)
    h = TimerHeap()
    entries = []
    for i in range(1024):
        entries.append((h.push(rng.uniform(0, 100), i), i))
    cancelled = set()
    for entry, i in rng.sample(entries, 300):
        h.cancel(entry)
        cancelled.add(i)
    assert len(h) == 1024 - 300
    live = sorted((e[0], e[1], i) for e, i in entries if i not in cancelled)
    assert h.next_deadline() == live[0][0]
    got = []
    for now in range(0, 101, 7):
        got += h.pop_due(float(now))
    got += h.pop_due(1000.0)
    assert got == [i for _, _, i in live]
    assert len(h) == 0
    assert h.next_deadline() is None
    assert h.pop_due(1e9) == []


def test_heap_equal_deadlines_fifo() -> None:
    """Entries with the same deadline come out in the order they were pushed."""
    h = TimerHeap()
    for i in range(50):
        h.push(5.0, i)
    assert h.pop_due(4.999) == []
    assert h.pop_due(5.0) == list(range(50))


def test_heap_cancel_compacts() -> None:
    """Once dead entries outnumber live ones (and there are many), the heap is rebuilt in place."""
    h = TimerHeap()
    heap_list = h._heap
    entries = [h.push(float(i), i) for i in range(200)]
    for e in entries[:150]:
        h.cancel(e)
    assert h._heap is heap_list  # same list object: the base keeps a reference to it
    assert len(heap_list) < 200
    assert len(h) == 50
    assert sorted(h.items()) == list(range(150, 200))
    assert h.next_deadline() == 150.0
    assert h.pop_due(1000.0) == list(range(150, 200))


def test_heap_next_deadline_skips_dead_top() -> None:
    """``next_deadline`` drops cancelled entries from the top."""
    h = TimerHeap()
    first = h.push(1.0, "a")
    h.push(2.0, "b")
    h.cancel(first)
    assert h.next_deadline() == 2.0
    assert len(h) == 1
    h.clear()
    assert len(h) == 0 and h.items() == [] and h.next_deadline() is None


def test_heap_pop_due_skips_dead() -> None:
    """Cancelled entries that are due are dropped silently."""
    h = TimerHeap()
    e = h.push(1.0, "a")
    h.push(1.5, "b")
    h.cancel(e)
    assert h.pop_due(2.0) == ["b"]
    assert len(h) == 0


def test_common_timeout_basics() -> None:
    """A CommonTimeout is a FIFO of deadlines: O(1) append, lazy cancel, ``float()`` is its duration."""
    ct = CommonTimeout(2)
    assert float(ct) == 2.0 and ct.duration == 2.0
    assert "2.0s" in repr(ct)
    a = ct.push(2.0, "a")
    ct.push(3.0, "b")
    ct.push(4.0, "c")
    assert ct.next_deadline() == 2.0
    CommonTimeout.cancel(a)
    assert ct.items() == ["b", "c"]
    assert ct.next_deadline() == 3.0  # the cancelled head is dropped
    out: list[str] = []
    ct.pop_due(3.5, out)
    assert out == ["b"]
    ct.clear()
    assert ct.next_deadline() is None and ct.items() == []


def test_common_timeout_out_of_order_insert() -> None:
    """A deadline earlier than the tail (a persistent event rescheduled late) is inserted in order."""
    ct = CommonTimeout(1.0)
    for d in (1.0, 2.0, 5.0):
        ct.push(d, d)
    ct.push(3.0, 3.0)  # before the tail
    ct.push(0.5, 0.5)  # before everything
    ct.push(5.0, "5-again")  # equal to the tail: after it
    out: list[object] = []
    ct.pop_due(10.0, out)
    assert out == [0.5, 1.0, 2.0, 3.0, 5.0, "5-again"]


def test_common_timeout_cancelled_due_entries_skipped() -> None:
    """Cancelled entries that come due are not returned."""
    ct = CommonTimeout(1.0)
    e = ct.push(1.0, "x")
    ct.push(1.0, "y")
    CommonTimeout.cancel(e)
    out: list[str] = []
    ct.pop_due(1.0, out)
    assert out == ["y"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_common_timeout_randomized_against_sorted(seed: int) -> None:
    """Nearly ordered pushes (as a persistent reschedule makes them) pop in sorted order."""
    rng = random.Random(seed)
    ct = CommonTimeout(1.0)
    deadlines = []
    t = 0.0
    for i in range(300):
        t += rng.uniform(0, 0.01)
        d = t - (rng.uniform(0, 0.05) if i % 7 == 0 else 0.0)
        deadlines.append(d)
        ct.push(d, i)
    out: list[int] = []
    ct.pop_due(1e9, out)
    assert [deadlines[i] for i in out] == sorted(deadlines)
