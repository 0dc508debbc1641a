"""readln / search_eol: every end-of-line style, whole, byte by byte, split at every offset."""

from __future__ import annotations

import itertools
import tempfile

import pytest

from evbuffer import EOL, Buffer, BufferPtr, FrozenError


def model_eol(data: bytes, style: EOL, start: int = 0):
    """Reference semantics on plain bytes: (pos, eol_len) or None."""
    if style == EOL.LF:
        i = data.find(b"\n", start)
        return None if i < 0 else (i, 1)
    if style == EOL.NUL:
        i = data.find(b"\0", start)
        return None if i < 0 else (i, 1)
    if style == EOL.CRLF_STRICT:
        i = data.find(b"\r\n", start)
        return None if i < 0 else (i, 2)
    if style == EOL.CRLF:
        i = data.find(b"\n", start)
        if i < 0:
            return None
        if i > start and data[i - 1] == 13:
            return i - 1, 2
        return i, 1
    hits = [i for i in (data.find(b"\r", start), data.find(b"\n", start)) if i >= 0]
    if not hits:
        return None
    i = min(hits)
    rest = data[i:]
    return i, len(rest) - len(rest.lstrip(b"\r\n"))


def model_readlines(data: bytes, style: EOL):
    lines = []
    while True:
        r = model_eol(data, style)
        if r is None:
            return lines, data
        lines.append(data[: r[0]])
        data = data[r[0] + r[1] :]


def build(parts, kind):
    buf = Buffer()
    for part in parts:
        if not part:
            continue
        if kind == "mem":
            buf.add_buffer(Buffer(part))
        elif kind == "ref":
            buf.add_reference(part)
        else:
            f = tempfile.TemporaryFile()
            f.write(part)
            f.flush()
            buf.add_file(f)
    return buf


def drain_lines(buf, style):
    lines = []
    while True:
        line = buf.readln(style)
        if line is None:
            return lines, bytes(buf)
        lines.append(line)


MESSAGES = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody",
    b"a\nb\r\nc\r\rd\n\r\n\re\0f\0",
    b"\r\n\r\n\n\n\r\r",
    b"no end of line at all",
    b"x\r",
    b"\n",
    b"",
]

STYLES = list(EOL)


@pytest.mark.parametrize(
    ("style", "data", "lines", "rest"),
    [
        (EOL.ANY, b"line1\r\n\r\nline2\n\r\rline3", [b"line1", b"line2"], b"line3"),
        (EOL.ANY, b"a\rb\n", [b"a", b"b"], b""),
        (EOL.CRLF, b"a\r\nb\nc\r\r\nd", [b"a", b"b", b"c\r"], b"d"),
        (EOL.CRLF, b"\r\n\n", [b"", b""], b""),
        (EOL.CRLF_STRICT, b"a\nb\r\nc\r", [b"a\nb"], b"c\r"),
        (EOL.CRLF_STRICT, b"\r\r\n", [b"\r"], b""),
        (EOL.LF, b"a\r\nb\n", [b"a\r", b"b"], b""),
        (EOL.NUL, b"a\0b\0c", [b"a", b"b"], b"c"),
    ],
)
def test_known_cases(style, data, lines, rest):
    buf = Buffer(data)
    assert drain_lines(buf, style) == (lines, rest)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("data", MESSAGES)
@pytest.mark.parametrize("kind", ["mem", "ref", "file"])
def test_one_split_at_every_offset(style, data, kind):
    expected = model_readlines(data, style)
    for k in range(len(data) + 1):
        assert drain_lines(build([data[:k], data[k:]], kind), style) == expected, k


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("data", MESSAGES[:3])
def test_two_splits_at_every_pair_of_offsets(style, data):
    expected = model_readlines(data, style)
    for i, j in itertools.combinations(range(len(data) + 1), 2):
        parts = [data[:i], data[i:j], data[j:]]
        assert drain_lines(build(parts, "ref"), style) == expected, (i, j)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("data", MESSAGES)
