"""``Buffer``: libevent 2.0's ``evbuffer``, a byte queue kept as a chain of chunks.

Facts and theory of operation
-----------------------------
* The bytes live in a ``collections.deque`` of :class:`~evbuffer.chunk.Chunk` objects
  (``_chunks``), never in one big ``bytes``: chunk ``i`` holds ``buf[off:end]``. ``_len`` is
  the sum of ``end - off`` over the chain. Every chunk in the chain holds at least one byte.
* Appends copy into the free space of the last chunk, then into a new chunk whose size doubles
  from ``MIN_CHUNK`` up to ``GROW_MAX`` (a single bigger add gets one chunk of its own size; a
  big immutable ``bytes`` is kept by reference, not copied). ``_spare`` is at most one empty
  writable chunk outside the chain, made by ``expand``/``reserve_space``/``read_from`` and used
  by the next append that does not fit in the last chunk.
* Draining advances the first chunk's ``off`` and drops whole chunks: what stays is never
  copied. A dropped chunk is *released*: a reference's ``cleanup(data)`` runs, a file is
  closed. Releases and callbacks run after the buffer is consistent again.
* Moving data moves chunks: ``add_buffer``/``prepend_buffer`` splice the other chain in
  (swapping deques, so the cost is that of the shorter chain: O(1) into an empty buffer);
  ``remove_buffer(dst, n)`` moves whole chunks and splits at most one (a file chunk or a big
  part of a memory chunk without copying; small or referenced parts are copied).
* Only ``pullup`` makes bytes contiguous, by copying the first ``n`` bytes into one new chunk.
* A ``BufferPtr``'s hint (chunk index and start) is valid while ``_gen`` is unchanged; every
  change at the front (drain, prepend, pullup, splitting a chunk) increments ``_gen``.
  ``_locate`` walks from the nearer end of the chain (or from a valid hint).
* ``_eol_hint = (style, k)``: ``readln(style)`` found no end-of-line starting before ``k``, so
  the next ``readln`` resumes there: a long line arriving in many reads is scanned once, not
  once per read. Drains subtract from ``k``; a prepend forgets it.
* Freezing (libevent's ``evbuffer_freeze``) makes operations on that end raise
  :class:`FrozenError`: adds, ``read_from``, ``reserve_space``/``commit_space`` and moves into
  the buffer for the end; drains, removes, ``readln``, ``write_to``, prepends and moves out of
  the buffer for the start. Reading (``copyout``, ``peek``, ``search``, ``pullup``) is
  always allowed.
* Sizes are ints (``operator.index``); a negative size is a ``ValueError`` except where
  libevent gives -1 a meaning ("everything": ``peek``, ``pullup``, ``write_to``; "a good
  size": ``read_from``); sizes beyond the length clamp (``drain``, ``remove``, ``copyout``,
  ``remove_buffer``); ``expand``/``reserve_space`` refuse more than ``max_alloc`` bytes with
  :class:`SizeLimitError` rather than allocate it (libevent's CVE-2014-6272 came from such
  arithmetic on hostile lengths).
* Memoryviews from ``peek``/``pullup``/``reserve_space`` stay readable as long as they are
  held, but, as libevent's pointers, show the buffer's bytes only until the next change.
* A buffer is not locked: use it from one thread at a time (bufferevents lock around it).

>>> buf = Buffer()
>>> buf.add(b"hello, ")
>>> buf.add_reference(b"world\\n")
>>> len(buf), bytes(buf)
(13, b'hello, world\\n')
>>> buf.readln(EOL.LF)
b'hello, world'
"""

from __future__ import annotations

import operator
import os
import stat
from collections import deque
from collections.abc import Callable
from itertools import islice
from typing import Any

from . import buffer_io
from .callbacks import CallbackHost
from .chunk import (
    FILE_PIECE,
    GROW_MAX,
    MIN_CHUNK,
    SHARE_MIN,
    ZERO_COPY_MIN,
    Chunk,
    as_bytes_like,
    new_file,
    new_memory,
    new_reference,
    release_all,
)
from .eol import EOL, find_eol
from .errors import EvbufferError, FrozenError, SizeLimitError
from .ptr import BufferPtr, PtrHow
from .search import find

__all__ = ["Buffer"]

_END_FROZEN = "the end of this buffer is frozen"
_START_FROZEN = "the start of this buffer is frozen"


