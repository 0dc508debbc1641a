"""``Buffer``: libevent 2.0's ``evbuffer``, a byte queue kept as a chain of chunks.

Facts and theory of operation
-----------------------------
* The bytes live in a chain of chunks (see :mod:`evbuffer.chain` for the chain's facts:
  appends, drains, positions, the readln resume hint; :mod:`evbuffer.chunk` for chunks).
  Draining never copies what stays; dropped chunks are *released* (cleanups run, files
  close) after the buffer is consistent again, then callbacks run.
* Moving data moves chunks: ``add_buffer``/``prepend_buffer`` splice the other chain in
  (swapping deques, so the cost is that of the shorter chain: O(1) into an empty buffer);
  ``remove_buffer(dst, n)`` moves whole chunks and splits at most one (a file chunk or a big
  part of a memory chunk without copying; small or referenced parts are copied).
* Only ``pullup`` makes bytes contiguous, by copying the first ``n`` bytes into one new chunk.
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
>>> from evbuffer import EOL
>>> buf.readln(EOL.LF)
b'hello, world'
"""

from __future__ import annotations

import operator
import os
import stat
from collections import deque
from collections.abc import Callable
from typing import Any

from . import buffer_io
from .chunk import (
    MIN_CHUNK,
    SHARE_MIN,
    Chunk,
    as_bytes_like,
    new_file,
    new_memory,
    new_reference,
    release_all,
)
from .eol import EolMixin
from .errors import FrozenError, check_size
from .ptr import BufferPtr
from .search import SearchMixin
from .views import ViewsMixin

__all__ = ["Buffer"]

_END_FROZEN = "the end of this buffer is frozen"
_START_FROZEN = "the start of this buffer is frozen"


class Buffer(SearchMixin, EolMixin, ViewsMixin):
    """A queue of bytes kept as a chain of chunks (libevent's ``evbuffer``).

    ``Buffer(data=None, *, read_min=4096, read_max=262144, max_alloc=1 << 30)``:
    ``data`` is added first; ``read_from(fd)`` reads at most ``read_min`` bytes at first and
    doubles that up to ``read_max`` while reads fill what they were offered (halving it after
    reads that get less than a quarter); ``max_alloc`` is the most ``expand`` and
    ``reserve_space`` allocate. A buffer is a context manager whose exit calls :meth:`free`.

    >>> with Buffer(b"abc") as buf:
    ...     buf.prepend(b">")
    ...     buf.remove(2), len(buf)
    (b'>a', 2)
    """

    def __init__(
        self,
        data: Any = None,
        *,
        read_min: int | None = None,
        read_max: int | None = None,
        max_alloc: int | None = None,
    ) -> None:
        super().__init__()
        if max_alloc is not None:
            self.max_alloc = check_size(max_alloc, "max_alloc")
        if read_min is not None:
            self.read_min = check_size(read_min, "read_min")
        if read_max is not None:
            self.read_max = check_size(read_max, "read_max")
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
        offset = check_size(offset, "offset")
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
        if other.__class__ is not Buffer or other is self:  # the common case costs one test
            self._check_other(other)
        if self._freeze_end:
            raise FrozenError(_END_FROZEN)
        if other._freeze_start:
            raise FrozenError("the start of the source buffer is frozen")
        n = other._len
        if not n:
            return
        mine, theirs = self._chunks, other._chunks
        if not mine:  # into an empty buffer (an echo's output): swap the deques, O(1)
            self._chunks, other._chunks = theirs, mine
        elif len(theirs) > len(mine):
            theirs.extendleft(reversed(mine))
            mine.clear()
            self._chunks, other._chunks = theirs, mine
        else:
            mine.extend(theirs)
            theirs.clear()
        self._len += n
        other._len = 0
        other._gen += 1  # other._front_changed(n), inlined: everything left the front
        if other._eol_hint is not None:
            other._eol_hint = None
        if other._cbs:
            other._changed(0, n)
        if self._cbs:
            fast = self._fast
            if fast is not None:
                fast(n, 0)
            else:
                self._changed(n, 0)

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
        n = check_size(n)
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
        n = check_size(n)
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
        n = check_size(n)
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
        n = check_size(n)
        pos = self._pos(start)
        if pos > self._len:
            raise ValueError(f"start {pos} is beyond the end of the buffer ({self._len} bytes)")
        if n > self._len - pos:
            n = self._len - pos
        return self._copy(pos, n, start if isinstance(start, BufferPtr) else None)

    # ------------------------------------------------------------------ file descriptors
    def read_from(self, fd: Any, howmuch: int = -1) -> int:
        """Read from ``fd`` (int fd or socket) into free chunk space; returns the byte count.

        0 means end of file. ``BlockingIOError`` when ``fd`` would block. One call reads at
        most ``howmuch`` bytes (-1: no limit) and at most a size that adapts to the traffic
        (``read_min`` doubling up to ``read_max`` under load; see the class), or the free
        space already at the end of the buffer if that is more. Socket objects are read with
        ``recv_into``/``recvmsg_into``, ints and other objects with ``fileno()`` with
        ``os.readv``.

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
        self._fast = None
        release_all(chunks)

    # ------------------------------------------------------------------ internals
    def _check_other(self, other: Any) -> None:
        if not isinstance(other, Buffer):
            raise TypeError(f"expected a Buffer, not {type(other).__name__}")
        if other is self:
            raise ValueError("cannot move a buffer into itself")

    def _moved(self, src: Buffer, n: int, dst: Buffer | None = None) -> None:
        """Callbacks for ``n`` bytes moved from ``src`` to ``dst`` (default: self)."""
        dst = self if dst is None else dst
        if src._cbs:
            src._changed(0, n)
        if dst._cbs:
            dst._changed(n, 0)
