"""evbuffer.Buffer: adding, removing, moving, peeking, pulling up, space, freezing, sizes."""

from __future__ import annotations

import array
import gc
import sys
import tempfile

import pytest

from evbuffer import Buffer, BufferPtr, EvbufferError, FrozenError, PtrHow, SizeLimitError
from evbuffer.chunk import GROW_MAX, MIN_CHUNK, SHARE_MIN, ZERO_COPY_MIN


def chained(parts, kind="mem"):
    """A buffer holding ``parts`` as separate chunks of the given kind."""
    buf = Buffer()
    for part in parts:
        if kind == "mem":
            buf.add_buffer(Buffer(part))
        elif kind == "ref":
            buf.add_reference(part)
        else:
            f = tempfile.TemporaryFile()
            f.write(b"#" + part + b"#")
            f.flush()
            buf.add_file(f, 1, len(part))
    return buf


def nchunks(buf):
    return len(buf._chunks)


KINDS = ["mem", "ref", "file"]


def test_empty_buffer():
    buf = Buffer()
    assert len(buf) == 0 and not buf
    assert bytes(buf) == b""
    assert buf.remove(5) == b""
    assert buf.copyout(5) == b""
    buf.drain(5)
    assert buf.peek() == []
    assert bytes(buf.pullup()) == b""
    assert buf.pullup(1) is None
    assert buf.get_contiguous_space() == 0
    assert buf.readln() is None
    assert buf.search(b"x") is None
    assert "len=0" in repr(buf)


def test_add_various_bytes_like():
    buf = Buffer()
    buf.add(b"ab")
    buf.add(bytearray(b"cd"))
    buf.add(memoryview(b"xef")[1:])
    buf.add(array.array("B", b"gh"))
    buf.add(b"")
    assert bytes(buf) == b"abcdefgh"
    with pytest.raises(TypeError):
        buf.add("text")
    with pytest.raises(TypeError):
        buf.add(5)


def test_add_multibyte_items_counts_bytes():
    buf = Buffer()
    buf.add(array.array("I", [1, 2]))
    assert len(buf) == 8


def test_small_adds_coalesce_and_chunks_grow():
    buf = Buffer()
    for _ in range(1000):
        buf.add(b"x" * 100)
    assert len(buf) == 100_000
    caps = [ch.cap for ch in buf._chunks]
    assert caps[0] == MIN_CHUNK
    assert caps == sorted(caps)
    assert max(caps) <= GROW_MAX
    assert nchunks(buf) < 20


def test_big_bytes_add_is_zero_copy_and_bytearray_is_copied():
    big = b"z" * ZERO_COPY_MIN
    buf = Buffer(big)
    assert buf._chunks[0].buf is big
    ba = bytearray(ZERO_COPY_MIN)
    buf2 = Buffer(ba)
    assert buf2._chunks[0].buf is not ba
    ba[0] = 1
    assert bytes(buf2)[0] == 0


def test_big_add_gets_one_chunk():
    buf = Buffer(b"a")
    buf.add(bytearray(5 * GROW_MAX))
    assert nchunks(buf) == 2
    assert len(buf) == 5 * GROW_MAX + 1


def test_add_printf():
    buf = Buffer()
    assert buf.add_printf("%s-%03d", "n", 7) == 5
    assert buf.add_printf("plain %") == 7
    assert bytes(buf) == b"n-007plain %"


def test_prepend_uses_misalign_then_new_chunk():
    buf = Buffer(b"0123456789")
    buf.drain(4)
    buf.prepend(b"ab")
    assert nchunks(buf) == 1
    assert bytes(buf) == b"ab456789"
    buf.prepend(b"x" * 10)
    assert nchunks(buf) == 2
    buf.prepend(b"yy")
    assert nchunks(buf) == 2
    assert bytes(buf) == b"yy" + b"x" * 10 + b"ab456789"
    empty = Buffer()
    empty.prepend(b"abc")
    empty.prepend(b"")
    assert bytes(empty) == b"abc"
    big = Buffer(b"t")
    big.prepend(b"h" * (MIN_CHUNK + 5))
    assert len(big) == MIN_CHUNK + 6


