"""``Buffer.read_from`` and ``Buffer.write_to``: moving bytes between chunks and file descriptors.

Facts and theory of operation
-----------------------------
System calls dominate the cost of IO from Python, so each call moves as much as it can:

* **Reading** fills the free space at the end of the last chunk and a fresh chunk in the same
  call (``os.readv`` for ints and objects with ``fileno()``, ``socket.recvmsg_into`` for
  sockets; one buffer: ``recv_into``). The buffer offers ``_read_hint`` bytes (or less, if
  ``howmuch`` says so; or all the free space of the last chunk, if that is more, since it is
  already allocated). The hint starts at ``read_min``, doubles (up to ``read_max``) each time a
  read fills all it was offered and halves after reads that got less than a quarter of it, so
  busy connections read in large chunks (256 KiB) and idle ones do not allocate them. (No
  ``FIONREAD`` as in libevent: that would be one more system call per read.) A fresh chunk
  the read did not need is kept as the buffer's spare if it is small (``SPARE_KEEP_MAX``),
  else dropped.
* **Writing** gathers up to ``IOV_MAX`` memory chunks into one ``sendmsg``/``os.writev``. A
  file chunk at the front goes out with ``os.sendfile`` (falling back to ``pread`` + ``write``
  where the kernel refuses, e.g. an ``O_APPEND`` target). After a call that wrote everything
  it was given, the next chunks are tried at once (so memory then file then memory goes out
  in one ``write_to``); a short write ends the call. ``BlockingIOError`` reaches the caller
  only when nothing at all was written; otherwise the count so far is returned.
* What was written is drained (cleanups run, files close) and the callbacks run once per call.

Like every module here but ``buffer``, this one reads the buffer's private chain.

>>> from evbuffer import Buffer
>>> import socket
>>> a, b = socket.socketpair()
>>> Buffer(b"ping").write_to(a)
4
>>> buf = Buffer(); buf.read_from(b), bytes(buf)
(4, b'ping')
>>> a.close(); b.close()
"""

from __future__ import annotations

import errno
import operator
import os
import socket
from typing import TYPE_CHECKING, Any

from .chunk import FILE_PIECE, SPARE_KEEP_MAX, Chunk, new_memory, pread_exact, release_all
from .errors import FrozenError

if TYPE_CHECKING:
    from .buffer import Buffer

__all__ = ["read_from", "write_to", "IOV_MAX"]

#: Most chunks gathered into one write (the OS allows ``SC_IOV_MAX``, usually 1024).
IOV_MAX = 128
try:
    IOV_MAX = max(1, min(IOV_MAX, os.sysconf("SC_IOV_MAX")))
except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without it
    pass

#: errno values after which a file segment is written with pread + write instead of sendfile.
_NO_SENDFILE = frozenset(
    getattr(errno, name)
    for name in ("EINVAL", "ENOSYS", "EOPNOTSUPP", "ENOTSUP", "ENOTSOCK")
    if hasattr(errno, name)
)


def _fileno(fd: Any) -> int:
    if isinstance(fd, int):
        return operator.index(fd)
    try:
        fileno = fd.fileno
    except AttributeError:
        raise TypeError(
            f"expected an int fd, a socket or an object with fileno(), not {type(fd).__name__}"
        ) from None
    return int(fileno())