def _size(n: Any, what: str = "n") -> int:
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"{what} must be >= 0, not {n}")
    return n


class Buffer(CallbackHost):
    """A queue of bytes kept as a chain of chunks (libevent's ``evbuffer``).

    ``Buffer(data=None, *, read_min=4096, read_max=262144, max_alloc=1 << 30)``:
    ``data`` is added first; ``read_from(fd)`` without a size reads ``read_min`` bytes at
    first and doubles that up to ``read_max`` while reads fill what they asked for (halving it
    after reads that get less than a quarter); ``max_alloc`` is the most ``expand`` and
    ``reserve_space`` allocate. A buffer is a context manager whose exit calls :meth:`free`.

    >>> with Buffer(b"abc") as buf:
    ...     buf.prepend(b">")
    ...     buf.remove(2), len(buf)
    (b'>a', 2)
    """

    max_alloc: int = 1 << 30
    read_min: int = 4096
    read_max: int = 256 * 1024

    def __init__(
        self,
        data: Any = None,
        *,
        read_min: int | None = None,
        read_max: int | None = None,
        max_alloc: int | None = None,
    ) -> None:
        self._chunks: deque[Chunk] = deque()
        self._len = 0
        self._spare: Chunk | None = None
        self._resv: list[tuple[Chunk, int, int]] | None = None
        self._freeze_start = False
        self._freeze_end = False
        self._gen = 0
        self._eol_hint: tuple[EOL, int] | None = None
        self._init_callbacks()
        if max_alloc is not None:
            self.max_alloc = _size(max_alloc, "max_alloc")
        if read_min is not None:
            self.read_min = _size(read_min, "read_min")
        if read_max is not None:
            self.read_max = _size(read_max, "read_max")
        if not 0 < self.read_min <= self.read_max:
            raise ValueError("need 0 < read_min <= read_max")
        self._read_hint = self.read_min
        if data is not None:
            obj, n = as_bytes_like(data)
            if n:
                self._append(obj, n)

    # ------------------------------------------------------------------ python protocol
    def __len__(self) -> int:
        return self._len

    def __bytes__(self) -> bytes:
        return self._copy(0, self._len)

    def __repr__(self) -> str:
        frozen = "".join(
            f" frozen_{name}" for name, on in (("start", self._freeze_start), ("end", self._freeze_end)) if on
        )
        return f"<Buffer len={self._len} chunks={len(self._chunks)}{frozen}>"

    def __enter__(self) -> Buffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __del__(self) -> None:
        chunks = getattr(self, "_chunks", None)
        if chunks:
            self._chunks = deque()
            release_all(chunks)

    # ------------------------------------------------------------------ adding
    def add(self, data: Any) -> None:
        """Append a copy of ``data`` (any bytes-like object).

        >>> buf = Buffer(); buf.add(b"ab"); buf.add(bytearray(b"c")); bytes(buf)
        b'abc'
        """
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        t = type(data)
        if t is bytes or t is bytearray:
            n = len(data)
        else:
            data, n = as_bytes_like(data)
        if n:
            self._append(data, n)
            if self._cbs:
                self._changed(n, 0)

    def add_printf(self, fmt: str, *args: Any) -> int:
        """Append ``(fmt % args)`` encoded as UTF-8; returns the number of bytes added.

        >>> buf = Buffer(); buf.add_printf("%s=%d\\r\\n", "x", 5)
        5
        """
        data = (fmt % args if args else fmt).encode()
        self.add(data)
        return len(data)

    def add_reference(self, data: Any, cleanup: Callable[[Any], object] | None = None) -> None:
        """Append ``data`` without copying it; ``cleanup(data)`` runs once, when its last byte
        is drained (or copied away by ``pullup``) or the buffer is freed.

        ``data`` must not change while it is in the buffer (a ``bytearray`` is pinned: it
        cannot be resized meanwhile).

        >>> buf = Buffer(); buf.add_reference(b"abc", lambda d: print("done with", d))
        >>> buf.drain(2); buf.drain(1)
        done with b'abc'
        """
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        if cleanup is not None and not callable(cleanup):
            raise TypeError("cleanup must be callable")
        ch = new_reference(data, cleanup)
        n = ch.end
        if not n:
            ch.release()
            return
        self._chunks.append(ch)
        self._len += n
        if self._cbs:
            self._changed(n, 0)

    def add_file(self, f: Any, offset: int = 0, length: int = -1) -> None:
        """Append ``length`` bytes of file ``f`` from ``offset`` (-1: to the end of the file).

        ``f`` is an int fd or a file object; the buffer owns it from now on and closes it
        when its bytes are drained (or the buffer freed). The bytes are not read now: they go
        to a socket with ``os.sendfile``, and are read with ``os.pread`` when needed.

        >>> import tempfile
        >>> f = tempfile.TemporaryFile(); _ = f.write(b"0123456789"); f.flush()
        >>> buf = Buffer(); buf.add_file(f, 2, 5); buf.remove(5)
        b'23456'
        >>> f.closed
        True
        """
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        if isinstance(f, int):
            fd = operator.index(f)
        elif hasattr(f, "fileno"):
            fd = f.fileno()
        else:
            raise TypeError(f"add_file() needs an int fd or a file object, not {type(f).__name__}")
        offset = _size(offset, "offset")
        length = operator.index(length)
        st = os.fstat(fd)
        if length < 0:
            if length != -1:
                raise ValueError(f"length must be >= 0 or -1, not {length}")
            length = st.st_size - offset
            if length < 0:
                raise ValueError(f"offset {offset} is beyond the end of the file ({st.st_size} bytes)")
        elif stat.S_ISREG(st.st_mode) and offset + length > st.st_size:
            raise ValueError(f"offset + length ({offset + length}) is beyond the end of the file")
        ch = new_file(fd, f, offset, length)
        if not length:
            ch.release()
            return
        self._chunks.append(ch)
        self._len += length
        if self._cbs:
            self._changed(length, 0)

    def prepend(self, data: Any) -> None:
        """Insert a copy of ``data`` at the front.

        >>> buf = Buffer(b"world"); buf.prepend(b"hello "); bytes(buf)
        b'hello world'
        """
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        obj, n = as_bytes_like(data)
        if not n:
            return
        chunks = self._chunks
        if not chunks:
            self._append(obj, n)
        else:
            first = chunks[0]
            off = first.off
            if first.writable and off - first.lo >= n:
                first.buf[off - n : off] = obj
                first.off = off - n
            else:
                cap = n if n > MIN_CHUNK else MIN_CHUNK
                ch = new_memory(cap)
                ch.buf[cap - n :] = obj
                ch.off = cap - n
                ch.end = cap
                chunks.appendleft(ch)
            self._len += n
        self._front_changed(None)
        if self._cbs:
            self._changed(n, 0)

    # ------------------------------------------------------------------ moving
    def add_buffer(self, other: Buffer) -> None:
        """Move all of ``other``'s bytes to the end of this buffer (its chunks, not copies).

        >>> a, b = Buffer(b"ab"), Buffer(b"cd"); a.add_buffer(b); bytes(a), len(b)
        (b'abcd', 0)
        """
        self._check_other(other)
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        if other._freeze_start:
            raise FrozenError("the start of the source buffer is frozen")
        n = other._len
        if not n:
            return
        mine, theirs = self._chunks, other._chunks
        if len(theirs) > len(mine):
            theirs.extendleft(reversed(mine))
            mine.clear()
            self._chunks, other._chunks = theirs, mine
        else:
            mine.extend(theirs)
            theirs.clear()
        self._len += n
        other._len = 0
        other._front_changed(n)
        self._moved(other, n)

    def prepend_buffer(self, other: Buffer) -> None:
        """Move all of ``other``'s bytes to the front of this buffer.

        >>> a, b = Buffer(b"cd"), Buffer(b"ab"); a.prepend_buffer(b); bytes(a)
        b'abcd'
        """
        self._check_other(other)
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        if other._freeze_start:
            raise FrozenError("the start of the source buffer is frozen")
        n = other._len
        if not n:
            return
        mine, theirs = self._chunks, other._chunks
        if len(theirs) >= len(mine):
            theirs.extend(mine)
            mine.clear()
            self._chunks, other._chunks = theirs, mine
        else:
            mine.extendleft(reversed(theirs))
            theirs.clear()
        self._len += n
        other._len = 0
        self._front_changed(None)
        other._front_changed(n)
        self._moved(other, n)

    def remove_buffer(self, dst: Buffer, n: int) -> int:
        """Move up to ``n`` bytes from the front of this buffer to the end of ``dst``.

        Whole chunks move; at most one is split. Returns the number of bytes moved (0 when
        ``dst`` is this buffer, as libevent).

        >>> a, b = Buffer(b"abcdef"), Buffer(); a.remove_buffer(b, 4), bytes(a), bytes(b)
        (4, b'ef', b'abcd')
        """
        if not isinstance(dst, Buffer):
            raise TypeError(f"expected a Buffer, not {type(dst).__name__}")
        n = _size(n)
        if dst is self:
            return 0
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        if dst._freeze_end:
            raise FrozenError("the end of the destination buffer is frozen")
        total = self._len
        if not n or not total:
            return 0
        if n >= total:
            dst.add_buffer(self)
            return total
        src, out = self._chunks, dst._chunks
        moved = 0
        while True:
            ch = src[0]
            length = ch.end - ch.off
            if moved + length > n:
                break
            src.popleft()
            out.append(ch)
            moved += length
        dst._len += moved
        rem = n - moved
        if rem:
            ch = src[0]
            if ch.buf is None:
                out.append(ch.split_file(rem))
                dst._len += rem
            elif rem >= SHARE_MIN and ch.cleanup is None:
                a = ch.off
                out.append(Chunk(ch.buf, ch.mv, a, a + rem, a + rem, False))
                dst._len += rem
                ch.off = a + rem
                if ch.writable:
                    ch.lo = a + rem  # the part before is dst's now: never prepend into it
            else:
                dst._append(ch.mv[ch.off : ch.off + rem], rem)  # type: ignore[index]
                ch.off += rem
        self._len -= n
        self._front_changed(n)
        self._moved(self, n, dst)
        return n

    # ------------------------------------------------------------------ removing and reading
    def drain(self, n: int) -> None:
        """Discard the first ``n`` bytes (all of them if ``n`` is larger than the length).

        >>> buf = Buffer(b"abcdef"); buf.drain(4); bytes(buf)
        b'ef'
        """
        n = _size(n)
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        if n > self._len:
            n = self._len
        if n:
            self._finish(self._drain_front(n), 0, n)

    def remove(self, n: int) -> bytes:
        """Remove and return the first ``n`` bytes (fewer if the buffer is shorter).

        >>> buf = Buffer(b"abcdef"); buf.remove(4), buf.remove(10), buf.remove(1)
        (b'abcd', b'ef', b'')
        """
        n = _size(n)
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        if n > self._len:
            n = self._len
        if not n:
            return b""
        data = self._copy(0, n)
        self._finish(self._drain_front(n), 0, n)
        return data

    def copyout(self, n: int, start: BufferPtr | int | None = None) -> bytes:
        """Return a copy of up to ``n`` bytes from ``start`` (default 0) without removing them.

        >>> buf = Buffer(b"abcdef"); buf.copyout(3), buf.copyout(10, 4), len(buf)
        (b'abc', b'ef', 6)
        """
        n = _size(n)
        pos = self._pos(start)
        if pos > self._len:
            raise ValueError(f"start {pos} is beyond the end of the buffer ({self._len} bytes)")
        if n > self._len - pos:
            n = self._len - pos
        return self._copy(pos, n, start if isinstance(start, BufferPtr) else None)

    def readln(self, eol: EOL | int = EOL.ANY) -> bytes | None:
        """Remove and return one line without its end-of-line, or ``None`` if none is complete.

        >>> buf = Buffer(b"a\\r\\nb\\nc"); buf.readln(), buf.readln(EOL.LF), buf.readln()
        (b'a', b'b', None)
        """
        if self._freeze_start:
            raise FrozenError(_START_FROZEN)
        eol = EOL(eol)
        hint = self._eol_hint
        r = find_eol(self, hint[1] if hint is not None and hint[0] == eol else 0, eol)
        if r is None:
            self._eol_hint = (eol, self._len - 1 if self._len else 0)
            return None
        pos, k = r[0], r[1]
        line = self._copy(0, pos)
        self._finish(self._drain_front(pos + k), 0, pos + k)
        return line

    def peek(self, n: int = -1, start: BufferPtr | int | None = None) -> list[memoryview]:
        """Views of the chunks holding the first ``n`` bytes from ``start`` (-1: all of them).

        Whole chunks: together they cover at least ``n`` bytes (the first begins at
        ``start``). Views of the buffer's own memory are writable; nothing is copied, except
        that parts of file segments are read into memory.

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

        >>> buf = Buffer(b"ab"); buf.add_reference(b"cd"); buf.get_contiguous_space()
        2
        """
        if not self._chunks:
            return 0
        ch = self._chunks[0]
        return ch.end - ch.off

    # ------------------------------------------------------------------ searching
    def search(
        self, what: Any, start: BufferPtr | int | None = None, end: BufferPtr | int | None = None
    ) -> BufferPtr | None:
        """Where ``what`` first occurs wholly inside ``[start, end)``, or ``None``.

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

    def search_eol(
        self, start: BufferPtr | int | None = None, eol: EOL | int = EOL.ANY
    ) -> tuple[BufferPtr | None, int]:
        """The first end-of-line at or after ``start``: ``(pointer to it, its length)``.

        ``(None, 0)`` when there is none.

        >>> ptr, n = Buffer(b"ab\\r\\ncd").search_eol(eol=EOL.CRLF); ptr.pos, n
        (2, 2)
        """
        eol = EOL(eol)
        s = self._pos(start)
        if s > self._len:
            return None, 0
        r = find_eol(self, s, eol, start if isinstance(start, BufferPtr) else None)
        if r is None:
            return None, 0
        return self._ptr(r[0], r[2], r[3]), r[1]

    def ptr_set(
        self, ptr: BufferPtr | int, position: int | None = None, how: PtrHow | int = PtrHow.SET
    ) -> BufferPtr:
        """Move ``ptr`` in place to ``position`` (``PtrHow.SET``) or by ``position`` (``ADD``).

        ``ptr_set(ptr, position, how)`` is libevent's ``evbuffer_ptr_set`` and returns ``ptr``;
        ``ptr_set(position)`` returns a new pointer. A position beyond the end (the end itself
        is allowed) or a negative one raises ``ValueError`` and leaves ``ptr`` unchanged.

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
            pos = _size(position, "position")
            if PtrHow(how) == PtrHow.ADD:
                pos += ptr.pos
        else:
            pos = _size(ptr, "position")
            if position is not None:
                PtrHow(position)  # ptr_set(pos, how): validate how
        if pos > self._len:
            raise ValueError(f"position {pos} is beyond the end of the buffer ({self._len} bytes)")
        if isinstance(ptr, BufferPtr):
            ptr.pos = pos
            return ptr
        return BufferPtr(pos)

    # ------------------------------------------------------------------ space
    def expand(self, n: int) -> None:
        """Make sure the next append of up to ``n`` bytes needs no allocation.

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

        >>> buf = Buffer(); v = buf.reserve_space(5)[0]; v[:2] = b"hi"; buf.commit_space(2)
        >>> bytes(buf)
        b'hi'
        """
        n = self._alloc_size(n)
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        if operator.index(n_vec) < 1:
            raise ValueError("n_vec must be >= 1")
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

        >>> buf = Buffer(); buf.commit_space(0)
        Traceback (most recent call last):
        ...
        evbuffer.errors.EvbufferError: commit_space() without reserve_space()
        """
        n = _size(n)
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        resv = self._resv
        if resv is None:
            raise EvbufferError("commit_space() without reserve_space()")
        if n > sum(k for _, _, k in resv):
            raise ValueError(f"cannot commit {n} bytes: only {sum(k for _, _, k in resv)} were reserved")
        chunks = self._chunks
        for ch, s, _ in resv:
            if ch is self._spare:
                ok = ch.end == 0
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

    # ------------------------------------------------------------------ file descriptors
    def read_from(self, fd: Any, howmuch: int = -1) -> int:
        """Read from ``fd`` (int fd or socket) into free chunk space; returns the byte count.

        0 means end of file. ``BlockingIOError`` when ``fd`` would block. ``howmuch=-1``
        reads a size that adapts to the traffic (see the class); any size is capped at
        ``read_max``. Socket objects are read with ``recv_into``/``recvmsg_into``, ints and
        other objects with ``fileno()`` with ``os.readv``.

        >>> import os
        >>> r, w = os.pipe(); _ = os.write(w, b"data"); os.close(w)
        >>> buf = Buffer(); buf.read_from(r), buf.read_from(r), bytes(buf)
        (4, 0, b'data')
        >>> os.close(r)
        """
        return buffer_io.read_from(self, fd, operator.index(howmuch))

    def write_to(self, fd: Any, howmuch: int = -1) -> int:
        """Write up to ``howmuch`` bytes (-1: all) to ``fd``; drain and return what was written.

        Memory chunks go out together in one ``sendmsg``/``os.writev`` (at most
        ``buffer_io.IOV_MAX`` of them per call); file segments with ``os.sendfile``. Raises
        ``BlockingIOError`` only when nothing could be written.

        >>> import os
        >>> r, w = os.pipe(); buf = Buffer(b"ab"); buf.add_reference(b"cd")
        >>> buf.write_to(w), os.read(r, 10), len(buf)
        (4, b'abcd', 0)
        >>> os.close(r); os.close(w)
        """
        return buffer_io.write_to(self, fd, operator.index(howmuch))

    # ------------------------------------------------------------------ freezing, freeing
    def freeze(self, start: bool) -> None:
        """Refuse changes at the start (``start=True``) or at the end of the buffer.

        >>> buf = Buffer(b"x"); buf.freeze(True); buf.is_frozen(True)
        True
        """
        if start:
            self._freeze_start = True
        else:
            self._freeze_end = True

    def unfreeze(self, start: bool) -> None:
        """Undo :meth:`freeze` for that end.

        >>> buf = Buffer(b"x"); buf.freeze(True); buf.unfreeze(True); buf.drain(1)
        """
        if start:
            self._freeze_start = False
        else:
            self._freeze_end = False

    def is_frozen(self, start: bool) -> bool:
        """Whether that end is frozen.

        >>> Buffer().is_frozen(False)
        False
        """
        return self._freeze_start if start else self._freeze_end

    def clear(self) -> None:
        """Drain everything (running cleanups and callbacks) and drop spare space.

        >>> buf = Buffer(b"abc"); buf.clear(); len(buf)
        0
        """
        self.drain(self._len)
        self._spare = None

    def free(self) -> None:
        """Release everything now: cleanups run, files close, callbacks are dropped.

        Idempotent; the buffer is empty (and still usable) afterwards. Callbacks are not
        called for what ``free`` discards (as libevent's ``evbuffer_free``).

        >>> buf = Buffer(); buf.add_reference(b"x", lambda d: print("cleanup")); buf.free()
        cleanup
        """
        chunks = list(self._chunks)
        self._chunks.clear()
        self._len = 0
        self._spare = None
        self._resv = None
        self._front_changed(None)
        for h in self._cbs:
            h._buffer = None
        self._cbs.clear()
        self._n_add = self._n_del = 0
        release_all(chunks)

    # ------------------------------------------------------------------ internals
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

    def _room(self) -> int:
        """Free space at the end of the last chunk."""
        if not self._chunks:
            return 0
        tail = self._chunks[-1]
        return tail.cap - tail.end

    def _alloc_size(self, n: Any) -> int:
        n = _size(n)
        if n > self.max_alloc:
            raise SizeLimitError(f"refusing to allocate {n} bytes (more than max_alloc={self.max_alloc})")
        return n

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

    def _ptr(self, pos: int, i: int, g: int) -> BufferPtr:
        p = BufferPtr(pos)
        if i >= 0 and pos < self._len:
            p._remember(self, i, g)
        return p

    def _check_other(self, other: Any) -> None:
        if not isinstance(other, Buffer):
            raise TypeError(f"expected a Buffer, not {type(other).__name__}")
        if other is self:
            raise ValueError("cannot move a buffer into itself")

    def _front_changed(self, removed: int | None) -> None:
        """The front changed: ``removed`` bytes drained, or ``None`` for anything else."""
        self._gen += 1
        hint = self._eol_hint
        if hint is not None:
            self._eol_hint = None if removed is None or hint[1] <= removed else (hint[0], hint[1] - removed)

    def _drain_front(self, n: int) -> list[Chunk]:
        """Drop the first ``0 < n <= len`` bytes; returns the chunks to release."""
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
        return dead

    def _finish(self, dead: list[Chunk], added: int, deleted: int) -> None:
        try:
            if dead:
                release_all(dead)
        finally:
            if self._cbs:
                self._changed(added, deleted)

    def _moved(self, src: Buffer, n: int, dst: Buffer | None = None) -> None:
        """Callbacks for ``n`` bytes moved from ``src`` to ``dst`` (default: self)."""
        dst = self if dst is None else dst
        if src._cbs:
            src._changed(0, n)
        if dst._cbs:
            dst._changed(n, 0)

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
        i, g = self._locate(pos, hint)
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
