"""The chain of chunks under :class:`~evbuffer.Buffer`: its state and the internal moves on it.

Facts and theory of operation
-----------------------------
* The bytes live in a ``collections.deque`` of :class:`~evbuffer.chunk.Chunk` objects
  (``_chunks``), never in one big ``bytes``: chunk ``i`` holds ``buf[off:end]``. ``_len`` is
  the sum of ``end - off`` over the chain. Every chunk in the chain holds at least one byte.
* Appends (``_append``) copy into the free space of the last chunk, then into a new chunk whose
  size doubles from ``MIN_CHUNK`` up to ``GROW_MAX`` (a single bigger add gets one chunk of its
  own size; a big immutable ``bytes`` is kept by reference, not copied). ``_spare`` is at most
  one empty writable chunk outside the chain, made by ``expand``/``reserve_space``/
  ``read_from`` and used by the next append that does not fit in the last chunk.
* Recycling (``_recycle``): a memory chunk that a drain or ``write_to`` dropped whole is reused
  rather than left to the allocator, when nothing else can see it (writable, ``lo == 0``, no
  reservation): as the spare of ``_recycle_to`` (a bufferevent's output recycles into its
  input, so an echo's next read fills the chunk its last write sent: no allocation, no
  zero-filling, no page faults for large chunks), else as this buffer's own spare. Views
  handed out earlier (``peek``, ``pullup``) may then show new bytes: as documented, they show
  the buffer's bytes only until the next change. A recycled spare stays with the buffer while
  the connection is idle: at most ``read_max`` bytes (``clear()`` drops it).
* Draining (``_drain_front``) advances the first chunk's ``off`` and drops whole chunks: what
  stays is never copied. A dropped chunk is *released* (a reference's ``cleanup(data)`` runs,
  a file closes) by ``_finish``, after the buffer is consistent again, and then the callbacks
  run; the last one dropped may be recycled instead (below).
* ``_locate(pos)`` finds the chunk holding a position, walking from the nearer end of the chain
  or from a :class:`~evbuffer.BufferPtr`'s hint (chunk index and start), valid while ``_gen``
  is unchanged: every change at the front (drain, prepend, pullup, splitting a chunk)
  increments ``_gen``; appends do not move earlier chunks. ``_seek`` also splits a file chunk
  so that the position starts one, and ``_load`` reads (a piece of) a file chunk into memory:
  searches and views need bytes in memory.
* ``_eol_hint = (style, k)``: ``readln(style)`` found no end-of-line starting before ``k``, so
  the next ``readln`` resumes there: a long line arriving in many reads is scanned once, not
  once per read. Drains subtract from ``k``; anything else at the front forgets it.

>>> from evbuffer import Buffer
>>> buf = Buffer(b"abc"); buf.add_reference(b"def")
>>> buf._locate(4), buf._copy(2, 3)
((1, 3), b'cde')
"""

from __future__ import annotations

import operator
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from .callbacks import CallbackHost
from .chunk import (
    FILE_PIECE,
    GROW_MAX,
    MIN_CHUNK,
    SPARE_KEEP_MAX,
    ZERO_COPY_MIN,
    Chunk,
    new_memory,
    release_all,
)
from .errors import SizeLimitError, check_size
from .ptr import BufferPtr

if TYPE_CHECKING:
    from .eol import EOL

__all__ = ["Chain"]


