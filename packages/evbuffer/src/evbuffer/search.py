"""Substring search across a buffer's chunks (``Buffer.search``).

Facts and theory of operation
-----------------------------
A buffer's bytes are split over chunks, so a match may straddle chunk boundaries (even several,
when chunks are shorter than the needle). The search visits each chunk once, in order:

1. the *window*: the last ``m - 1`` bytes seen before this chunk (``tail``) followed by the
   first ``m - 1`` bytes of this chunk. Anything found there straddles the boundary (neither
   part alone can hold ``m`` bytes), and it starts before anything wholly inside this chunk;
2. the chunk itself, with the C ``find`` of its storage (``bytes``/``bytearray``/``mmap``);
3. ``tail`` becomes the last ``m - 1`` bytes seen so far.

A straddling match longer than the window is found at a later boundary; that is still in
order, because a chunk shorter than ``m - 1`` bytes cannot hold a match of its own. The cost
is one C ``find`` per chunk plus ``O(m)`` bytes copied per chunk: no per-byte Python loop.
File chunks are read into memory (in pieces of ``FILE_PIECE``) as the search reaches them.
The range is ``[start, end)``: a match must end at or before ``end`` (libevent's
``evbuffer_search_range``).

This module reads the buffer's private chain (``_chunks``, ``_locate``, ``_load``): it is
part of :class:`~evbuffer.Buffer`, kept in its own file.

>>> from evbuffer import Buffer
>>> buf = Buffer()
>>> for part in (b"ab", b"c", b"de"): buf.add_reference(part)
>>> find(buf, b"bcd", 0, len(buf))[0]
1
"""

from __future__ import annotations

from typing import Any

from .chain import Chain
from .chunk import as_bytes_like
from .errors import check_size
from .ptr import BufferPtr, PtrHow

__all__ = ["find", "SearchMixin"]


def find(
    buf: Chain, what: bytes, start: int, end: int, hint: BufferPtr | None = None
) -> tuple[int, int, int] | None:
    """First ``what`` in ``buf[start:end]``: ``(pos, chunk_index, chunk_start)`` or ``None``.

    ``chunk_index`` is -1 when the match straddles chunks (no position hint to keep).
    Requires ``0 <= start`` and ``end <= len(buf)``.

    >>> from evbuffer import Buffer
    >>> find(Buffer(b"hello"), b"l", 0, 5)
    (2, 0, 0)
    >>> find(Buffer(b"hello"), b"lo", 0, 4) is None
    True
    """
    m = len(what)
    if end - start < m:
        return None
    i, g = buf._seek(start, hint)
    if m == 0:
        return start, i, g
    keep = m - 1
    tail = b""
    while g < end:
        ch = buf._load(i)
        length = ch.end - ch.off
        a = ch.off + (start - g if start > g else 0)
        b = ch.off + (length if end - g > length else end - g)
        if tail:
            window = tail + ch.buf[a : min(b, a + keep)]
            p = window.find(what)
            if p >= 0:
                return g + (a - ch.off) - len(tail) + p, -1, 0
        p = ch.find(what, a, b)
        if p >= 0:
            return g + p - ch.off, i, g
        if keep:
            seg = bytes(ch.buf[max(a, b - keep) : b])
            tail = seg if len(seg) == keep else (tail + seg)[-keep:]
        g += length
        i += 1
    return None


class SearchMixin(Chain):
    """``Buffer.search`` and ``Buffer.ptr_set`` (mixed into :class:`~evbuffer.Buffer`).

    >>> from evbuffer import Buffer
    >>> Buffer(b"abc").search(b"c").pos
    2
    """

    def search(
        self, what: Any, start: BufferPtr | int | None = None, end: BufferPtr | int | None = None
    ) -> BufferPtr | None:
        """Where ``what`` first occurs wholly inside ``[start, end)``, or ``None``.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"one two two"); buf.search(b"two").pos, buf.search(b"two", 5).pos
        (4, 8)
        >>> buf.search(b"two", 5, 10) is None
        True
        """
        obj, _ = as_bytes_like(what)
        what = obj if type(obj) is bytes else bytes(obj)
        s = self._pos(start)
        e = self._len if end is None else self._pos(end)
        if s > self._len:
            return None
        r = find(self, what, s, min(e, self._len), start if isinstance(start, BufferPtr) else None)
        return None if r is None else self._ptr(*r)

    def ptr_set(
        self, ptr: BufferPtr | int, position: int | None = None, how: PtrHow | int = PtrHow.SET
    ) -> BufferPtr:
        """Move ``ptr`` in place to ``position`` (``PtrHow.SET``) or by ``position`` (``ADD``).

        ``ptr_set(ptr, position, how)`` is libevent's ``evbuffer_ptr_set`` and returns ``ptr``;
        ``ptr_set(position)`` returns a new pointer. A position beyond the end (the end itself
        is allowed) or a negative one raises ``ValueError`` and leaves ``ptr`` unchanged.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"abcdef"); p = buf.ptr_set(2); buf.ptr_set(p, 3, PtrHow.ADD).pos
        5
        >>> buf.ptr_set(p, 7)
        Traceback (most recent call last):
        ...
        ValueError: position 7 is beyond the end of the buffer (6 bytes)
        """
        if isinstance(ptr, BufferPtr):
            if position is None:
                raise TypeError("ptr_set(ptr, position, how) needs a position")
            pos = check_size(position, "position")
            if PtrHow(how) == PtrHow.ADD:
                pos += ptr.pos
        else:
            pos = check_size(ptr, "position")
            if position is not None:
                PtrHow(position)  # ptr_set(pos, how): validate how
        if pos > self._len:
            raise ValueError(f"position {pos} is beyond the end of the buffer ({self._len} bytes)")
        if isinstance(ptr, BufferPtr):
            ptr.pos = pos
            return ptr
        return BufferPtr(pos)