def test_prepend_onto_reference_makes_chunk():
    buf = Buffer()
    buf.add_reference(b"world")
    buf.prepend(b"hello ")
    assert bytes(buf) == b"hello world"


@pytest.mark.parametrize("kind", KINDS)
def test_remove_copyout_drain_across_chunks(kind):
    buf = chained([b"abc", b"de", b"fghi"], kind)
    assert buf.copyout(4) == b"abcd"
    assert buf.copyout(100, 2) == b"cdefghi"
    assert buf.copyout(3, BufferPtr(5)) == b"fgh"
    assert buf.copyout(0, 9) == b""
    assert buf.remove(4) == b"abcd"
    buf.drain(2)
    assert bytes(buf) == b"ghi"
    assert buf.remove(100) == b"ghi"
    assert len(buf) == 0


def test_copyout_and_positions_validated():
    buf = Buffer(b"abc")
    with pytest.raises(ValueError):
        buf.copyout(1, 4)
    with pytest.raises(ValueError):
        buf.copyout(1, -1)
    with pytest.raises(ValueError):
        buf.copyout(-1)
    with pytest.raises(TypeError):
        buf.copyout(1.5)


@pytest.mark.parametrize("kind", KINDS)
def test_peek(kind):
    buf = chained([b"abc", b"de", b"fghi"], kind)
    assert [bytes(v) for v in buf.peek()] == [b"abc", b"de", b"fghi"]
    assert [bytes(v) for v in buf.peek(-5)] == [b"abc", b"de", b"fghi"]
    assert [bytes(v) for v in buf.peek(3)] == [b"abc"]
    assert [bytes(v) for v in buf.peek(4)] == [b"abc", b"de"]
    assert [bytes(v) for v in buf.peek(2, 4)] == [b"e", b"fghi"]
    assert [bytes(v) for v in buf.peek(1, 7)] == [b"hi"]
    assert buf.peek(0) == []
    assert buf.peek(3, 9) == []
    assert bytes(buf) == b"abcdefghi"


def test_peek_views_are_writable_for_own_memory():
    buf = Buffer(b"abc")
    v = buf.peek()[0]
    v[0] = ord("X")
    assert bytes(buf) == b"Xbc"
    ref = Buffer()
    ref.add_reference(bytearray(b"abc"))
    assert ref.peek()[0].readonly


@pytest.mark.parametrize("kind", KINDS)
def test_pullup(kind):
    buf = chained([b"abc", b"de", b"fghi"], kind)
    assert buf.pullup(10) is None
    assert bytes(buf.pullup(4)) == b"abcd"
    assert buf.get_contiguous_space() == 4
    assert bytes(buf) == b"abcdefghi"
    assert bytes(buf.pullup(2)) == b"ab"
    whole = buf.pullup()
    assert bytes(whole) == b"abcdefghi"
    assert nchunks(buf) == 1
    assert bytes(buf.pullup(-1)) == b"abcdefghi"


def test_pullup_writable_and_no_copy_when_contiguous():
    buf = Buffer(b"abcdef")
    first = buf._chunks[0]
    v = buf.pullup(3)
    assert v.obj is first.buf
    v[0] = ord("z")
    assert bytes(buf) == b"zbcdef"