def read_from(buf: Buffer, fd: Any, howmuch: int) -> int:
    """Read up to ``howmuch`` bytes (-1: the adaptive size) from ``fd`` into ``buf``.

    >>> import os
    >>> from evbuffer import Buffer
    >>> r, w = os.pipe(); _ = os.write(w, b"abcdef")
    >>> buf = Buffer(); read_from(buf, r, 4), read_from(buf, r, -1), bytes(buf)
    (4, 2, b'abcdef')
    >>> os.close(r); os.close(w)
    """
    if buf._freeze_end:
        raise FrozenError("the end of this buffer is frozen")
    hint = buf._read_hint
    want = hint if howmuch < 0 or howmuch > hint else howmuch
    if not want:
        return 0
    sock = fd if isinstance(fd, socket.socket) else None
    fileno = -1 if sock is not None else _fileno(fd)
    chunks = buf._chunks
    tail = chunks[-1] if chunks else None
    room = tail.cap - tail.end if tail is not None else 0
    if room > want:  # free space already there costs nothing: offer it all (up to howmuch)
        want = room if howmuch < 0 or howmuch > room else howmuch
    fresh: Chunk | None = None
    if tail is not None and room >= want:
        iov = [tail.mv[tail.end : tail.end + want]]  # type: ignore[index]
    else:
        rest = want - room
        fresh = buf._spare
        if fresh is None or fresh.cap < rest:
            fresh = new_memory(rest if rest > buf.read_min else min(want, buf.read_min))
        iov = [fresh.mv[0:rest]]  # type: ignore[index]
        if tail is not None and room:
            iov.insert(0, tail.mv[tail.end : tail.cap])  # type: ignore[index]
    try:
        if sock is None:
            got = os.readv(fileno, iov)
        elif len(iov) == 1:
            got = sock.recv_into(iov[0])
        else:
            try:
                got = sock.recvmsg_into(iov)[0]
            except NotImplementedError:  # ssl.SSLSocket and friends
                got = sock.recv_into(iov[0])
    except BaseException:
        _keep_spare(buf, fresh)
        raise
    if got <= 0:
        _keep_spare(buf, fresh)
        return 0
    rest = got
    if tail is not None and room:
        take = room if room < got else got
        tail.end += take
        rest -= take
    if rest:
        assert fresh is not None
        fresh.end = rest
        chunks.append(fresh)
        if fresh is buf._spare:
            buf._spare = None
    else:
        _keep_spare(buf, fresh)
    buf._len += got
    if got >= want:
        if want >= hint:  # filled all it was offered: busy, read more next time
            buf._read_hint = min(hint * 2, buf.read_max)
    elif got * 4 < hint:  # the fd ran dry early: idle, read less
        buf._read_hint = max(hint // 2, buf.read_min)
    if buf._cbs:
        buf._changed(got, 0)
    return got


def _keep_spare(buf: Buffer, fresh: Chunk | None) -> None:
    if fresh is not None and buf._spare is None and fresh.cap <= SPARE_KEEP_MAX:
        buf._spare = fresh


def write_to(buf: Buffer, fd: Any, howmuch: int) -> int:
    """Write up to ``howmuch`` bytes (-1: all) of ``buf`` to ``fd``; returns the count written.

    >>> import os
    >>> from evbuffer import Buffer
    >>> r, w = os.pipe(); buf = Buffer(b"abcdef")
    >>> write_to(buf, w, 4), os.read(r, 10), bytes(buf)
    (4, b'abcd', b'ef')
    >>> os.close(r); os.close(w)
    """
    if buf._freeze_start:
        raise FrozenError("the start of this buffer is frozen")
    if howmuch < 0 or howmuch > buf._len:
        howmuch = buf._len
    if not howmuch:
        return 0
    sock = fd if isinstance(fd, socket.socket) else None
    fileno = sock.fileno() if sock is not None else _fileno(fd)
    chunks = buf._chunks
    total = 0
    dead: list[Chunk] = []
    try:
        while howmuch:
            first = chunks[0]
            if first.buf is None:
                count = first.end - first.off
                if count > howmuch:
                    count = howmuch
                n = _send_file(fileno, first, count)
            else:
                iov: list[memoryview] = []
                count = 0
                for ch in chunks:  # pragma: no branch - ends by break: howmuch <= len
                    if ch.buf is None or len(iov) >= IOV_MAX:
                        break
                    length = ch.end - ch.off
                    if count + length >= howmuch:
                        iov.append(ch.mv[ch.off : ch.off + howmuch - count])  # type: ignore[index]
                        count = howmuch
                        break
                    iov.append(ch.mv[ch.off : ch.end])  # type: ignore[index]
                    count += length
                if sock is None:
                    n = os.writev(fileno, iov)
                elif len(iov) == 1:
                    n = sock.send(iov[0])
                else:
                    try:
                        n = sock.sendmsg(iov)
                    except NotImplementedError:  # ssl.SSLSocket and friends
                        n = sock.send(iov[0])
                        count = len(iov[0])
            dead.extend(buf._drain_front(n))
            total += n
            howmuch -= n
            if n < count:
                break
    except BlockingIOError:
        if not total:
            raise
    finally:
        try:
            if dead:
                release_all(dead)
        finally:
            if total and buf._cbs:
                buf._changed(0, total)
    return total


def _send_file(fileno: int, ch: Chunk, count: int) -> int:
    """Write ``count`` bytes of file chunk ``ch`` to ``fileno``: sendfile, else pread + write."""
    offset = ch.foff + ch.off
    try:
        return os.sendfile(fileno, ch.fd, offset, count)
    except OSError as exc:
        if exc.errno not in _NO_SENDFILE:
            raise
    return os.write(fileno, pread_exact(ch.fd, min(count, FILE_PIECE), offset))
