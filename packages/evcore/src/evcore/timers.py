"""Timer storage: a binary min-heap for arbitrary timeouts, FIFO queues for common ones.

Facts and theory of operation
-----------------------------
* Deadlines are monotonic seconds (floats) from the base's clock.
* The heap is :mod:`heapq` over ``[deadline, seq, event]`` lists.  ``seq`` makes
  entries with equal deadlines fire in the order they were scheduled, and keeps
  comparison away from the event objects.  Cancelling an entry sets its event slot
  to ``None`` (lazy deletion, O(1)); dead entries are skipped when they reach the
  top, and the heap is rebuilt once dead entries outnumber live ones, so memory
  stays proportional to the live timers even when timeouts are reset constantly
  (idle timeouts on busy connections do exactly that).
* A :class:`CommonTimeout` (libevent's ``event_base_init_common_timeout``) is a
  duration shared by many events.  Because every event in it has the same
  duration and the clock never goes backwards, appending keeps the queue sorted
  by deadline: scheduling and cancelling are O(1), and only the queue's head is
  ever compared with the heap.  That is why common timeouts beat a heap when
  thousands of connections share one idle timeout.

Invariant: an event has at most one live timer entry; ``event._tentry`` is that
entry (or ``None``) and ``event._tcommon`` the common queue holding it (or ``None``
for the heap).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from typing import Any

__all__ = ["TimerHeap", "CommonTimeout"]


class TimerHeap:
    """A min-heap of ``[deadline, seq, event]`` entries with O(1) lazy cancellation.

    >>> h = TimerHeap()
    >>> e = h.push(5.0, "five"); _ = h.push(1.0, "one")
    >>> h.cancel(e)
    >>> h.next_deadline(), h.pop_due(10.0)
    (1.0, ['one'])
    """

    __slots__ = ("_heap", "_dead", "_seq")

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._dead = 0
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap) - self._dead

    def push(self, deadline: float, item: Any) -> list[Any]:
        """Schedule ``item`` at ``deadline``; returns the entry to cancel it with."""
        entry = [deadline, next(self._seq), item]
        heapq.heappush(self._heap, entry)
        return entry

    def cancel(self, entry: list[Any]) -> None:
        """Forget ``entry`` (it must be live)."""
        entry[2] = None
        self._dead += 1
        if self._dead > 64 and self._dead * 2 > len(self._heap):
            self.compact()

    def compact(self) -> None:
        """Drop the cancelled entries (in place: the base keeps a reference to the list)."""
        heap = self._heap
        heap[:] = [e for e in heap if e[2] is not None]
        heapq.heapify(heap)
        self._dead = 0

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or ``None`` when empty."""
        heap = self._heap
        while heap:
            top = heap[0]
            if top[2] is not None:
                return top[0]  # type: ignore[no-any-return]
            heapq.heappop(heap)
            self._dead -= 1
        return None

    def pop_due(self, now: float) -> list[Any]:
        """Remove and return the items whose deadline is ``<= now``, earliest first."""
        heap = self._heap
        out = []
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            item = entry[2]
            if item is None:
                self._dead -= 1
            else:
                entry[2] = None
                out.append(item)
        return out

    def items(self) -> list[Any]:
        """The live items, in no particular order."""
        return [e[2] for e in self._heap if e[2] is not None]

    def clear(self) -> None:
        """Drop every entry."""
        self._heap.clear()
        self._dead = 0


class CommonTimeout:
    """A timeout duration shared by many events, kept in one O(1) FIFO queue.

    Made by :meth:`evcore.EventBase.init_common_timeout`; pass it wherever a
    timeout in seconds is accepted.

    >>> ct = CommonTimeout(2.5)
    >>> ct.duration, float(ct)
    (2.5, 2.5)
    """

    __slots__ = ("duration", "_queue", "_owner", "__weakref__")

    def __init__(self, duration: float, owner: object = None) -> None:
        self.duration = float(duration)
        self._queue: deque[list[Any]] = deque()
        self._owner = owner  # the base that made it

    def __float__(self) -> float:
        return self.duration

    def __repr__(self) -> str:
        return f"<CommonTimeout {self.duration}s queued={len(self._queue)}>"

    def push(self, deadline: float, item: Any) -> list[Any]:
        """Queue ``item`` due at ``deadline``.

        Deadlines nearly always arrive in order (append, O(1)); a persistent event
        rescheduled from its previous deadline can be a little earlier than the
        tail, and is inserted in order by walking back from the tail, as libevent
        does.
        """
        entry = [deadline, item]
        q = self._queue
        if not q or q[-1][0] <= deadline:
            q.append(entry)
            return entry
        i = len(q) - 1
        while i > 0 and q[i - 1][0] > deadline:
            i -= 1
        q.insert(i, entry)
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        """Forget ``entry``; it is dropped when it reaches the head."""
        entry[1] = None

    def next_deadline(self) -> float | None:
        """The earliest live deadline in this queue, or ``None``."""
        q = self._queue
        while q:
            head = q[0]
            if head[1] is not None:
                return head[0]  # type: ignore[no-any-return]
            q.popleft()
        return None

    def pop_due(self, now: float, out: list[Any]) -> None:
        """Append to ``out`` the items due at ``now``, in order."""
        q = self._queue
        while q and q[0][0] <= now:
            entry = q.popleft()
            item = entry[1]
            if item is not None:
                entry[1] = None
                out.append(item)

    def items(self) -> list[Any]:
        """The live items."""
        return [e[1] for e in self._queue if e[1] is not None]

    def clear(self) -> None:
        """Drop every entry."""
        self._queue.clear()