def test_byte_per_chunk(style, data):
    expected = model_readlines(data, style)
    assert drain_lines(build([bytes([c]) for c in data], "ref"), style) == expected


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("data", MESSAGES)
def test_arriving_byte_by_byte(style, data):
    """readln after every byte that arrives (exercises the resume hint)."""
    buf = Buffer()
    acc = b""
    got, want = [], []
    for c in data:
        buf.add(bytes([c]))
        acc += bytes([c])
        got.extend(drain_lines(buf, style)[0])
        lines, acc = model_readlines(acc, style)
        want.extend(lines)
        assert bytes(buf) == acc
    assert got == want


def test_search_eol_with_start_and_pointer():
    buf = build([b"ab\r", b"\ncd\n", b"ef\r\n"], "mem")
    p, n = buf.search_eol(eol=EOL.CRLF)
    assert (p.pos, n) == (2, 2)
    p2, n2 = buf.search_eol(BufferPtr(p.pos + n), EOL.CRLF)
    assert (p2.pos, n2) == (6, 1)
    p3, n3 = buf.search_eol(p2.pos + 1, EOL.CRLF)
    assert (p3.pos, n3) == (9, 2)
    # a CR before the start does not count
    p4, n4 = buf.search_eol(3, EOL.CRLF)
    assert (p4.pos, n4) == (3, 1)
    assert buf.search_eol(11, EOL.LF) == (None, 0)
    assert buf.search_eol(100) == (None, 0)
    p5, n5 = buf.search_eol(0, EOL.ANY)
    assert (p5.pos, n5) == (2, 2)
    with pytest.raises(ValueError):
        buf.search_eol(0, 9)
    assert len(buf) == 11


@pytest.mark.parametrize("style", STYLES)
def test_search_eol_matches_model_from_every_start(style):
    data = b"a\r\n\rb\n\0c\r\r\n\n"
    buf = build([bytes([c]) for c in data], "ref")
    for start in range(len(data) + 1):
        ptr, n = buf.search_eol(start, style)
        r = model_eol(data, style, start)
        if r is None:
            assert (ptr, n) == (None, 0), start
        else:
            assert (ptr.pos, n) == r, start


def test_readln_frozen_and_bad_style():
    buf = Buffer(b"a\n")
    buf.freeze(True)
    with pytest.raises(FrozenError):
        buf.readln()
    buf.unfreeze(True)
    with pytest.raises(ValueError):
        buf.readln(42)
    assert buf.readln(3) == b"a"


def test_long_line_over_many_chunks_is_linear():
    """A 4 MiB line arriving in 4 KiB reads, readln after each: the scan resumes."""
    buf = Buffer()
    piece = b"x" * 4096
    for _ in range(1024):
        buf.add_reference(piece)
        assert buf.readln(EOL.CRLF) is None
    buf.add(b"\r\nnext")
    line = buf.readln(EOL.CRLF)
    assert line is not None and len(line) == 4 << 20
    assert bytes(buf) == b"next"


def test_long_cr_lf_run_and_lines_with_only_cr():
    buf = Buffer(b"a" + b"\r\n" * 5000 + b"b" + b"\r" * 3 + b"c")
    assert buf.readln() == b"a"
    assert buf.readln() == b"b"
    assert bytes(buf) == b"c"
    big = Buffer(b"y" * 100000 + b"\r" + b"z")
    assert big.readln(EOL.ANY) == b"y" * 100000


def test_eol_hint_forgotten_after_prepend_and_kept_across_drain():
    buf = Buffer(b"abc")
    assert buf.readln(EOL.LF) is None
    buf.prepend(b"x\n")
    assert buf.readln(EOL.LF) == b"x"
    buf2 = Buffer(b"abcdef")
    assert buf2.readln(EOL.LF) is None
    buf2.drain(2)
    buf2.add(b"\n")
    assert buf2.readln(EOL.LF) == b"cdef"
    buf3 = Buffer(b"abcdef")
    assert buf3.readln(EOL.LF) is None
    buf3.drain(5)
    buf3.add(b"\n")
    assert buf3.readln(EOL.LF) == b"f"
    assert buf3.readln(EOL.LF) is None
    buf3.add(b"q\n")
    assert buf3.readln(EOL.NUL) is None  # another style does not reuse the LF hint
    assert buf3.readln(EOL.LF) == b"q"
