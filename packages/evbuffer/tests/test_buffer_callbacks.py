"""Buffer callbacks (byte counts, enable/disable, suspend/resume, deferral) and references."""

from __future__ import annotations

import mmap

import pytest

from evbuffer import Buffer, CallbackInfo


def recorder(buf):
    seen = []
    handle = buf.add_cb(lambda b, info, arg: seen.append((b, info, arg)), "arg")
    return seen, handle


def infos(seen):
    return [tuple(info) for _, info, _ in seen]


def test_counts_for_every_kind_of_change():
    buf = Buffer(b"abc")
    seen, _ = recorder(buf)
    buf.add(b"de")
    buf.prepend(b"_")
    buf.add_reference(b"ref")
    buf.drain(2)
    buf.remove(1)
    buf.readln()  # nothing complete: no change
    buf.add(b"\n")
    buf.readln()
    assert infos(seen) == [
        (3, 2, 0),
        (5, 1, 0),
        (6, 3, 0),
        (9, 0, 2),
        (7, 0, 1),
        (6, 1, 0),
        (7, 0, 7),
    ]
    assert all(b is buf and arg == "arg" for b, _, arg in seen)
    assert isinstance(seen[0][1], CallbackInfo)


def test_no_call_without_change():
    buf = Buffer()
    seen, _ = recorder(buf)
    buf.add(b"")
    buf.drain(0)
    buf.remove(0)
    buf.copyout(5)
    buf.pullup()
    buf.peek()
    buf.search(b"x")
    buf.prepend(b"")
    buf.add_reference(b"")
    buf.reserve_space(10)
    buf.commit_space(0)
    assert seen == []


def test_moves_notify_both_buffers():
    src, dst = Buffer(b"abcdef"), Buffer(b"xy")
    s_seen, _ = recorder(src)
    d_seen, _ = recorder(dst)
    src.remove_buffer(dst, 2)
    dst.add_buffer(src)
    src.add(b"12")
    dst.prepend_buffer(src)
    assert infos(s_seen) == [(6, 0, 2), (4, 0, 4), (0, 2, 0), (2, 0, 2)]
    assert infos(d_seen) == [(2, 2, 0), (4, 4, 0), (8, 2, 0)]


def test_pullup_and_commit_counts():
    buf = Buffer()
    buf.add_reference(b"ab")
    buf.add_reference(b"cd")
    seen, _ = recorder(buf)
    buf.pullup()
    v = buf.reserve_space(3)[0]
    v[:] = b"efg"
    buf.commit_space(3)
    assert infos(seen) == [(4, 3, 0)]


def test_remove_cb_enable_disable():
    buf = Buffer()
    seen, h = recorder(buf)
    h.disable()
    assert not h.enabled
    buf.add(b"a")
    h.enable()
    buf.add(b"b")
    assert infos(seen) == [(1, 1, 0)]  # a disabled callback misses changes; counts restart
    buf.remove_cb(h)
    buf.add(b"c")
    assert len(seen) == 1
    with pytest.raises(ValueError):
        buf.remove_cb(h)
    with pytest.raises(TypeError):
        buf.add_cb("not callable")
    assert "enabled" in repr(h)
    h.disable()
    assert "disabled" in repr(h)


def test_callback_removing_itself_and_others_during_run():
    buf = Buffer()
    calls = []
    handles = {}

    def first(b, info, arg):
        calls.append("first")
        b.remove_cb(handles["first"])
        b.remove_cb(handles["second"])

    def second(b, info, arg):  # pragma: no cover - removed before it runs
        calls.append("second")

    handles["first"] = buf.add_cb(first)
    handles["second"] = buf.add_cb(second)
    buf.add(b"x")
    buf.add(b"y")
    assert calls == ["first"]


def test_callback_modifying_buffer_recurses_with_right_counts():
    buf = Buffer()
    seen = []

    def cb(b, info, arg):
        seen.append(tuple(info))
        if len(b) > 3:
            b.drain(len(b))

    buf.add_cb(cb)
    buf.add(b"ab")
    buf.add(b"cd")
    assert seen == [(0, 2, 0), (2, 2, 0), (4, 0, 4)]
    assert len(buf) == 0


def test_exception_from_callback_propagates_buffer_consistent():
    buf = Buffer()

    def boom(b, info, arg):
        raise RuntimeError("boom")

    h = buf.add_cb(boom)
    with pytest.raises(RuntimeError):
        buf.add(b"abc")
    assert bytes(buf) == b"abc"
    buf.remove_cb(h)
    seen, _ = recorder(buf)
    buf.drain(1)
    assert infos(seen) == [(3, 0, 1)]


def test_suspend_resume_batches():
    buf = Buffer(b"0123")
    seen, _ = recorder(buf)
    buf.suspend_callbacks()
    buf.suspend_callbacks()
    buf.add(b"45")
    buf.drain(3)
    buf.resume_callbacks()
    assert seen == []
    buf.resume_callbacks()
    assert infos(seen) == [(4, 2, 3)]
    buf.suspend_callbacks()
    buf.resume_callbacks()  # nothing happened: no call
    assert len(seen) == 1
    with pytest.raises(ValueError):
        buf.resume_callbacks()


