"""Buffer.read_from / write_to on real socketpairs, pipes and files (sendfile, pread)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import tempfile

import pytest

from evbuffer import Buffer, FrozenError, buffer_io
from evbuffer.chunk import SPARE_KEEP_MAX


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def recv_all(sock, n):
    out = b""
    for _ in range(10000):
        if len(out) >= n:
            break
        try:
            out += sock.recv(1 << 20)
        except BlockingIOError:
            import select

            select.select([sock], [], [], 1.0)
    return out


def fill(sock_or_fd):
    """Write until the kernel buffer is full; returns the count written."""
    total = 0
    chunk = b"f" * 65536
    for _ in range(10000):
        try:
            if isinstance(sock_or_fd, socket.socket):
                total += sock_or_fd.send(chunk)
            else:
                total += os.write(sock_or_fd, chunk)
        except BlockingIOError:
            return total
    raise AssertionError("never filled")


def temp_file(data):
    f = tempfile.TemporaryFile()
    f.write(data)
    f.flush()
    return f


def test_read_from_socket_object_and_int(sockpair):
    a, b = sockpair
    a.send(b"hello")
    buf = Buffer()
    assert buf.read_from(b) == 5
    a.send(b" world")
    assert buf.read_from(b.fileno()) == 6
    assert bytes(buf) == b"hello world"
    with pytest.raises(BlockingIOError):
        buf.read_from(b)
    with pytest.raises(BlockingIOError):
        buf.read_from(b.fileno())
    a.shutdown(socket.SHUT_WR)
    assert buf.read_from(b) == 0
    assert buf.read_from(b.fileno()) == 0
    assert len(buf) == 11


def test_read_from_pipe_and_file_object(pipe):
    r, w = pipe
    os.write(w, b"abc")
    buf = Buffer()
    with open(r, "rb", buffering=0, closefd=False) as fobj:
        assert buf.read_from(fobj, 2) == 2
        assert buf.read_from(fobj) == 1
    assert bytes(buf) == b"abc"
    assert buf.read_from(r, 0) == 0
    with pytest.raises(BlockingIOError):
        buf.read_from(r)
    os.close(w)
    assert buf.read_from(r) == 0


def test_read_from_bad_fd_type():
    with pytest.raises(TypeError):
        Buffer().read_from("nope")
    with pytest.raises(TypeError):
        Buffer(b"x").write_to(object())


@pytest.mark.parametrize("as_socket", [True, False])
def test_read_fills_tail_space_then_fresh_chunk(sockpair, as_socket):
    a, b = sockpair
    buf = Buffer(b"x")
    room = buf._chunks[0].cap - 1
    a.send(b"y" * (room + 100))
    got = buf.read_from(b if as_socket else b.fileno(), room + 100)
    assert got == room + 100
    assert len(buf._chunks) == 2
    assert buf._chunks[0].end == buf._chunks[0].cap
    assert bytes(buf) == b"x" + b"y" * (room + 100)


def test_read_hint_grows_under_load_and_shrinks_when_idle(sockpair):
    a, b = sockpair
    buf = Buffer()
    assert buf._read_hint == buf.read_min
    payload = b"L" * (4 << 20)
    sent = 0
    for _ in range(10000):
        if buf._read_hint == buf.read_max:
            break
        try:
            sent += a.send(payload[sent % len(payload) :][: 1 << 20])
        except BlockingIOError:
            pass
        try:
            buf.read_from(b)
        except BlockingIOError:
            pass
        buf.drain(len(buf))
    assert buf._read_hint == buf.read_max == 256 * 1024
    for _ in range(20):  # drain what is still in flight
        try:
            buf.read_from(b)
        except BlockingIOError:
            break
    buf.drain(len(buf))
    hint = buf._read_hint
    a.send(b"tiny")
    assert buf.read_from(b) == 4
    assert buf._read_hint == max(hint // 2, buf.read_min)


def test_read_keeps_small_unused_fresh_chunk_as_spare(pipe):
    r, w = pipe
    buf = Buffer(read_min=1024, read_max=4096)
    buf.add(b"q")  # tail with free space < read hint
    os.write(w, b"z")
    assert buf.read_from(r) == 1  # fits in the tail: fresh chunk unused
    assert buf._spare is not None and buf._spare.cap <= SPARE_KEEP_MAX
    spare = buf._spare
    buf.add(b"w" * (buf._chunks[0].cap - 2))  # fill the tail exactly
    os.write(w, b"more")
    assert buf.read_from(r) == 4
    assert buf._chunks[-1] is spare and buf._spare is None
    with pytest.raises(BlockingIOError):
        buf.read_from(r)
    assert buf._spare is not None


def test_read_from_frozen_and_closed_fd():
    buf = Buffer()
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        buf.read_from(r)
    assert info.value.errno == errno.EBADF
    buf.freeze(False)
    with pytest.raises(FrozenError):
        buf.read_from(r)


def test_write_to_socket_and_int(sockpair):
    a, b = sockpair
    buf = Buffer(b"ab")
    buf.add_reference(b"cd")
    buf.add_buffer(Buffer(b"ef"))
    assert buf.write_to(a) == 6
    assert recv_all(b, 6) == b"abcdef"
    buf.add(b"gh")
    buf.add_reference(b"ij")
    assert buf.write_to(a.fileno(), 3) == 3
    assert bytes(buf) == b"j"
    assert buf.write_to(a, 1) == 1
    assert recv_all(b, 4) == b"ghij"
    assert buf.write_to(a) == 0


def test_write_to_partial_then_blocking(sockpair):
    a, b = sockpair
    filled = fill(a)
    assert filled > 0
    buf = Buffer(b"x" * 1000)
    with pytest.raises(BlockingIOError):
        buf.write_to(a)
    assert len(buf) == 1000
    recv_all(b, filled)
    payload = os.urandom(8 << 20)
    buf = Buffer(payload)
    n = buf.write_to(a)
    assert 0 < n < len(payload)
    assert len(buf) == len(payload) - n
    got = recv_all(b, n)
    assert got == payload[:n]


def test_write_to_pipe_partial_with_many_chunks(pipe):
    r, w = pipe
    buf = Buffer()
    pieces = [os.urandom(100) for _ in range(300)]  # more chunks than IOV_MAX, less than a pipe holds
    for p in pieces:
        buf.add_reference(p)
    data = b"".join(pieces)
    n = buf.write_to(w)
    assert n == len(data)  # complete writes continue past IOV_MAX chunks
    out = b""
    for _ in range(100):
        try:
            out += os.read(r, 1 << 20)
        except BlockingIOError:
            break
    assert out == data
    big = Buffer(os.urandom(1 << 20))
    n = big.write_to(w)
    assert 0 < n < (1 << 20)
    assert buffer_io.IOV_MAX >= 1


def test_write_to_broken_pipe(sockpair):
    a, b = sockpair
    b.close()
    buf = Buffer(b"data")
    with pytest.raises(BrokenPipeError):
        buf.write_to(a)
    assert len(buf) == 4


def test_write_to_frozen():
    buf = Buffer(b"x")
    buf.freeze(True)
    with pytest.raises(FrozenError):
        buf.write_to(1)


def test_file_segment_sendfile_to_socket(sockpair):
    a, b = sockpair
    data = os.urandom(100_000)
    f = temp_file(b"HEAD" + data + b"TAIL")
    buf = Buffer(b"<")
    buf.add_file(f, 4, len(data))
    buf.add(b">")
    assert len(buf) == len(data) + 2
    total = 0
    out = b""
    for _ in range(1000):
        if not len(buf):
            break
        try:
            total += buf.write_to(a)
        except BlockingIOError:
            pass
        try:
            out += b.recv(1 << 20)
        except BlockingIOError:
            pass
    out += recv_all(b, len(data) + 2 - len(out))
    assert total == len(data) + 2
    assert out == b"<" + data + b">"
    assert f.closed


def test_file_segment_int_fd_closed_when_drained(sockpair):
    a, b = sockpair
    fd, path = tempfile.mkstemp()
    os.unlink(path)
    os.write(fd, b"0123456789")
    buf = Buffer()
    buf.add_file(fd, 2)
    assert len(buf) == 8
    assert buf.write_to(a, 3) == 3
    os.fstat(fd)  # still open
    assert buf.copyout(10) == b"56789"
    assert buf.remove(2) == b"56"
    assert buf.write_to(a) == 3
    assert recv_all(b, 6) == b"234789"
    with pytest.raises(OSError):
        os.fstat(fd)


def test_file_segment_fallback_when_sendfile_refuses(tmp_path):
    data = b"sendfile cannot append" * 100
    src = temp_file(data)
    dst_path = tmp_path / "out"
    dst = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        buf = Buffer()
        buf.add_file(src)
        written = 0
        for _ in range(100):
            if not len(buf):
                break
            written += buf.write_to(dst)
        assert written == len(data)
    finally:
        os.close(dst)
    assert dst_path.read_bytes() == data
    assert src.closed


def test_file_segment_other_sendfile_error_propagates():
    f = temp_file(b"abc")
    buf = Buffer()
    buf.add_file(f)
    r, w = os.pipe()
    os.close(w)
    with pytest.raises(OSError):
        buf.write_to(r)  # read end of a pipe: EBADF from sendfile
    os.close(r)
    assert len(buf) == 3
    buf.free()
    assert f.closed


def test_add_file_validation(tmp_path):
    f = temp_file(b"0123456789")
    buf = Buffer()
    with pytest.raises(ValueError):
        buf.add_file(f, 5, 6)
    with pytest.raises(ValueError):
        buf.add_file(f, 11)
    with pytest.raises(ValueError):
        buf.add_file(f, -1, 2)
    with pytest.raises(ValueError):
        buf.add_file(f, 0, -2)
    with pytest.raises(TypeError):
        buf.add_file("path", 0, 1)
    assert not f.closed
    buf.add_file(f, 10)  # empty segment: closed at once
    assert f.closed and len(buf) == 0
    g = temp_file(b"abc")
    buf.add_file(g.fileno(), 0, 3)
    assert buf.copyout(3) == b"abc"
    os.ftruncate(g.fileno(), 1)
    from evbuffer import EvbufferError

    with pytest.raises(EvbufferError):
        buf.copyout(3)
    buf.free()


def test_file_search_readln_peek_across_segments():
    f1 = temp_file(b"line one\r\nline ")
    f2 = temp_file(b"two\r\nrest")
    buf = Buffer()
    buf.add_file(f1)
    buf.add_file(f2)
    assert buf.search(b"ne tw").pos == 12
    assert [bytes(v) for v in buf.peek(3, 13)] == [b"e ", b"two\r\nrest"]
    assert buf.readln() == b"line one"
    assert buf.readln() == b"line two"
    assert f1.closed and not f2.closed
    assert buf.remove(4) == b"rest"
    assert f2.closed


def test_big_file_split_and_loaded_in_pieces():
    from evbuffer.chunk import FILE_PIECE

    data = os.urandom(FILE_PIECE * 2 + 100)
    f = temp_file(data)
    buf = Buffer()
    buf.add_file(f)
    dst = Buffer()
    assert buf.remove_buffer(dst, 7) == 7  # splits the file segment, no copy
    assert dst._chunks[0].buf is None
    start = FILE_PIECE + 50
    views = buf.peek(10, start)
    assert bytes(views[0][:10]) == data[7 + start : 7 + start + 10]
    needle = data[-20:]
    assert buf.search(needle).pos == len(data) - 27
    assert bytes(dst) == data[:7]
    assert bytes(buf) == data[7:]
    buf.drain(len(buf))
    assert not f.closed  # dst's chunk still shares the file
    dst.drain(7)
    assert f.closed


class _NoMsgSocket(socket.socket):
    """A socket without sendmsg/recvmsg_into, as ssl.SSLSocket."""

    def sendmsg(self, *args, **kwargs):
        raise NotImplementedError

    def recvmsg_into(self, *args, **kwargs):
        raise NotImplementedError


def test_sockets_without_msg_calls_fall_back():
    a0, b0 = socket.socketpair()
    a = _NoMsgSocket(fileno=a0.detach())
    b = _NoMsgSocket(fileno=b0.detach())
    try:
        buf = Buffer(b"one")
        buf.add_reference(b"two")
        n = buf.write_to(a)
        assert n == 6  # one chunk per call, then the next
        dst = Buffer(b"x")
        room = dst._chunks[0].cap - 1
        a.sendall(b"y" * (room + 10))
        assert dst.read_from(b, room + 10) >= 6
        assert bytes(dst)[:7] == b"xonetwo"
    finally:
        a.close()
        b.close()


def test_callbacks_on_io(sockpair):
    a, b = sockpair
    seen = []
    buf = Buffer()
    buf.add_cb(lambda bb, info, arg: seen.append(tuple(info)))
    a.send(b"12345")
    buf.read_from(b)
    buf.write_to(a)
    assert seen == [(0, 5, 0), (5, 0, 5)]


def test_nonblocking_flag_respected(pipe):
    r, _w = pipe
    flags = fcntl.fcntl(r, fcntl.F_GETFL)
    assert flags & os.O_NONBLOCK
    with pytest.raises(BlockingIOError):
        Buffer().read_from(r, 10)


def test_read_into_tail_space_only(pipe):
    r, w = pipe
    buf = Buffer(b"x")
    tail = buf._chunks[0]
    os.write(w, b"0123456789")
    assert buf.read_from(r, 4) == 4
    assert len(buf._chunks) == 1 and tail.end == 5
    assert bytes(buf) == b"x0123"


def test_write_to_complete_call_then_blocking_returns_count(pipe):
    _r, w = pipe
    try:
        size = fcntl.fcntl(w, 1032)  # F_GETPIPE_SZ
    except OSError:  # pragma: no cover - not Linux
        pytest.skip("needs F_GETPIPE_SZ")
    piece = size // buffer_io.IOV_MAX
    buf = Buffer()
    for _ in range(buffer_io.IOV_MAX + 10):
        buf.add_reference(b"p" * piece)
    n = buf.write_to(w)  # the first call fills the pipe exactly, the next would block
    assert n == piece * buffer_io.IOV_MAX
    assert len(buf) == piece * 10


def test_explicit_howmuch_is_a_cap_not_an_allocation(pipe):
    r, w = pipe
    buf = Buffer()
    os.write(w, b"abc")
    assert buf.read_from(r, 1 << 40) == 3
    assert buf._chunks[0].cap <= buf.read_min
    # a read cut short by howmuch (a rate limit, a watermark) says nothing about load
    buf._read_hint = 8192
    os.write(w, b"x" * 100)
    assert buf.read_from(r, 100) == 100
    assert buf._read_hint == 8192
    # a read offered the tail's whole free space takes it all
    os.write(w, b"y" * 5000)
    room = buf._chunks[-1].cap - buf._chunks[-1].end
    assert buf.read_from(r) == min(5000, max(room, 8192))
