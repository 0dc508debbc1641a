"""The lean ``read_from``/``write_to`` paths for plain sockets and chunk recycling.

Real socketpairs throughout; partial sends come from a small ``SO_SNDBUF`` and a peer that
does not read.
"""

from __future__ import annotations

import os
import select
import socket
import tempfile
from typing import Any

import pytest

import evcore
from evbuffer import BEV_OPT, EOL, Buffer, Bufferevent, FrozenError, buffer_io
from evbuffer.chunk import SPARE_KEEP_MAX, new_memory


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def small_pair():
    """A stream socketpair whose sender ``a`` has a small send buffer (partial sends)."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def drain_peer(sock: socket.socket) -> bytes:
    out = bytearray()
    for _ in range(100000):
        try:
            more = sock.recv(1 << 20)
        except BlockingIOError:
            return bytes(out)
        if not more:
            return bytes(out)
        out += more
    raise AssertionError("peer never ran dry")


def pump(buf: Buffer, a: socket.socket, b: socket.socket, n: int) -> bytes:
    """Write all of ``buf`` to ``a`` while reading ``b``; returns what ``b`` got."""
    got = bytearray()
    for _ in range(100000):
        if not buf and len(got) >= n:
            break
        if buf:
            try:
                buf.write_to(a)
            except BlockingIOError:
                select.select([], [a], [], 0.05)
        got += drain_peer(b)
    return bytes(got)


# ---------------------------------------------------------------------------- write_to
def test_partial_send_of_one_chunk(small_pair):
    a, b = small_pair
    data = bytes(range(256)) * 1024  # 256 KiB, one chunk
    buf = Buffer(bytearray(data))
    assert len(buf._chunks) == 1
    n = buf.write_to(a)
    assert 0 < n < len(data)
    assert len(buf) == len(data) - n
    with pytest.raises(BlockingIOError):
        buf.write_to(a)  # nothing at all could be written
    assert pump(buf, a, b, len(data)) == data
    assert not buf


def test_partial_sends_keep_the_byte_stream(small_pair):
    a, b = small_pair
    buf = Buffer()
    expect = bytearray()
    for i in range(300):  # many chunks: more than IOV_MAX in the chain at once
        piece = bytes([i % 251]) * (1 + (i * 37) % 3000)
        if i % 3 == 0:
            buf.add_reference(piece)
        else:
            buf.add(bytearray(piece))
            buf.add_buffer(Buffer(piece))
            expect += piece
        expect += piece
    assert len(buf._chunks) > buffer_io.IOV_MAX
    assert pump(buf, a, b, len(expect)) == bytes(expect)


def test_write_howmuch_within_the_first_chunk(sockpair):
    a, b = sockpair
    buf = Buffer(b"abcdef")
    assert buf.write_to(a, 2) == 2
    assert b.recv(10) == b"ab" and bytes(buf) == b"cdef"
    assert buf._chunks[0].off == 2


def test_write_howmuch_across_chunks(sockpair):
    a, b = sockpair
    buf = Buffer(b"abc")
    buf.add_reference(b"def")
    buf.add_reference(b"ghi")
    assert buf.write_to(a, 5) == 5
    assert b.recv(10) == b"abcde" and bytes(buf) == b"fghi"


def test_cleanups_run_once_for_sent_references(sockpair):
    a, b = sockpair
    cleaned: list[bytes] = []
    buf = Buffer()
    buf.add_reference(b"one", cleaned.append)
    buf.add_reference(b"two", cleaned.append)
    buf.add_reference(b"three", cleaned.append)
    assert buf.write_to(a, 5) == 5
    assert cleaned == [b"one"]
    assert buf.write_to(a) == 6
    assert cleaned == [b"one", b"two", b"three"]
    assert b.recv(20) == b"onetwothree"


def test_a_raising_cleanup_still_drains_and_reports(sockpair):
    a, b = sockpair
    seen: list[tuple[int, int, int]] = []
    buf = Buffer()
    buf.add_cb(lambda bb, info, arg: seen.append(tuple(info)))

    def bad(ref: Any) -> None:
        raise RuntimeError("cleanup")

    buf.add_reference(b"xy", bad)
    with pytest.raises(RuntimeError):
        buf.write_to(a)
    assert len(buf) == 0 and seen[-1] == (2, 0, 2)
    assert b.recv(10) == b"xy"


def test_loaded_file_chunk_closes_its_file_when_sent(sockpair):
    a, b = sockpair
    f = tempfile.TemporaryFile()
    f.write(b"file bytes")
    f.flush()
    buf = Buffer()
    buf.add_file(f, 0, 10)
    assert buf.search(b"bytes").pos == 5  # reads the file chunk into memory (still owns f)
    assert buf._chunks[0].buf is not None
    assert buf.write_to(a) == 10
    assert f.closed
    assert b.recv(20) == b"file bytes"


def test_file_chunk_behind_memory_takes_the_general_path(sockpair):
    a, b = sockpair
    f = tempfile.TemporaryFile()
    f.write(b"0123456789")
    f.flush()
    buf = Buffer(b"mem:")
    buf.add_file(f, 0, 10)
    buf.add(b":tail")
    assert buf.write_to(a) == 19  # memory, then sendfile, then memory: one call
    assert b.recv(64) == b"mem:0123456789:tail"
    assert f.closed


def test_socket_subclass_and_int_fd_take_the_general_path(sockpair):
    a, b = sockpair

    class Sub(socket.socket):
        pass

    sub = Sub(fileno=os.dup(a.fileno()))
    try:
        buf = Buffer(b"sub")
        buf.add_reference(b"class")
        assert buf.write_to(sub) == 8
        b.send(b"back")
        assert buf.read_from(sub) == 4
    finally:
        sub.close()
    buf.add(b"int")
    assert buf.write_to(a.fileno()) == 7
    assert b.recv(20) == b"subclassbackint"


def test_write_frozen_start_refuses(sockpair):
    a, _ = sockpair
    buf = Buffer(b"x")
    buf.freeze(True)
    with pytest.raises(FrozenError):
        buf.write_to(a)
    assert Buffer().write_to(a) == 0


def test_eol_resume_hint_follows_partial_writes(sockpair):
    a, b = sockpair
    buf = Buffer(b"a" * 100)
    assert buf.readln(EOL.LF) is None  # remembers where to resume the scan
    k = buf._eol_hint[1]
    assert buf.write_to(a, 40) == 40
    assert buf._eol_hint is not None and buf._eol_hint[1] == k - 40
    buf.add(b"b\nrest")
    assert buf.readln(EOL.LF) == b"a" * 60 + b"b"
    assert buf.write_to(a) == 4
    assert buf._eol_hint is None
    buf.add(b"zzz")
    assert buf.readln(EOL.LF) is None
    assert buf.write_to(a) == 3  # drains past the hint: forgotten
    assert buf._eol_hint is None


def test_user_callback_counts_after_lean_write(sockpair):
    a, b = sockpair
    buf = Buffer(b"abcdef")
    seen: list[tuple[int, int, int]] = []
    buf.add_cb(lambda bb, info, arg: seen.append(tuple(info)))
    buf.write_to(a, 4)
    buf.write_to(a)
    assert seen == [(6, 0, 4), (2, 0, 2)]


# ---------------------------------------------------------------------------- read_from
def test_read_into_empty_buffer_uses_the_spare_whole(sockpair):
    a, b = sockpair
    buf = Buffer()
    spare = buf._spare = new_memory(64 * 1024)
    a.send(b"s" * 10000)
    assert buf.read_from(b) == 10000  # more than the 4 KiB hint: the spare was offered whole
    assert buf._chunks[0] is spare and buf._spare is None


def test_read_into_spare_respects_howmuch(sockpair):
    a, b = sockpair
    buf = Buffer()
    buf._spare = new_memory(64 * 1024)
    a.send(b"s" * 10000)
    assert buf.read_from(b, 3000) == 3000
    assert buf.read_from(b, 100000) == 7000  # (general path: into the tail's free space)
    assert bytes(buf) == b"s" * 10000


def test_small_spare_is_left_for_a_fresh_chunk(sockpair):
    a, b = sockpair
    buf = Buffer()
    small = buf._spare = new_memory(16)
    a.send(b"q" * 100)
    assert buf.read_from(b) == 100
    assert buf._spare is small and buf._chunks[0] is not small


def test_fresh_chunk_kept_on_eagain_and_eof(sockpair):
    a, b = sockpair
    buf = Buffer()
    with pytest.raises(BlockingIOError):
        buf.read_from(b)
    kept = buf._spare
    assert kept is not None and kept.cap == buf.read_min
    a.shutdown(socket.SHUT_WR)
    assert buf.read_from(b) == 0
    assert buf._spare is kept and not buf


def test_big_fresh_chunk_not_kept_on_eagain(sockpair):
    a, b = sockpair
    buf = Buffer(read_min=SPARE_KEEP_MAX * 2, read_max=SPARE_KEEP_MAX * 2)
    with pytest.raises(BlockingIOError):
        buf.read_from(b)
    assert buf._spare is None


def test_read_hint_adapts_on_the_lean_path(sockpair):
    a, b = sockpair
    buf = Buffer(read_min=1024, read_max=4096)
    a.send(b"x" * 1024)
    assert buf.read_from(b) == 1024
    assert buf._read_hint == 2048
    buf.drain(len(buf))
    buf._spare = None
    a.send(b"x" * 5000)
    assert buf.read_from(b) == 2048 and buf._read_hint == 4096
    buf.drain(len(buf))
    assert buf.read_from(b) == 2952
    buf.drain(len(buf))
    buf._spare = None
    a.send(b"x" * 10)
    assert buf.read_from(b) == 10 and buf._read_hint == 2048  # ran dry early: halved
    buf.drain(len(buf))
    buf._spare = None
    buf._read_hint = 1024
    a.send(b"x" * 10)
    assert buf.read_from(b) == 10 and buf._read_hint == 1024  # never below read_min


def test_lean_read_runs_callbacks(sockpair):
    a, b = sockpair
    buf = Buffer()
    seen: list[tuple[int, int]] = []
    buf._add_watch(lambda added, deleted: seen.append((added, deleted)))
    a.send(b"abc")
    buf.read_from(b)
    u_seen: list[tuple[int, int, int]] = []
    buf.add_cb(lambda bb, info, arg: u_seen.append(tuple(info)))
    buf.drain(3)
    a.send(b"de")
    buf.read_from(b)
    assert seen == [(3, 0), (0, 3), (2, 0)]
    assert u_seen == [(3, 0, 3), (0, 2, 0)]


# ---------------------------------------------------------------------------- recycling
def linked() -> tuple[Buffer, Buffer]:
    inp, out = Buffer(), Buffer()
    out._recycle_to = inp
    return inp, out


def test_sent_chunk_becomes_the_inputs_spare(sockpair):
    a, b = sockpair
    inp, out = linked()
    b.send(b"ping")
    inp.read_from(a)
    chunk = inp._chunks[0]
    out.add_buffer(inp)
    assert out.write_to(a) == 4
    assert inp._spare is chunk and chunk.off == chunk.end == 0
    b.send(b"pong!")
    assert b.recv(10) == b"ping"
    inp.read_from(a)
    assert inp._chunks[0] is chunk and bytes(inp) == b"pong!"


def test_partially_sent_chunk_is_not_recycled(small_pair):
    a, b = small_pair
    inp, out = linked()
    out.add(bytearray(200000))
    chunk = out._chunks[0]
    n = out.write_to(a)
    assert n < 200000
    assert inp._spare is None and out._chunks[0] is chunk


def test_recycling_replaces_a_smaller_spare_only(sockpair):
    a, b = sockpair
    inp, out = linked()
    small = inp._spare = new_memory(100)
    out.add(bytearray(5000))
    big = out._chunks[0]
    out.write_to(a)
    assert inp._spare is big
    drain_peer(b)
    out.add(bytearray(10))
    other = out._chunks[0]
    assert other.cap < big.cap
    out.write_to(a)
    assert inp._spare is big  # kept the bigger one
    assert out._spare is other  # this buffer keeps its own (emptied, small)
    assert small is not inp._spare


def test_no_recycling_into_a_reserved_spare(sockpair):
    a, b = sockpair
    inp, out = linked()
    view = inp.reserve_space(10)[0]
    reserved = inp._spare
    out.add(bytearray(5000))
    out.write_to(a)
    assert inp._spare is reserved
    view[:3] = b"abc"
    inp.commit_space(3)
    assert bytes(inp) == b"abc"


def test_no_recycling_while_the_output_has_a_reservation(sockpair):
    a, b = sockpair
    inp, out = linked()
    out.add(b"abc")
    chunk = out._chunks[0]
    out.reserve_space(5)  # a view into chunk's free space
    out.write_to(a)
    assert inp._spare is None and out._spare is None
    assert chunk not in out._chunks


def test_no_recycling_beyond_read_max(sockpair):
    a, b = sockpair
    inp, out = linked()
    inp.read_max = 8192
    inp.read_min = 4096
    out.add(bytearray(20000))
    out.write_to(a)
    assert inp._spare is None


def test_split_chunks_are_never_recycled(sockpair):
    a, b = sockpair
    inp, out = linked()
    src = Buffer(bytearray(b"x" * 10000))
    src.remove_buffer(out, 6000)  # zero-copy split: out gets a read-only part sharing memory
    shared = out._chunks[0]
    assert not shared.writable and src._chunks[0].lo > 0
    out.write_to(a)
    assert inp._spare is None
    assert bytes(src) == b"x" * 4000
    src.write_to(a)  # the source's chunk: front given away (lo > 0), not recycled either
    assert inp._spare is None
    assert len(drain_peer(b)) == 10000


@pytest.mark.parametrize("via_int_fd", [False, True])
def test_memory_shared_with_an_unsent_split_is_never_reused(sockpair, via_int_fd):
    a, b = sockpair
    inp, out = linked()
    side = Buffer()
    out.add(bytearray(b"x" * 10000))
    out.remove_buffer(side, 6000)  # side: a read-only view of the chunk's first 6000 bytes
    assert out.write_to(a.fileno() if via_int_fd else a) == 4000  # the rest of the chunk: sent
    assert inp._spare is None and out._spare is None
    b.send(b"Z" * 8000)
    for _ in range(10):  # a recycled chunk would be overwritten from offset 0
        if len(inp) == 8000:
            break
        inp.read_from(a)
    assert bytes(inp) == b"Z" * 8000
    assert bytes(side) == b"x" * 6000
    side.add(b"y" * 100)  # appends never go into the shared memory either
    assert bytes(side) == b"x" * 6000 + b"y" * 100


def test_general_path_recycles_too(sockpair):
    a, b = sockpair
    inp, out = linked()
    out.add(bytearray(3000))
    chunk = out._chunks[0]
    assert out.write_to(a.fileno()) == 3000
    assert inp._spare is chunk


def test_drained_chunk_becomes_own_spare_without_a_target(sockpair):
    a, b = sockpair
    out = Buffer(bytearray(3000))
    chunk = out._chunks[0]
    out.write_to(a)
    assert out._spare is chunk
    out.add(bytearray(SPARE_KEEP_MAX + 1))
    out._spare = None
    out.write_to(a)
    assert out._spare is None  # too big to keep without a target


# ---------------------------------------------------------------------------- bufferevents
def test_socket_bev_links_output_to_input():
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE)
        assert bev.output._recycle_to is bev.input
        bev.free()
        b.close()


def _echo_bev(base: evcore.EventBase, sock: socket.socket, options: int = 0) -> Bufferevent:
    bev = Bufferevent.socket(base, sock, options | BEV_OPT.CLOSE_ON_FREE)
    bev.setcb(lambda bb, arg: bb.output.add_buffer(bb.input), None, None)
    bev.enable(evcore.EV_READ | evcore.EV_WRITE)
    return bev


@pytest.mark.parametrize("options", [0, BEV_OPT.THREADSAFE, BEV_OPT.DEFER_CALLBACKS])
def test_echo_through_small_buffers_keeps_every_byte(options):
    """1 MiB through an echoing socket bufferevent whose socket buffers are tiny: partial
    sends, write events, recycled chunks; the peer gets back exactly what it sent."""
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        b.setblocking(False)
        bev = _echo_bev(base, a, options)
        data = os.urandom(1 << 20)
        sent = 0
        got = bytearray()
        for _ in range(200000):
            if len(got) >= len(data):
                break
            if sent < len(data):
                try:
                    sent += b.send(data[sent : sent + 65536])
                except BlockingIOError:
                    pass
            base.loop(evcore.EVLOOP_NONBLOCK)
            try:
                got += b.recv(1 << 20)
            except BlockingIOError:
                pass
        assert bytes(got) == data
        bev.free()
        b.close()


def test_echo_reads_grow_and_reuse_chunks():
    """Large messages: reads reach read_max quickly and, once warm, the input mostly reads into
    the chunks the output sent instead of allocating (and zero-filling) new ones."""
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        b.setblocking(False)
        bev = _echo_bev(base, a)
        made: list[int] = []
        reads: list[int] = []
        orig_new, orig_read = buffer_io.new_memory, buffer_io.read_from

        def counting_new(cap: int) -> Any:
            made.append(cap)
            return orig_new(cap)

        def counting_read(buf: Buffer, fd: Any, howmuch: int) -> int:
            n = orig_read(buf, fd, howmuch)
            reads.append(n)
            return n

        buffer_io.new_memory = counting_new  # type: ignore[assignment]
        import evbuffer.bev_socket as bev_socket

        saved = bev_socket._read_from
        bev_socket._read_from = counting_read  # type: ignore[assignment]
        msg = os.urandom(1 << 20)

        def one_message() -> None:
            sent = got = 0
            for _ in range(100000):
                if got >= len(msg):
                    break
                if sent < len(msg):
                    try:
                        sent += b.send(msg[sent:])
                    except BlockingIOError:
                        pass
                base.loop(evcore.EVLOOP_NONBLOCK)
                try:
                    got += len(b.recv(1 << 20))
                except BlockingIOError:
                    pass
            assert got == len(msg)

        try:
            one_message()
            assert bev.input._read_hint == bev.input.read_max
            assert len(made) <= 12, made  # read_min doubling up to read_max
            del made[:], reads[:]
            for _ in range(4):
                one_message()
            assert len(reads) >= 16
            assert len(made) * 2 < len(reads), (made, reads)
        finally:
            buffer_io.new_memory = orig_new  # type: ignore[assignment]
            bev_socket._read_from = saved  # type: ignore[assignment]
            bev.free()
            b.close()


# ---------------------------------------------------------------------------- _on_read's rarer turns
def test_spurious_read_wakeup_does_nothing():
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        bev = _echo_bev(base, a)
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)  # nothing to read: EAGAIN
        assert len(bev.input) == 0 and bev.get_enabled() & evcore.EV_READ
        bev.free()
        b.close()


def test_read_at_the_high_watermark_reads_nothing():
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE)
        bev.enable(evcore.EV_READ)
        bev.setwatermark(evcore.EV_READ, 0, 10)
        bev.input.add(b"0123456789")  # at the mark: the watermark suspends reading
        b.send(b"more")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)  # a wake-up from before the suspension
        assert bytes(bev.input) == b"0123456789"
        assert bev._read_suspended
        bev.input.drain(10)
        assert not bev._read_suspended
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert bytes(bev.input) == b"more"
        bev.free()
        b.close()


def test_rate_limited_read_and_write_with_an_empty_bucket():
    from evbuffer import RateLimit

    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        b.setblocking(False)
        bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE)
        bev.enable(evcore.EV_READ | evcore.EV_WRITE)
        bev.set_rate_limit(RateLimit(100, 100, 100, 100, tick=60.0))
        bev.decrement_read_limit(100)
        bev.decrement_write_limit(100)
        b.send(b"held")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert len(bev.input) == 0  # the bucket is empty: nothing read
        bev.write(b"waits")  # the eager write finds the bucket empty too
        with pytest.raises(BlockingIOError):
            b.recv(10)
        bev._on_write(a.fileno(), int(evcore.EV_WRITE), None)
        with pytest.raises(BlockingIOError):
            b.recv(10)
        assert bytes(bev.output) == b"waits"
        bev.set_rate_limit(None)
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert bytes(bev.input) == b"held"
        bev.free()
        b.close()


def test_plain_read_flag_follows_watermarks_and_max_single_read():
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE)
        calls: list[int] = []
        bev.setcb(lambda bb, arg: calls.append(len(bb.input)), None, None)
        bev.enable(evcore.EV_READ)
        assert bev._plain_read
        bev.setwatermark(evcore.EV_READ, 5, 0)
        assert not bev._plain_read
        b.send(b"abc")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert calls == [] and len(bev.input) == 3  # below the low watermark: no callback
        b.send(b"de")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert calls == [5]
        bev.setwatermark(evcore.EV_READ, 0, 0)
        assert bev._plain_read
        with pytest.raises(ValueError):
            bev.setwatermark(evcore.EV_READ, 5, 2)
        assert bev._plain_read
        bev.set_max_single_read(2)
        assert not bev._plain_read
        bev.input.drain(5)
        b.send(b"fghij")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert bytes(bev.input) == b"fg"  # capped by the max single read
        bev.set_max_single_read(-1)
        assert bev._plain_read
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert bytes(bev.input) == b"fghij"
        bev.free()
        b.close()


def test_deferred_socket_bev_is_never_plain():
    with evcore.EventBase() as base:
        a, b = socket.socketpair()
        bev = Bufferevent.socket(base, a, BEV_OPT.CLOSE_ON_FREE | BEV_OPT.DEFER_CALLBACKS)
        assert not bev._plain_read
        calls: list[bytes] = []
        bev.setcb(lambda bb, arg: calls.append(bb.read()), None, None)
        bev.enable(evcore.EV_READ)
        b.send(b"later")
        bev._on_read(a.fileno(), int(evcore.EV_READ), None)
        assert calls == []  # deferred: from the loop
        base.loop(evcore.EVLOOP_NONBLOCK)
        assert calls == [b"later"]
        bev.free()
        b.close()