def test_deferred_callbacks_with_callable_and_base_like_object():
    queue = []
    buf = Buffer()
    seen, _ = recorder(buf)
    buf.defer_callbacks(queue.append)
    buf.add(b"abc")
    buf.drain(1)
    assert seen == [] and len(queue) == 1
    queue.pop()()
    assert infos(seen) == [(0, 3, 1)]

    class BaseLike:
        def __init__(self):
            self.pending = []

        def defer(self, fn):
            self.pending.append(fn)

    base = BaseLike()
    buf.defer_callbacks(base)
    buf.add(b"d")
    buf.suspend_callbacks()
    base.pending.pop()()  # runs while suspended: held until resume
    assert len(seen) == 1
    buf.resume_callbacks()
    base.pending.pop()()
    assert infos(seen)[-1] == (2, 1, 0)
    buf.add(b"e")
    buf.defer_callbacks(None)  # back to immediate: pending counts flushed now
    assert infos(seen)[-1] == (3, 1, 0)
    buf.add(b"f")
    assert infos(seen)[-1] == (4, 1, 0)
    with pytest.raises(TypeError):
        buf.defer_callbacks(42)


def test_real_event_base_defers():
    evcore = pytest.importorskip("evcore")
    with evcore.EventBase() as base:
        if not hasattr(base, "defer"):
            pytest.skip("evcore has no EventBase.defer yet")
        buf = Buffer()
        seen, _ = recorder(buf)
        buf.defer_callbacks(base)
        buf.add(b"abc")
        buf.add(b"de")
        assert seen == []
        base.loop(evcore.EVLOOP_NONBLOCK)
        assert infos(seen) == [(0, 5, 0)]


def test_free_drops_callbacks():
    buf = Buffer(b"abc")
    seen, h = recorder(buf)
    buf.free()
    buf.add(b"x")
    assert seen == []
    with pytest.raises(ValueError):
        buf.remove_cb(h)


# ---------------------------------------------------------------- references


def test_reference_cleanup_once_on_last_byte():
    seen = []
    data = b"0123456789"
    buf = Buffer()
    buf.add_reference(data, seen.append)
    buf.add(b"tail")
    buf.drain(3)
    assert buf.remove(6) == b"345678"
    assert seen == []
    buf.drain(1)
    assert seen == [data]
    buf.drain(len(buf))
    assert seen == [data]


def test_reference_is_zero_copy():
    data = bytearray(b"abcdef")
    buf = Buffer()
    buf.add_reference(data)
    assert buf._chunks[0].buf is data
    data[0] = ord("X")  # the caller promised not to; the buffer sees it
    assert bytes(buf) == b"Xbcdef"
    with pytest.raises(BufferError):
        data.extend(b"!")  # pinned while referenced
    buf.drain(6)
    data.extend(b"!")  # released
    assert data == b"Xbcdef!"


def test_reference_cleanup_on_free_move_and_pullup():
    seen = []
    a = Buffer()
    a.add_reference(b"one", seen.append)
    b = Buffer()
    b.add_buffer(a)
    assert seen == []
    b.free()
    assert seen == [b"one"]
    c = Buffer()
    c.add_reference(b"ab", seen.append)
    c.add_reference(b"cd", seen.append)
    c.pullup(3)
    assert seen == [b"one", b"ab"]
    assert bytes(c) == b"abcd"
    c.pullup()
    assert seen == [b"one", b"ab", b"cd"]
    d = Buffer()
    d.add_reference(b"", seen.append)
    assert seen[-1] == b"" and len(d) == 0


def test_reference_cleanup_error_does_not_skip_others():
    seen = []

    def bad(data):
        raise RuntimeError(data)

    buf = Buffer()
    buf.add_reference(b"a", bad)
    buf.add_reference(b"b", seen.append)
    cb_seen, _ = recorder(buf)
    with pytest.raises(RuntimeError):
        buf.drain(2)
    assert seen == [b"b"] and len(buf) == 0
    assert infos(cb_seen) == [(2, 0, 2)]
    with pytest.raises(TypeError):
        buf.add_reference(b"x", cleanup="nope")


def test_reference_to_mmap_can_be_closed_in_cleanup():
    m = mmap.mmap(-1, 4096)
    m[:5] = b"hello"
    buf = Buffer()
    buf.add_reference(m, lambda obj: obj.close())
    assert buf.search(b"llo").pos == 2
    buf.drain(4096)
    assert m.closed


def test_callbacks_for_add_file_and_readln_fast_path():
    import tempfile

    buf = Buffer()
    seen, _ = recorder(buf)
    f = tempfile.TemporaryFile()
    f.write(b"abc")
    f.flush()
    buf.add_file(f)
    buf.free()
    assert infos(seen) == [(0, 3, 0)]
    buf = Buffer(b"one\ntwo\n")
    seen, _ = recorder(buf)
    assert buf.readln() == b"one"  # the chunk stays: advanced in place
    assert buf.readln() == b"two"  # the chunk goes
    assert infos(seen) == [(8, 0, 4), (4, 0, 4)]


def test_remove_second_callback_and_stale_deferred_run():
    buf = Buffer()
    first_seen, _first = recorder(buf)
    second_seen, second = recorder(buf)
    buf.remove_cb(second)
    buf.add(b"x")
    assert len(first_seen) == 1 and second_seen == []
    buf.defer_callbacks(None)  # nothing pending: nothing runs
    assert len(first_seen) == 1
    queue = []
    buf.defer_callbacks(queue.append)
    buf.add(b"y")
    buf.defer_callbacks(None)  # flushes now
    assert len(first_seen) == 2
    queue.pop()()  # the scheduled run finds nothing left to report
    assert len(first_seen) == 2
