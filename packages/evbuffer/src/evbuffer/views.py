"""The parts of :class:`~evbuffer.Buffer` that hand out memoryviews.

``peek`` and ``pullup`` expose the bytes in the chain (``pullup`` copies only when the first
chunk is too short); ``expand``, ``reserve_space`` and ``commit_space`` expose free space at the
end (libevent's ``evbuffer_expand``/``evbuffer_reserve_space``/``evbuffer_commit_space``).

Facts: a reservation is a list of ``(chunk, start, length)``: a slice of the last chunk's free
space and/or of the buffer's spare chunk (an empty chunk kept outside the chain). It stays
valid while the last chunk is the same object with the same ``end`` and the spare is still
empty and still the spare; ``commit_space`` checks exactly that, so adds, reads or moves into
the buffer void it while drains at the front do not. Requests above ``max_alloc`` raise
:class:`~evbuffer.SizeLimitError` before anything is allocated.

>>> from evbuffer import Buffer
>>> buf = Buffer(b"ab")
>>> bytes(buf.pullup()), [bytes(v) for v in buf.peek()]
(b'ab', [b'ab'])
"""

from __future__ import annotations

import operator

from .chain import Chain
from .chunk import MIN_CHUNK, new_memory, release_all
from .errors import EvbufferError, FrozenError, check_size
from .ptr import BufferPtr

__all__ = ["ViewsMixin"]


class ViewsMixin(Chain):
    """Views of the bytes and of the free space (mixed into :class:`~evbuffer.Buffer`).

    >>> from evbuffer import Buffer
    >>> Buffer(b"abc").get_contiguous_space()
    3
    """

    def peek(self, n: int = -1, start: BufferPtr | int | None = None) -> list[memoryview]:
        """Views of the chunks holding the first ``n`` bytes from ``start`` (-1: all of them).

        Whole chunks: together they cover at least ``n`` bytes (the first begins at
        ``start``). Views of the buffer's own memory are writable; nothing is copied, except
        that parts of file segments are read into memory.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"abc"); buf.add_reference(b"def")
        >>> [bytes(v) for v in buf.peek()], [bytes(v) for v in buf.peek(2, 1)]
        ([b'abc', b'def'], [b'bc'])
        """
        n = operator.index(n)
        pos = self._pos(start)
        if n < 0:
            n = self._len
        if not n or pos >= self._len:
            return []
        i, g = self._seek(pos, start if isinstance(start, BufferPtr) else None)
        chunks = self._chunks
        views = []
        got = 0
        while got < n and i < len(chunks):
            ch = self._load(i)
            a = ch.off + pos - g if pos > g else ch.off
            views.append(ch.mv[a : ch.end])  # type: ignore[index]
            got += ch.end - a
            g += ch.end - ch.off
            i += 1
        return views

    def pullup(self, n: int = -1) -> memoryview | None:
        """Make the first ``n`` bytes (-1: all) contiguous and return a view of them.

        ``None`` when ``n`` is larger than the length. Copies only when the first chunk is
        shorter than ``n``.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"ab"); buf.add_reference(b"cd")
        >>> bytes(buf.pullup(3)), len(buf.peek()), buf.pullup(5)
        (b'abc', 2, None)
        """
        n = operator.index(n)
        if n < 0:
            n = self._len
        if n > self._len:
            return None
        if not n:
            return memoryview(b"")
        ch = self._load(0)
        if ch.end - ch.off >= n:
            return ch.mv[ch.off : ch.off + n]  # type: ignore[index]
        new = new_memory(n)
        out = new.buf
        chunks = self._chunks
        dead = []
        filled = 0
        while filled < n:
            ch = chunks[0]
            take = ch.end - ch.off
            if take > n - filled:
                take = n - filled
                out[filled:n] = ch.read(ch.off, ch.off + take)
                ch.off += take
            else:
                out[filled : filled + take] = ch.read(ch.off, ch.end)
                dead.append(chunks.popleft())
            filled += take
        new.end = n
        chunks.appendleft(new)
        self._gen += 1
        release_all(dead)
        return new.view()

    def get_contiguous_space(self) -> int:
        """Bytes in the first chunk (what ``pullup`` returns without copying).

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"ab"); buf.add_reference(b"cd"); buf.get_contiguous_space()
        2
        """
        if not self._chunks:
            return 0
        ch = self._chunks[0]
        return ch.end - ch.off

    def expand(self, n: int) -> None:
        """Make sure the next append of up to ``n`` bytes needs no allocation.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(); buf.expand(100); buf.add(b"x" * 100); buf.get_contiguous_space()
        100
        """
        n = self._alloc_size(n)
        if self._room() >= n:
            return
        spare = self._spare
        if spare is None or spare.cap < n:
            self._spare = new_memory(n if n > MIN_CHUNK else MIN_CHUNK)

    def reserve_space(self, n: int, n_vec: int = 1) -> list[memoryview]:
        """Writable views of ``n`` bytes of free space at the end (libevent's reserve/commit).

        With ``n_vec=1`` (default) one contiguous view of exactly ``n`` bytes; with
        ``n_vec >= 2`` the rest of the last chunk's space may come first. Write into the
        views, then :meth:`commit_space` how many bytes were written. Any change to the end
        of the buffer meanwhile voids the reservation.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(); v = buf.reserve_space(5)[0]; v[:2] = b"hi"; buf.commit_space(2)
        >>> bytes(buf)
        b'hi'
        """
        n = self._alloc_size(n)
        if self._freeze_end:
            raise FrozenError("the end of this buffer is frozen")
        if operator.index(n_vec) < 1:
            raise ValueError("n_vec must be >= 1")
        if not n:
            self._resv = []
            return []
        room = self._room()
        if room >= n:
            tail = self._chunks[-1]
            resv = [(tail, tail.end, n)]
        else:
            use = room if n_vec >= 2 else 0
            spare = self._spare
            if spare is None or spare.cap < n - use:
                spare = self._spare = new_memory(n - use if n - use > MIN_CHUNK else MIN_CHUNK)
            resv = [(spare, 0, n - use)]
            if use:
                tail = self._chunks[-1]
                resv.insert(0, (tail, tail.end, use))
        self._resv = resv
        return [ch.mv[s : s + k] for ch, s, k in resv if k]  # type: ignore[index]

    def commit_space(self, n: int) -> None:
        """Add the first ``n`` bytes written into the last :meth:`reserve_space` views.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(); buf.commit_space(0)
        Traceback (most recent call last):
        ...
        evbuffer.errors.EvbufferError: commit_space() without reserve_space()
        """
        n = check_size(n)
        if self._freeze_end:
            raise FrozenError("the end of this buffer is frozen")
        resv = self._resv
        if resv is None:
            raise EvbufferError("commit_space() without reserve_space()")
        if n > sum(k for _, _, k in resv):
            raise ValueError(f"cannot commit {n} bytes: only {sum(k for _, _, k in resv)} were reserved")
        chunks = self._chunks
        for ch, s, _ in resv:
            if ch is self._spare:
                ok = s == 0 and ch.end == 0
            else:
                ok = bool(chunks) and chunks[-1] is ch and ch.end == s
            if not ok:
                self._resv = None
                raise EvbufferError("the reservation was voided by a change to the end of the buffer")
        self._resv = None
        left = n
        for ch, s, k in resv:
            if not left:
                break
            take = k if k < left else left
            ch.end = s + take
            if ch is self._spare:
                self._spare = None
                chunks.append(ch)
            left -= take
        if n:
            self._len += n
            if self._cbs:
                self._changed(n, 0)