class Chain(CallbackHost):
    """State and internals shared by :class:`~evbuffer.Buffer` and its mixins.

    >>> Chain()._len
    0
    """

    #: Most bytes ``expand``/``reserve_space`` allocate in one go.
    max_alloc: int = 1 << 30
    #: Smallest adaptive ``read_from`` size.
    read_min: int = 4096
    #: Largest ``read_from`` size (explicit sizes are capped to it too).
    read_max: int = 256 * 1024

    def __init__(self) -> None:
        self._chunks: deque[Chunk] = deque()
        self._len = 0
        self._spare: Chunk | None = None
        self._resv: list[tuple[Chunk, int, int]] | None = None
        self._freeze_start = False
        self._freeze_end = False
        self._gen = 0
        self._eol_hint: tuple[EOL, int] | None = None
        self._read_hint = self.read_min
        self._recycle_to: Chain | None = None
        self._init_callbacks()

    def _append(self, data: Any, n: int) -> None:
        """Append ``n`` bytes of ``data`` (bytes, bytearray or byte memoryview); no checks."""
        chunks = self._chunks
        self._len += n
        grow = 0
        room = 0
        if chunks:
            tail = chunks[-1]
            e = tail.end
            room = tail.cap - e
            if room >= n:
                tail.buf[e : e + n] = data
                tail.end = e + n
                return
            grow = tail.cap
        if n >= ZERO_COPY_MIN and type(data) is bytes:
            chunks.append(Chunk(data, memoryview(data), 0, n, n, False))
            return
        spare = self._spare
        if spare is not None and spare.cap >= n:
            self._spare = None
            spare.buf[0:n] = data
            spare.end = n
            chunks.append(spare)
            return
        if room:
            mv = memoryview(data)
            tail.buf[e : tail.cap] = mv[:room]
            tail.end = tail.cap
            data = mv[room:]
            n -= room
        cap = min(GROW_MAX, max(MIN_CHUNK, 2 * grow))
        ch = new_memory(cap if cap > n else n)
        ch.buf[0:n] = data
        ch.end = n
        chunks.append(ch)

    def _pos(self, p: BufferPtr | int | None) -> int:
        if p is None:
            return 0
        if isinstance(p, BufferPtr):
            pos = p.pos
        else:
            pos = operator.index(p)
        if pos < 0:
            raise ValueError(f"position must be >= 0, not {pos}")
        return pos

    def _front_changed(self, removed: int | None) -> None:
        """The front changed: ``removed`` bytes drained, or ``None`` for anything else."""
        self._gen += 1
        hint = self._eol_hint
        if hint is not None:
            self._eol_hint = None if removed is None or hint[1] <= removed else (hint[0], hint[1] - removed)

    def _drain_front(self, n: int) -> list[Chunk]:
        """Drop the first ``0 <= n <= len`` bytes; returns the chunks to release."""
        chunks = self._chunks
        self._len -= n
        self._front_changed(n)
        dead = []
        while n:
            ch = chunks[0]
            length = ch.end - ch.off
            if length <= n:
                dead.append(chunks.popleft())
                n -= length
            else:
                ch.off += n
                break
        if dead and self._recycle(dead[-1]):
            # The last chunk's memory is kept for the next read or append (libevent's
            # pointers are void after a change; so are our views).
            dead.pop()
        return dead

    def _recycle(self, ch: Chunk) -> bool:
        """Keep ``ch``, just drained out of the chain, as a spare if that is safe and useful.

        Only plain memory nobody else shares: writable, ``lo == 0`` (no ``remove_buffer``
        split gave its front away), and no reservation outstanding on this buffer (its views
        may point into ``ch``). It goes to ``_recycle_to``'s spare first (a bufferevent's
        output hands sent chunks to its input, whose next read fills them), replacing a
        smaller spare there unless that one is reserved, and only up to that buffer's
        ``read_max``; else it becomes this buffer's spare if the chain is empty and it is
        small (``SPARE_KEEP_MAX``). Returns whether it was kept (else the caller drops it).
        """
        if not ch.writable or ch.lo or self._resv is not None:
            return False
        to = self._recycle_to
        if to is not None and ch.cap <= to.read_max:
            spare = to._spare
            if spare is None or (spare.cap < ch.cap and to._resv is None):
                ch.off = ch.end = 0
                to._spare = ch
                return True
        if self._spare is None and not self._chunks and ch.cap <= SPARE_KEEP_MAX:
            ch.off = ch.end = 0
            self._spare = ch
            return True
        return False

    def _finish(self, dead: list[Chunk], added: int, deleted: int) -> None:
        try:
            if dead:
                release_all(dead)
        finally:
            if self._cbs:
                self._changed(added, deleted)

    def _locate(self, pos: int, hint: BufferPtr | None = None) -> tuple[int, int]:
        """``(i, g)``: chunk ``i`` holds position ``pos`` and starts at position ``g``.

        ``(len(chunks), len)`` for the end.
        """
        chunks = self._chunks
        total = self._len
        if pos >= total:
            return len(chunks), total
        if hint is not None and hint._owner is self and hint._gen == self._gen and hint._cg <= pos:
            i, g = hint._ci, hint._cg
        elif pos > total >> 1:
            i, g = len(chunks), total
            for ch in reversed(chunks):
                i -= 1
                g -= ch.end - ch.off
                if g <= pos:
                    return i, g
        else:
            i, g = 0, 0
        for ch in islice(chunks, i, None):
            length = ch.end - ch.off
            if pos < g + length:
                return i, g
            g += length
            i += 1
        raise AssertionError("position not found in chain")  # pragma: no cover

    def _seek(self, pos: int, hint: BufferPtr | None = None) -> tuple[int, int]:
        """As :meth:`_locate`, but a file chunk is split so that ``pos`` starts one."""
        i, g = self._locate(pos, hint)
        if pos > g and self._chunks[i].buf is None:
            self._chunks.insert(i, self._chunks[i].split_file(pos - g))
            self._gen += 1
            return i + 1, pos
        return i, g

    def _load(self, i: int) -> Chunk:
        """Chunk ``i``, with (the first piece of) a file chunk read into memory."""
        ch = self._chunks[i]
        if ch.buf is not None:
            return ch
        piece = ch.load(FILE_PIECE)
        if piece is None:
            return ch
        self._chunks.insert(i, piece)
        self._gen += 1
        return piece

    def _copy(self, pos: int, n: int, hint: BufferPtr | None = None) -> bytes:
        """``n`` bytes from ``pos`` (both already validated)."""
        if not n:
            return b""
        i, g = self._locate(pos, hint) if pos else (0, 0)
        chunks = self._chunks
        ch = chunks[i]
        a = ch.off + pos - g
        if ch.end - a >= n:
            return bytes(ch.read(a, a + n))
        parts = [ch.read(a, ch.end)]
        n -= ch.end - a
        for ch in islice(chunks, i + 1, None):
            length = ch.end - ch.off
            if length >= n:
                parts.append(ch.read(ch.off, ch.off + n))
                break
            parts.append(ch.read(ch.off, ch.end))
            n -= length
        return b"".join(parts)

    def _byte_at(self, pos: int) -> int:
        return self._copy(pos, 1)[0]

    def _room(self) -> int:
        """Free space at the end of the last chunk."""
        if not self._chunks:
            return 0
        tail = self._chunks[-1]
        return tail.cap - tail.end

    def _alloc_size(self, n: Any) -> int:
        size = check_size(n)
        if size > self.max_alloc:
            raise SizeLimitError(f"refusing to allocate {size} bytes (more than max_alloc={self.max_alloc})")
        return size

    def _ptr(self, pos: int, i: int, g: int) -> BufferPtr:
        p = BufferPtr(pos)
        if i >= 0 and pos < self._len:
            p._remember(self, i, g)
        return p
