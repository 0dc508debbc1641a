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
  One fully sent plain memory chunk is recycled (``Chain._recycle``: a bufferevent's output
  hands it to its input, whose next read fills it).
* **The lean paths.** A socket bufferevent calls these two functions once per read and once
  per write, so the common cases are written out at the top of each, with no helper calls: a
  read from a plain ``socket.socket`` (exactly that type: ``ssl.SSLSocket`` takes the general
  path) into an *empty* buffer fills the spare (all of it, when it is larger than the adaptive
  size) or one fresh chunk with one ``recv_into``; a write to a plain socket whose bytes are
  all in at most ``IOV_MAX`` memory chunks is one ``send`` (one chunk) or ``sendmsg``, then a
  drain done inline. A lone watcher (``CallbackHost._fast``) is called directly. Everything
  else (files, int fds, a read after unread data, too many chunks) takes the general code,
  with the same results.

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

_SOCKET = socket.socket  # the lean paths take exactly this type (not ssl.SSLSocket and friends)

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
    if fd.__class__ is not _SOCKET or buf._chunks:
        return _read_general(buf, fd, howmuch, hint, want)
    # Lean path: a plain socket into an empty buffer (a bufferevent's last read moved on).
    ch = buf._spare
    if ch is not None and ch.cap >= want:
        cap = ch.cap
        if cap > want:  # the spare is there already: offer all of it
            want = cap if howmuch < 0 or howmuch > cap else howmuch
        fresh = None
    else:
        ch = fresh = new_memory(want)
    try:
        got = fd.recv_into(ch.buf, want)
    except BaseException:
        _keep_spare(buf, fresh)
        raise
    if got <= 0:
        _keep_spare(buf, fresh)
        return 0
    if fresh is None:
        buf._spare = None
    ch.end = got
    buf._chunks.append(ch)
    buf._len = got
    if got >= want:
        if want >= hint:  # filled all it was offered: busy, read more next time
            buf._read_hint = hint * 2 if hint * 2 < buf.read_max else buf.read_max
    elif got * 4 < hint:  # the fd ran dry early: idle, read less
        half = hint >> 1
        buf._read_hint = half if half > buf.read_min else buf.read_min
    if buf._cbs:
        fast = buf._fast
        if fast is not None:
            fast(got, 0)
        else:
            buf._changed(got, 0)
    return got


def _read_general(buf: Buffer, fd: Any, howmuch: int, hint: int, want: int) -> int:
    """:func:`read_from` for everything but the lean path (any fd, free space at the end)."""
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
    if fd.__class__ is not _SOCKET:
        return _write_general(buf, fd, howmuch)
    # Lean path: the first howmuch bytes in at most IOV_MAX memory chunks, one send/sendmsg.
    chunks = buf._chunks
    first = chunks[0]
    off = first.off
    if first.end - off >= howmuch and first.buf is not None:
        n = fd.send(first.mv[off : off + howmuch])  # type: ignore[index]
    else:
        iov: list[memoryview] = []
        count = 0
        for ch in chunks:  # pragma: no branch - ends by break: howmuch <= len
            if ch.buf is None or len(iov) >= IOV_MAX:
                return _write_general(buf, fd, howmuch)
            length = ch.end - ch.off
            if count + length >= howmuch:
                iov.append(ch.mv[ch.off : ch.off + howmuch - count])  # type: ignore[index]
                break
            iov.append(ch.mv[ch.off : ch.end])  # type: ignore[index]
            count += length
        n = fd.sendmsg(iov)
    # drain n bytes: Chain._drain_front and _finish, inlined
    buf._len -= n
    buf._gen += 1
    eol = buf._eol_hint
    if eol is not None:
        buf._eol_hint = None if eol[1] <= n else (eol[0], eol[1] - n)
    keep = dead = None
    if n == first.end - off:  # exactly the first chunk went (an echo, a reply): no loop
        chunks.popleft()
        if first.writable:
            if not first.lo:
                keep = first
        elif first.cleanup is not None or first.file is not None:
            dead = [first]
        left = 0
    else:
        left = n
    while left:
        ch = chunks[0]
        length = ch.end - ch.off
        if length > left:
            ch.off += left
            break
        chunks.popleft()
        left -= length
        if ch.writable:
            if not ch.lo and (keep is None or ch.cap > keep.cap):
                keep = ch
        elif ch.cleanup is not None or ch.file is not None:
            if dead is None:
                dead = [ch]
            else:
                dead.append(ch)
    if keep is not None:
        to = buf._recycle_to
        if to is not None and to._spare is None and buf._resv is None and keep.cap <= to.read_max:
            keep.off = keep.end = 0  # Chain._recycle's common case
            to._spare = keep
        else:
            buf._recycle(keep)
    try:
        if dead is not None:
            release_all(dead)
    finally:
        if buf._cbs:
            fast = buf._fast
            if fast is None:
                buf._changed(0, n)
            elif buf._fast_del:
                fast(0, n)
    return n


def _write_general(buf: Buffer, fd: Any, howmuch: int) -> int:
    """:func:`write_to` for everything but the lean path (files, int fds, many chunks)."""
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
