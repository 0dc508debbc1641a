"""End-of-line styles and their search across chunks (``Buffer.search_eol``, ``Buffer.readln``).

The styles are libevent's ``enum evbuffer_eol_style``:

* ``ANY``: the line ends at the first CR or LF, and the end-of-line is the whole run of CR
  and LF characters that follows, in any order and number (as in libevent, a run cut short by
  the end of the buffer ends there; its rest then reads as an empty line);
* ``CRLF``: an optional CR followed by an LF;
* ``CRLF_STRICT``: exactly CR LF;
* ``LF``: an LF;
* ``NUL``: a NUL byte (libevent 2.1).

Finding "CR or LF" uses two C ``find`` calls over windows that grow geometrically, so a line
costs time linear in its length even when one of the two characters never appears; the run
after it is measured with ``bytes.lstrip`` over growing windows. No per-byte Python loops.

>>> from evbuffer import Buffer
>>> buf = Buffer(b"GET / HTTP/1.0\\r\\n\\r\\n")
>>> buf.readln(EOL.CRLF), buf.readln(EOL.CRLF), buf.readln(EOL.CRLF)
(b'GET / HTTP/1.0', b'', None)
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .chain import Chain
from .errors import FrozenError
from .ptr import BufferPtr
from .search import find

if TYPE_CHECKING:
    from .chunk import Chunk

__all__ = [
    "EOL",
    "find_eol",
    "EVBUFFER_EOL_ANY",
    "EVBUFFER_EOL_CRLF",
    "EVBUFFER_EOL_CRLF_STRICT",
    "EVBUFFER_EOL_LF",
    "EVBUFFER_EOL_NUL",
    "EolMixin",
]


class EOL(enum.IntEnum):
    """End-of-line styles for ``readln``/``search_eol`` (libevent's ``EVBUFFER_EOL_*``).

    >>> EOL.CRLF_STRICT.value
    2
    """

    ANY = 0
    CRLF = 1
    CRLF_STRICT = 2
    LF = 3
    NUL = 4


EVBUFFER_EOL_ANY = EOL.ANY
EVBUFFER_EOL_CRLF = EOL.CRLF
EVBUFFER_EOL_CRLF_STRICT = EOL.CRLF_STRICT
EVBUFFER_EOL_LF = EOL.LF
EVBUFFER_EOL_NUL = EOL.NUL

_SIMPLE = {EOL.LF: b"\n", EOL.NUL: b"\0", EOL.CRLF_STRICT: b"\r\n"}


def find_eol(
    buf: Chain, start: int, style: EOL, hint: BufferPtr | None = None
) -> tuple[int, int, int, int] | None:
    """First end-of-line at or after ``start``: ``(pos, eol_len, chunk_index, chunk_start)``.

    ``chunk_index`` is -1 when unknown. ``None`` when there is no complete end-of-line.

    >>> from evbuffer import Buffer
    >>> find_eol(Buffer(b"ab\\r\\r\\ncd"), 0, EOL.ANY)[:2]
    (2, 3)
    >>> find_eol(Buffer(b"ab\\r\\r\\ncd"), 0, EOL.CRLF)[:2]
    (3, 2)
    """
    n = buf._len
    sub = _SIMPLE.get(style)
    if sub is not None:
        r = find(buf, sub, start, n, hint)
        return None if r is None else (r[0], len(sub), r[1], r[2])
    if style == EOL.CRLF:
        r = find(buf, b"\n", start, n, hint)
        if r is None:
            return None
        pos, i, g = r
        if pos > start:
            if i >= 0 and pos > g:  # the byte before is in the same (loaded) chunk
                ch = buf._chunks[i]
                before = ch.buf[ch.off + pos - g - 1]
            else:
                before = buf._byte_at(pos - 1)
            if before == 13:
                return pos - 1, 2, -1, 0
        return pos, 1, i, g
    # EOL.ANY (callers pass an EOL member)
    i, g = buf._seek(start, hint)
    while g < n:
        ch = buf._load(i)
        p = _find_cr_or_lf(ch, ch.off + (start - g if start > g else 0), ch.end)
        if p >= 0:
            return g + p - ch.off, _crlf_run(buf, i, p), i, g
        g += ch.end - ch.off
        i += 1
    return None


def _find_cr_or_lf(ch: Chunk, a: int, end: int) -> int:
    """Index of the first CR or LF in ``ch.buf[a:end]``, or -1."""
    width = 256
    while a < end:
        stop = a + width if end - a > width else end
        p = ch.find(b"\n", a, stop)
        q = ch.find(b"\r", a, p if p >= 0 else stop)
        if q >= 0:
            return q
        if p >= 0:
            return p
        a = stop
        width <<= 2
    return -1


def _crlf_run(buf: Chain, i: int, a: int) -> int:
    """Number of CR/LF bytes starting at index ``a`` of chunk ``i``, across chunks."""
    run = 0
    chunks = buf._chunks
    first = True
    while i < len(chunks):
        ch = buf._load(i)
        if not first:
            a = ch.off
        first = False
        width = 16
        end = ch.end
        while a < end:
            stop = a + width if end - a > width else end
            seg = bytes(ch.buf[a:stop])
            k = len(seg) - len(seg.lstrip(b"\r\n"))
            run += k
            if k < len(seg):
                return run
            a = stop
            width <<= 1
        i += 1
    return run


def _eol_in_chunk(ch: Chunk, style: EOL, last: bool) -> tuple[int, int] | None:
    """``(index, eol_len)`` of the first end-of-line wholly inside memory chunk ``ch``.

    ``None`` when there is none; ``eol_len`` is -1 when an ``ANY`` run is long or may continue
    into the next chunk (``last`` says there is none): the general path measures it then.
    The fast path of ``readln``: most lines sit inside one chunk.
    """
    a, end = ch.off, ch.end
    sub = _SIMPLE.get(style)
    if sub is not None:
        p = ch.find(sub, a, end)
        return None if p < 0 else (p, len(sub))
    if style == EOL.CRLF:
        p = ch.find(b"\n", a, end)
        if p < 0:
            return None
        return (p - 1, 2) if p > a and ch.buf[p - 1] == 13 else (p, 1)
    p = _find_cr_or_lf(ch, a, end)
    if p < 0:
        return None
    q = p + 1
    while q < end and ch.buf[q] in (10, 13):
        q += 1
        if q - p > 16:  # a long run: let the general path measure it
            return p, -1
    return (p, q - p) if q < end or last else (p, -1)


class EolMixin(Chain):
    """``Buffer.readln`` and ``Buffer.search_eol`` (mixed into :class:`~evbuffer.Buffer`).

    >>> from evbuffer import Buffer
    >>> Buffer(b"a\\nb").readln(EOL.LF)
    b'a'
    """

    def readln(self, eol: EOL | int = EOL.ANY) -> bytes | None:
        """Remove and return one line without its end-of-line, or ``None`` if none is complete.

        >>> from evbuffer import Buffer
        >>> buf = Buffer(b"a\\r\\nb\\nc"); buf.readln(), buf.readln(EOL.LF), buf.readln()
        (b'a', b'b', None)
        """
        if self._freeze_start:
            raise FrozenError("the start of this buffer is frozen")
        if type(eol) is not EOL:
            eol = EOL(eol)
        hint = self._eol_hint
        chunks = self._chunks
        if chunks and hint is None and chunks[0].buf is not None:
            ch = chunks[0]
            local = _eol_in_chunk(ch, eol, len(chunks) == 1)
            if local is None:
                if len(chunks) == 1:
                    self._eol_hint = (eol, self._len - 1)
                    return None
            elif local[1] >= 0:
                p, k = local
                start = ch.off
                line = bytes(ch.mv[start:p])  # type: ignore[index]
                n = p + k - start
                if p + k < ch.end:  # the chunk stays: just advance it
                    ch.off = p + k
                    self._len -= n
                    self._front_changed(n)
                    if self._cbs:
                        self._changed(0, n)
                else:
                    self._finish(self._drain_front(n), 0, n)
                return line
        r = find_eol(self, hint[1] if hint is not None and hint[0] == eol else 0, eol)
        if r is None:
            self._eol_hint = (eol, self._len - 1 if self._len else 0)
            return None
        pos, k = r[0], r[1]
        line = self._copy(0, pos)
        self._finish(self._drain_front(pos + k), 0, pos + k)
        return line

    def search_eol(
        self, start: BufferPtr | int | None = None, eol: EOL | int = EOL.ANY
    ) -> tuple[BufferPtr | None, int]:
        """The first end-of-line at or after ``start``: ``(pointer to it, its length)``.

        ``(None, 0)`` when there is none.

        >>> from evbuffer import Buffer
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
