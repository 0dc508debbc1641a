"""Chunks: the links of a :class:`~evbuffer.Buffer`'s chain (libevent's ``evbuffer_chain``).

Facts and theory of operation
-----------------------------
A chunk holds ``end - off`` bytes of the buffer: ``buf[off:end]``. There are three kinds, told
apart by two attributes, never by a type switch on the hot paths:

* **memory** (``writable``): ``buf`` is a ``bytearray`` the buffer allocated and owns. The bytes
  ``buf[end:cap]`` are free space that appends (``add``, ``read_from``, ``commit_space``) fill
  in place; ``buf[lo:off]`` is free space in front (libevent's *misalign*) that ``prepend``
  fills. The bytearray is never resized, so memoryviews handed out (``peek``, ``pullup``,
  ``reserve_space``) never block a later write with ``BufferError``.
* **read-only** (``not writable and buf is not None``): ``buf`` is a ``bytes``/``bytearray``/
  ``mmap`` or a byte memoryview the buffer does not own: a reference (``add_reference``; its
  ``cleanup(ref)`` runs once, from :meth:`Chunk.release`), a large ``bytes`` added without a copy
  (it is immutable), the front part of another chunk moved by ``remove_buffer`` without a copy,
  or a file segment read into memory. ``cap == end``: no free space.
* **file** (``buf is None``): bytes ``foff + off`` .. ``foff + end`` of file descriptor ``fd``,
  not in memory. Written with ``os.sendfile``; read with ``os.pread`` when someone needs the
  bytes. ``file`` is a :class:`FileOwner` around the int fd or file object given to
  ``add_file``: file chunks split at any offset share it (``split_file``), and it closes the
  file when the last of them is released.

Invariants the buffer keeps: ``lo <= off <= end <= cap``; a chunk in a buffer's chain holds at
least one byte; :meth:`Chunk.release` runs exactly once, when the chunk leaves the buffer for
good (drained, copied away by ``pullup``, or the buffer freed). A chunk moved to another buffer
is not released: its ownership moves with it. Memory shared between two chunks is never
written: ``remove_buffer``'s zero-copy split raises the source chunk's ``lo`` past the part it
gave away, and the receiving chunk is read-only.

>>> ch = new_memory(16)
>>> ch.buf[0:5] = b"hello"; ch.end = 5
>>> bytes(ch.view()), ch.cap - ch.end
(b'hello', 11)
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterable
from typing import Any

from .errors import EvbufferError

__all__ = [
    "Chunk",
    "new_memory",
    "new_reference",
    "new_file",
    "FileOwner",
    "as_bytes_like",
    "release_all",
    "pread_exact",
    "MIN_CHUNK",
    "GROW_MAX",
    "ZERO_COPY_MIN",
    "SHARE_MIN",
    "FILE_PIECE",
    "SPARE_KEEP_MAX",
]

#: Smallest chunk ``add`` allocates.
MIN_CHUNK = 1024
#: ``add`` doubles the size of new chunks up to this size (a single larger add gets one chunk).
GROW_MAX = 256 * 1024
#: ``add`` of an immutable ``bytes`` at least this long keeps a reference instead of copying.
ZERO_COPY_MIN = 32 * 1024
#: ``remove_buffer`` splits a chunk without copying when the moved part is at least this long.
SHARE_MIN = 4096
#: A file segment is read into memory at most this much at a time (search, peek, readln).
FILE_PIECE = 256 * 1024
#: A fresh read chunk left unused is kept for the next read only up to this size.
SPARE_KEEP_MAX = 64 * 1024

_Cleanup = Callable[[Any], object]


class Chunk:
    """One link of a buffer's chain (see the module docstring for the three kinds).

    >>> ch = new_reference(b"abc", None)
    >>> ch.writable, ch.end - ch.off
    (False, 3)
    """

    __slots__ = ("buf", "mv", "off", "end", "cap", "lo", "writable", "ref", "cleanup", "file", "fd", "foff")

    def __init__(self, buf: Any, mv: memoryview | None, off: int, end: int, cap: int, writable: bool) -> None:
        self.buf = buf
        self.mv = mv
        self.off = off
        self.end = end
        self.cap = cap
        self.lo = 0
        self.writable = writable
        self.ref: Any = None
        self.cleanup: _Cleanup | None = None
        self.file: Any = None
        self.fd = -1
        self.foff = 0

    def view(self, a: int | None = None, b: int | None = None) -> memoryview:
        """A memoryview of ``buf[a:b]`` (default: the chunk's data); memory chunks only.

        >>> bytes(new_reference(b"abcdef", None).view(1, 3))
        b'bc'
        """
        assert self.mv is not None
        return self.mv[self.off if a is None else a : self.end if b is None else b]

    def read(self, a: int, b: int) -> memoryview | bytes:
        """The bytes ``buf[a:b]``: a view for memory chunks, ``os.pread`` for file chunks.

        >>> bytes(new_reference(b"abcdef", None).read(2, 4))
        b'cd'
        """
        if self.mv is not None:
            return self.mv[a:b]
        return pread_exact(self.fd, b - a, self.foff + a)

    def find(self, sub: bytes, a: int, b: int) -> int:
        """Index of the first ``sub`` wholly inside ``buf[a:b]``, or -1 (memory chunks only).

        >>> new_reference(b"abcabc", None).find(b"ca", 1, 6)
        2
        """
        buf = self.buf
        if type(buf) is memoryview:
            # A reference to an object without .find (array, ctypes...): search a copy.
            p = bytes(buf[a:b]).find(sub)
            return p + a if p >= 0 else -1
        return int(buf.find(sub, a, b))

    def release(self) -> None:
        """Run the reference's cleanup, or close the owned file; at most once.

        >>> seen = []
        >>> ch = new_reference(b"xy", seen.append)
        >>> ch.release(); ch.release()
        >>> seen
        [b'xy']
        """
        cleanup = self.cleanup
        if cleanup is not None:
            ref = self.ref
            self.cleanup = self.ref = None
            # Unpin the user's object (a bytearray can be resized, an mmap closed again).
            self.mv.release()  # type: ignore[union-attr]
            cleanup(ref)
        owner = self.file
        if owner is not None:
            self.file = None
            owner.drop()

    def split_file(self, k: int) -> Chunk:
        """Cut the first ``k`` bytes off a file chunk into a new file chunk sharing the file.

        The file is closed when the last chunk that refers to it is released.

        >>> import tempfile
        >>> f = tempfile.TemporaryFile()
        >>> ch = new_file(f.fileno(), f, 0, 10)
        >>> front = ch.split_file(4)
        >>> (front.off, front.end), (ch.off, ch.end)
        ((0, 4), (4, 10))
        >>> ch.release(); f.closed
        False
        >>> front.release(); f.closed
        True
        """
        front = Chunk(None, None, self.off, self.off + k, self.off + k, False)
        front.fd = self.fd
        front.foff = self.foff
        front.file = self.file
        self.file.refs += 1
        self.off += k
        return front

    def load(self, limit: int) -> Chunk | None:
        """Read (part of) a file chunk into memory.

        If at most ``limit`` bytes remain, the chunk becomes a read-only memory chunk in
        place (still owning its file, closed at release) and ``None`` is returned; otherwise
        a new read-only chunk with the first ``limit`` bytes is returned and this chunk
        advances past them (the caller inserts it in front).
        """
        n = self.end - self.off
        if n <= limit:
            data = pread_exact(self.fd, n, self.foff + self.off)
            self.buf = data
            self.mv = memoryview(data)
            self.foff += self.off
            self.off, self.end, self.cap = 0, n, n
            return None
        data = pread_exact(self.fd, limit, self.foff + self.off)
        self.off += limit
        return Chunk(data, memoryview(data), 0, limit, limit, False)

    def __repr__(self) -> str:
        kind = "memory" if self.writable else ("file" if self.buf is None else "read-only")
        return f"<Chunk {kind} off={self.off} end={self.end} cap={self.cap}>"


def new_memory(cap: int) -> Chunk:
    """A fresh, empty, writable memory chunk of ``cap`` bytes.

    >>> new_memory(8).cap
    8
    """
    ba = bytearray(cap)
    return Chunk(ba, memoryview(ba), 0, 0, cap, True)


def as_bytes_like(data: Any) -> tuple[Any, int]:
    """``(obj, nbytes)`` where ``obj`` is ``data`` (bytes, bytearray) or a 1-D byte memoryview.

    Raises ``TypeError`` for objects without the buffer protocol (``str`` included).

    >>> as_bytes_like(b"ab")
    (b'ab', 2)
    >>> import array
    >>> as_bytes_like(array.array("H", [1, 2]))[1]
    4
    """
    t = type(data)
    if t is bytes or t is bytearray:
        return data, len(data)
    mv = memoryview(data)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    return mv, mv.nbytes


def new_reference(data: Any, cleanup: _Cleanup | None) -> Chunk:
    """A read-only chunk over ``data`` without copying it; ``cleanup(data)`` at release.

    >>> ch = new_reference(bytearray(b"abc"), None)
    >>> ch.view().readonly
    True
    """
    obj, n = as_bytes_like(data)
    if type(obj) is memoryview:
        mv = obj.toreadonly()
        buf: Any = data if isinstance(data, mmap.mmap) else mv
    else:
        buf = obj
        mv = memoryview(obj).toreadonly()  # also pins a bytearray against resizing
    ch = Chunk(buf, mv, 0, n, n, False)
    ch.ref = data
    ch.cleanup = cleanup
    return ch


class FileOwner:
    """The file (int fd or file object) given to ``add_file``, shared by the chunks over it.

    >>> import os
    >>> r, w = os.pipe(); os.close(w)
    >>> owner = FileOwner(r); owner.refs += 1
    >>> owner.drop(); owner.file == r
    True
    >>> owner.drop(); owner.file is None
    True
    """

    __slots__ = ("file", "refs")

    def __init__(self, file: Any) -> None:
        self.file = file
        self.refs = 1

    def drop(self) -> None:
        """Forget one chunk; close the file when none is left."""
        self.refs -= 1
        f = self.file
        if self.refs <= 0 and f is not None:
            self.file = None
            if isinstance(f, int):
                os.close(f)
            else:
                f.close()


def new_file(fd: int, owner: Any, offset: int, length: int) -> Chunk:
    """A file chunk: ``length`` bytes of ``fd`` from ``offset``; ``owner`` closed at release.

    >>> import tempfile
    >>> f = tempfile.TemporaryFile()
    >>> ch = new_file(f.fileno(), f, 10, 5)
    >>> ch.end, ch.file.refs
    (5, 1)
    >>> ch.release(); f.closed
    True
    """
    ch = Chunk(None, None, 0, length, length, False)
    ch.fd = fd
    ch.foff = offset
    ch.file = FileOwner(owner)
    return ch


def release_all(chunks: Iterable[Chunk]) -> None:
    """Release every chunk even if some cleanups raise; then re-raise the first error.

    >>> seen = []
    >>> release_all([new_reference(b"a", seen.append), new_reference(b"b", seen.append)])
    >>> seen
    [b'a', b'b']
    """
    err: BaseException | None = None
    for ch in chunks:
        try:
            ch.release()
        except BaseException as exc:
            if err is None:
                err = exc
    if err is not None:
        raise err


def pread_exact(fd: int, n: int, offset: int) -> bytes:
    """Exactly ``n`` bytes of ``fd`` from ``offset`` (``os.pread`` until done).

    Raises :class:`EvbufferError` if the file ends first (it shrank after ``add_file``).

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     _ = f.write(b"0123456789"); f.flush()
    ...     pread_exact(f.fileno(), 3, 4)
    b'456'
    """
    parts = []
    got = 0
    while got < n:
        more = os.pread(fd, n - got, offset + got)
        if not more:
            raise EvbufferError(f"file segment of fd {fd} ended {n - got} bytes early (was it truncated?)")
        parts.append(more)
        got += len(more)
    return parts[0] if len(parts) == 1 else b"".join(parts)  # one read, unless the OS split it
