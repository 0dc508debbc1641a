"""Positions inside a buffer: :class:`BufferPtr` (libevent's ``evbuffer_ptr``) and :class:`PtrHow`.

A :class:`BufferPtr` is a byte offset from the start of a buffer (``ptr.pos``, an int) plus a
private hint: the chain index and start position of the chunk holding ``pos``, valid while the
buffer's front has not changed (the buffer counts such changes in a generation number). The hint
lets ``search``/``ptr_set(..., PtrHow.ADD)`` resume where the last one stopped instead of walking
the chain from its first chunk. Like libevent's, a pointer describes the buffer as it was:
after data is drained or prepended, ``pos`` still counts from the (new) start.

>>> from evbuffer import Buffer
>>> buf = Buffer(b"key: value\\r\\n")
>>> p = buf.search(b":")
>>> p.pos
3
>>> buf.ptr_set(p, 2, PtrHow.ADD).pos
5
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["BufferPtr", "PtrHow", "EVBUFFER_PTR_SET", "EVBUFFER_PTR_ADD"]


class PtrHow(enum.IntEnum):
    """How ``Buffer.ptr_set`` moves a pointer (libevent's ``enum evbuffer_ptr_how``).

    >>> int(PtrHow.ADD)
    1
    """

    #: Move to an absolute position.
    SET = 0
    #: Move forward by a number of bytes.
    ADD = 1


EVBUFFER_PTR_SET = PtrHow.SET
EVBUFFER_PTR_ADD = PtrHow.ADD


class BufferPtr:
    """A position in a :class:`~evbuffer.Buffer`; ``pos`` is the offset from its start.

    Build one with ``Buffer.ptr_set(pos)`` or ``BufferPtr(pos)``; ``search`` returns them.
    Two pointers compare equal when their positions are equal (a pointer also equals its
    ``int`` position); ``int(ptr)`` is ``ptr.pos``. Pointers are mutable, so unhashable.

    >>> BufferPtr(4) == 4, int(BufferPtr(7))
    (True, 7)
    """

    __slots__ = ("pos", "_owner", "_gen", "_ci", "_cg")

    def __init__(self, pos: int = 0) -> None:
        self.pos = int(pos)
        self._owner: Any = None
        self._gen = -1
        self._ci = 0
        self._cg = 0

    def _remember(self, owner: Any, ci: int, cg: int) -> None:
        """Record that chunk ``ci`` of ``owner``'s chain starts at position ``cg``."""
        self._owner = owner
        self._gen = owner._gen
        self._ci = ci
        self._cg = cg

    def __index__(self) -> int:
        return self.pos

    def __int__(self) -> int:
        return self.pos

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BufferPtr):
            return self.pos == other.pos
        if isinstance(other, int):
            return self.pos == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BufferPtr(pos={self.pos})"