def test_pullup_file_bigger_than_piece():
    from evbuffer.chunk import FILE_PIECE

    data = bytes(range(256)) * (FILE_PIECE // 256 + 10)
    f = tempfile.TemporaryFile()
    f.write(data)
    f.flush()
    buf = Buffer()
    buf.add_file(f, 0, len(data))
    buf.add(b"tail")
    assert bytes(buf.pullup(FILE_PIECE + 100)) == data[: FILE_PIECE + 100]
    assert not f.closed
    assert bytes(buf) == data + b"tail"
    buf.free()
    assert f.closed


def test_add_buffer_moves_chunks_and_prepend_buffer():
    a = chained([b"ab", b"cd"])
    b = chained([b"ef", b"gh", b"ij"])
    ids = [id(ch) for ch in b._chunks]
    a.add_buffer(b)
    assert bytes(a) == b"abcdefghij" and len(b) == 0 and nchunks(b) == 0
    assert [id(ch) for ch in a._chunks][2:] == ids
    c = chained([b"12"])
    a.add_buffer(c)
    assert bytes(a) == b"abcdefghij12"
    d = Buffer()
    d.add_buffer(a)
    assert bytes(d) == b"abcdefghij12" and len(a) == 0
    d.add_buffer(Buffer())
    e = chained([b"<", b"<"])
    d.prepend_buffer(e)
    assert bytes(d) == b"<<abcdefghij12"
    f = chained([b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8"])
    g = chained([b"a", b"b"])
    g.prepend_buffer(f)
    assert bytes(g) == b"12345678ab"
    g.prepend_buffer(Buffer())
    h = Buffer()
    h.prepend_buffer(chained([b"x", b"y"]))
    assert bytes(h) == b"xy"


def test_move_errors():
    a = Buffer(b"x")
    with pytest.raises(ValueError):
        a.add_buffer(a)
    with pytest.raises(ValueError):
        a.prepend_buffer(a)
    with pytest.raises(TypeError):
        a.add_buffer(b"x")
    with pytest.raises(TypeError):
        a.remove_buffer(b"x", 1)
    assert a.remove_buffer(a, 1) == 0
    with pytest.raises(ValueError):
        a.remove_buffer(Buffer(), -1)


@pytest.mark.parametrize("kind", KINDS)
def test_remove_buffer_moves_whole_chunks_and_splits_one(kind):
    src = chained([b"abc", b"de", b"fghi"], kind)
    dst = Buffer(b">")
    assert src.remove_buffer(dst, 6) == 6
    assert bytes(dst) == b">abcdef" and bytes(src) == b"ghi"
    assert src.remove_buffer(dst, 0) == 0
    assert src.remove_buffer(dst, 100) == 3
    assert bytes(dst) == b">abcdefghi" and len(src) == 0
    assert src.remove_buffer(dst, 5) == 0
    dst.free()


def test_remove_buffer_large_split_shares_memory():
    data = bytes(range(256)) * 64  # 16 KiB in one chunk
    src = Buffer(bytearray(data))
    dst = Buffer()
    assert src.remove_buffer(dst, SHARE_MIN + 1) == SHARE_MIN + 1
    assert dst._chunks[0].buf is src._chunks[0].buf
    assert not dst._chunks[0].writable
    # the source never prepends into the part it gave away
    src.prepend(b"!!")
    assert bytes(dst) == data[: SHARE_MIN + 1]
    assert bytes(src) == b"!!" + data[SHARE_MIN + 1 :]
    # the receiver's chunk has no free space: appends go to a new chunk
    dst.add(b"more")
    assert bytes(dst) == data[: SHARE_MIN + 1] + b"more"


def test_remove_buffer_split_reference_with_cleanup_copies():
    seen = []
    data = b"r" * (SHARE_MIN * 2)
    src = Buffer()
    src.add_reference(data, seen.append)
    dst = Buffer()
    src.remove_buffer(dst, SHARE_MIN + 1)
    assert dst._chunks[0].buf is not data
    assert seen == []
    src.drain(len(src))
    assert seen == [data]
    assert bytes(dst) == data[: SHARE_MIN + 1]


def test_move_64mib_is_chunk_splicing():
    big = Buffer()
    for _ in range(64):
        big.add(bytes(1 << 20))  # immutable, kept by reference
    n = nchunks(big)
    assert n == 64
    other = Buffer(b"x")
    other.add_buffer(big)
    assert len(other) == (64 << 20) + 1 and nchunks(other) == 65
    third = Buffer()
    assert other.remove_buffer(third, 32 << 20) == 32 << 20
    assert len(third) == 32 << 20


def test_drain_never_copies_what_stays():
    buf = Buffer(b"abcdef")
    ch = buf._chunks[0]
    buf.drain(2)
    assert buf._chunks[0] is ch and ch.off == 2


def test_hostile_sizes():
    buf = Buffer(b"abc")
    for fn in (buf.drain, buf.remove, buf.copyout, buf.expand, buf.reserve_space, buf.commit_space):
        with pytest.raises(ValueError):
            fn(-1)
        with pytest.raises(TypeError):
            fn(1.0)
        with pytest.raises(TypeError):
            fn("1")
    huge = sys.maxsize * 4
    assert buf.copyout(huge) == b"abc"
    assert buf.peek(huge)[0].tobytes() == b"abc"
    assert buf.pullup(huge) is None
    for n in (1 << 31, sys.maxsize, huge):
        with pytest.raises(SizeLimitError):
            buf.expand(n)
        with pytest.raises(SizeLimitError):
            buf.reserve_space(n)
    assert buf.remove(huge) == b"abc"
    buf.add(b"xyz")
    buf.drain(huge)
    assert len(buf) == 0
    small = Buffer(max_alloc=100)
    small.expand(100)
    with pytest.raises(OverflowError):
        small.expand(101)


def test_constructor_validation():
    with pytest.raises(ValueError):
        Buffer(read_min=0)
    with pytest.raises(ValueError):
        Buffer(read_min=100, read_max=10)
    with pytest.raises(ValueError):
        Buffer(max_alloc=-1)
    buf = Buffer(b"", read_min=16, read_max=64)
    assert buf.read_min == 16 and buf.read_max == 64 and len(buf) == 0


def test_expand_then_add_does_not_allocate_or_split():
    buf = Buffer(b"x")
    room = buf._chunks[0].cap - 1
    buf.expand(10)  # fits in the tail already
    assert buf._spare is None
    buf.expand(room + 100)
    spare = buf._spare
    assert spare is not None
    buf.expand(room + 50)
    assert buf._spare is spare
    buf.add(b"y" * (room + 100))
    assert buf._chunks[-1] is spare
    assert bytes(buf) == b"x" + b"y" * (room + 100)


def test_reserve_commit_single_vector():
    buf = Buffer(b"head")
    views = buf.reserve_space(10)
    assert len(views) == 1 and len(views[0]) == 10
    views[0][:5] = b"01234"
    buf.commit_space(5)
    assert bytes(buf) == b"head01234"
    with pytest.raises(EvbufferError):
        buf.commit_space(1)  # reservation consumed


def test_reserve_commit_two_vectors_and_new_chunk():
    buf = Buffer(b"a")
    room = buf._chunks[0].cap - 1
    views = buf.reserve_space(room + 10, n_vec=2)
    assert [len(v) for v in views] == [room, 10]
    views[0][:] = b"b" * room
    views[1][:4] = b"cccc"
    buf.commit_space(room + 4)
    assert bytes(buf) == b"a" + b"b" * room + b"cccc"
    assert nchunks(buf) == 2
    # commit only part of the first vector
    views = buf.reserve_space(5000, n_vec=2)
    views[0][:1] = b"d"
    buf.commit_space(1)
    assert bytes(buf).endswith(b"ccccd")
    # single vector when the tail is short: a contiguous spare
    views = buf.reserve_space(100000)
    assert len(views) == 1 and len(views[0]) == 100000
    buf.commit_space(0)
    assert bytes(buf).endswith(b"ccccd")
    assert buf.reserve_space(0) == []
    buf.commit_space(0)
    with pytest.raises(ValueError):
        buf.reserve_space(1, n_vec=0)


def test_commit_too_much_or_after_change():
    buf = Buffer()
    buf.reserve_space(4)
    with pytest.raises(ValueError):
        buf.commit_space(5)
    buf.commit_space(4)
    assert bytes(buf) == b"\0\0\0\0"
    buf.reserve_space(4)
    buf.add(b"x")
    with pytest.raises(EvbufferError):
        buf.commit_space(1)
    buf.reserve_space(100000)
    buf.add(b"y" * 5000)  # consumes the spare
    with pytest.raises(EvbufferError):
        buf.commit_space(1)
    # a drain at the front does not void a reservation at the end
    v = buf.reserve_space(3)[0]
    buf.drain(1)
    v[:] = b"end"
    buf.commit_space(3)
    assert bytes(buf).endswith(b"yend")


def test_freeze():
    buf = Buffer(b"abc")
    other = Buffer(b"zz")
    buf.freeze(False)
    assert buf.is_frozen(False) and not buf.is_frozen(True)
    for call in (
        lambda: buf.add(b"x"),
        lambda: buf.add_reference(b"x"),
        lambda: buf.add_file(0, 0, 1),
        lambda: buf.add_buffer(other),
        lambda: other.remove_buffer(buf, 1),
        lambda: buf.reserve_space(1),
        lambda: buf.commit_space(0),
        lambda: buf.read_from(0),
    ):
        with pytest.raises(FrozenError):
            call()
    buf.drain(1)
    buf.prepend(b"a")
    assert "frozen_end" in repr(buf)
    buf.unfreeze(False)
    buf.freeze(True)
    for call in (
        lambda: buf.drain(1),
        lambda: buf.remove(1),
        lambda: buf.readln(),
        lambda: buf.prepend(b"x"),
        lambda: buf.prepend_buffer(other),
        lambda: buf.remove_buffer(other, 1),
        lambda: other.add_buffer(buf),
        lambda: other.prepend_buffer(buf),
        lambda: buf.write_to(1),
    ):
        with pytest.raises(FrozenError):
            call()
    buf.add(b"d")
    assert buf.copyout(10) == b"abcd"
    assert buf.search(b"c").pos == 2
    assert [bytes(v) for v in buf.peek()] == [b"abcd"]
    buf.unfreeze(True)
    assert bytes(other) == b"zz"
    assert buf.remove(4) == b"abcd"


def test_search_basic_and_ranges():
    buf = chained([b"one t", b"wo t", b"wo"])
    p = buf.search(b"two")
    assert p.pos == 4 and p == 4 and p == BufferPtr(4) and int(p) == 4
    q = buf.search(b"two", p.pos + 1)
    assert q.pos == 8
    assert buf.search(b"two", BufferPtr(9)) is None
    assert buf.search(b"two", 0, 6) is None
    assert buf.search(b"two", 0, 7).pos == 4
    assert buf.search(b"two", 0, BufferPtr(100)).pos == 4
    assert buf.search(b"", 3).pos == 3
    assert buf.search(b"x", 100) is None
    assert buf.search(bytearray(b"one")).pos == 0
    assert buf.search(memoryview(b"wo")).pos == 5
    with pytest.raises(ValueError):
        buf.search(b"o", -1)
    with pytest.raises(ValueError):
        buf.search(b"o", 0, -1)
    assert p != "x"
    with pytest.raises(TypeError):
        hash(p)
    assert repr(p) == "BufferPtr(pos=4)"


def test_search_straddles_many_tiny_chunks():
    parts = [bytes([c]) for c in b"xxabcdefgxx"]
    buf = chained(parts, "ref")
    assert buf.search(b"abcdefg").pos == 2
    assert buf.search(b"bcdefgx").pos == 3
    assert buf.search(b"abcdefgh") is None
    assert buf.search(b"gxx", 0, 10) is None
    assert buf.search(b"gxx", 0, 11).pos == 8


def test_search_memoryview_backed_reference():
    buf = Buffer()
    buf.add_reference(array.array("B", b"hello world"))
    buf.add_reference(array.array("B", b" again"))
    assert buf.search(b"world").pos == 6
    assert buf.search(b"d a").pos == 10
    assert buf.search(b"zz") is None


def test_search_resumes_from_pointer_hint():
    buf = chained([b"a,b", b",c,", b"d"] * 50)
    positions = []
    p = buf.search(b",")
    while p is not None:
        positions.append(p.pos)
        buf.ptr_set(p, 1, PtrHow.ADD)
        p = buf.search(b",", p)
    assert positions == [i for i, c in enumerate(bytes(buf)) if c == ord(",")]


def test_ptr_set():
    buf = Buffer(b"abcdef")
    p = BufferPtr()
    assert buf.ptr_set(p, 3, PtrHow.SET) is p and p.pos == 3
    buf.ptr_set(p, 3, PtrHow.ADD)
    assert p.pos == 6  # the end itself is allowed
    with pytest.raises(ValueError):
        buf.ptr_set(p, 1, PtrHow.ADD)
    assert p.pos == 6
    with pytest.raises(ValueError):
        buf.ptr_set(p, -1)
    with pytest.raises(ValueError):
        buf.ptr_set(p, 0, 7)
    with pytest.raises(TypeError):
        buf.ptr_set(p)
    q = buf.ptr_set(2, PtrHow.SET)
    assert isinstance(q, BufferPtr) and q.pos == 2
    assert buf.ptr_set(4).pos == 4
    with pytest.raises(ValueError):
        buf.ptr_set(7)
    with pytest.raises(ValueError):
        buf.ptr_set(1, 9)
    assert buf.copyout(2, q) == b"cd"


def test_pointer_hint_survives_appends_but_not_front_changes():
    buf = chained([b"aaa", b"bbb", b"ccc"])
    p = buf.search(b"b")
    assert p._owner is buf
    buf.add(b"ddd")
    assert buf.search(b"c", p).pos == 6
    buf.drain(1)
    assert buf.search(b"c", p).pos == 5  # stale hint ignored, position counts from the new start
    buf.prepend(b"zz")
    assert buf.copyout(1, p) == bytes(buf)[3:4] == b"a"
    p.pos = 0
    assert buf.copyout(2, p) == b"zz"


def test_free_context_manager_and_del_release():
    seen = []
    with Buffer() as buf:
        buf.add_reference(b"a", seen.append)
        buf.add_cb(lambda *a: seen.append("cb"))
    assert seen == [b"a"]
    assert len(buf) == 0
    buf.free()  # idempotent
    buf.add(b"still usable")
    assert bytes(buf) == b"still usable"
    assert seen == [b"a"]

    def make():
        b = Buffer()
        b.add_reference(b"gc", seen.append)

    make()
    gc.collect()
    assert seen == [b"a", b"gc"]


def test_clear():
    seen = []
    buf = Buffer()
    buf.add_reference(b"abc", seen.append)
    buf.expand(5000)
    buf.clear()
    assert len(buf) == 0 and seen == [b"abc"] and buf._spare is None


def test_remove_buffer_exactly_at_chunk_boundary():
    src = chained([b"abc", b"de", b"f"])
    dst = Buffer()
    assert src.remove_buffer(dst, 5) == 5
    assert bytes(dst) == b"abcde" and bytes(src) == b"f"
    assert nchunks(dst) == 2


def test_pointer_is_an_index():
    import operator

    p = Buffer(b"abc").search(b"c")
    assert operator.index(p) == 2 and b"xyz"[p] == ord("z")


def test_chunk_repr_and_release_all_keeps_first_error():
    from evbuffer.chunk import new_memory, new_reference, release_all

    buf = Buffer(b"ab")
    buf.add_reference(b"cd")
    f = tempfile.TemporaryFile()
    f.write(b"ef")
    f.flush()
    buf.add_file(f)
    kinds = [repr(ch).split()[1] for ch in buf._chunks]
    assert kinds == ["memory", "read-only", "file"]
    buf.free()
    assert "memory" in repr(new_memory(4))

    def bad(tag):
        raise RuntimeError(tag)

    chunks = [new_reference(b"1", bad), new_reference(b"2", bad)]
    with pytest.raises(RuntimeError, match="1"):
        release_all(chunks)
    assert all(ch.cleanup is None for ch in chunks)


def test_pread_exact_joins_split_reads(monkeypatch):
    """The OS may return fewer bytes than asked; the rest is read on."""
    import os as os_module

    from evbuffer import chunk

    real = os_module.pread
    monkeypatch.setattr(chunk.os, "pread", lambda fd, n, off: real(fd, min(n, 3), off))
    f = tempfile.TemporaryFile()
    f.write(b"0123456789")
    f.flush()
    assert chunk.pread_exact(f.fileno(), 8, 1) == b"12345678"
    f.close()
