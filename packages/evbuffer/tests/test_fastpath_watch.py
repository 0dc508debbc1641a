"""The buffer watcher hook (``CallbackHost._add_watch``): a cheap callback for a buffer's owner.

A lone watcher is called directly as ``fn(added, deleted)``; alongside user callbacks, or while
callbacks are suspended or deferred, it runs through the ordinary machinery, and user callbacks
see exactly the ``CallbackInfo`` they would see without it.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

import evcore
from evbuffer import BEV_OPT, Buffer, Bufferevent, CallbackInfo


def recorder(buf: Buffer) -> tuple[list[tuple[int, int, int]], Any]:
    seen: list[tuple[int, int, int]] = []
    handle = buf.add_cb(lambda b, info, arg: seen.append(tuple(info)))
    return seen, handle


def watcher(buf: Buffer, deletes: bool = True) -> tuple[list[tuple[int, int]], Any]:
    seen: list[tuple[int, int]] = []
    handle = buf._add_watch(lambda added, deleted: seen.append((added, deleted)), deletes=deletes)
    return seen, handle


def every_kind_of_change(buf: Buffer, other: Buffer) -> None:
    buf.add(b"de")
    buf.prepend(b"_")
    buf.add_reference(b"ref")
    buf.drain(2)
    buf.remove(1)
    buf.readln()  # nothing complete: no change
    buf.add(b"\n")
    buf.readln()
    other.add(b"moved")
    buf.add_buffer(other)
    other.add(b"front")
    buf.prepend_buffer(other)
    buf.remove_buffer(other, 3)
    v = buf.reserve_space(4)
    v[0][:4] = b"wxyz"
    buf.commit_space(4)
    a, b = socket.socketpair()
    try:
        buf.write_to(a, 5)
        b.send(b"back")
        buf.read_from(a)
    finally:
        a.close()
        b.close()


def test_lone_watcher_is_called_directly():
    buf = Buffer(b"abc")
    seen, handle = watcher(buf)
    assert buf._fast is not None and buf._fast_del
    buf.add(b"de")
    buf.drain(4)
    buf.add_buffer(Buffer(b"xyz"))
    a, b = socket.socketpair()
    try:
        assert buf.write_to(a, 2) == 2
    finally:
        a.close()
        b.close()
    assert seen == [(2, 0), (0, 4), (3, 0), (0, 2)]
    assert buf._n_add == buf._n_del == 0  # nothing accumulates
    buf.remove_cb(handle)
    assert buf._fast is None and buf._cbs == []
    buf.add(b"more")
    assert seen == [(2, 0), (0, 4), (3, 0), (0, 2)]


def test_watcher_without_deletes_skips_deletion_only_changes():
    buf = Buffer()
    seen, _ = watcher(buf, deletes=False)
    buf.add(b"abcdef")
    buf.drain(2)
    buf.remove(1)
    a, b = socket.socketpair()
    try:
        buf.write_to(a)
    finally:
        a.close()
        b.close()
    buf.add(b"x")
    assert seen == [(6, 0), (1, 0)]


def test_user_callbacks_see_the_same_info_with_and_without_a_watcher():
    plain, plain_other = Buffer(b"abc"), Buffer()
    p_seen, _ = recorder(plain)
    every_kind_of_change(plain, plain_other)

    buf, other = Buffer(b"abc"), Buffer()
    w_seen, _ = watcher(buf)
    u_seen, _ = recorder(buf)
    assert buf._fast is None  # a user callback: the ordinary path for both
    every_kind_of_change(buf, other)
    assert u_seen == p_seen
    assert w_seen == [(added, deleted) for _, added, deleted in p_seen]
    assert bytes(buf) == bytes(plain)


def test_watcher_runs_in_registration_order_with_user_callbacks():
    buf = Buffer()
    order: list[str] = []
    buf.add_cb(lambda b, info, arg: order.append("user1"))
    buf._add_watch(lambda a, d: order.append("watch"))
    buf.add_cb(lambda b, info, arg: order.append("user2"))
    buf.add(b"x")
    assert order == ["user1", "watch", "user2"]


def test_removing_the_user_callback_restores_the_direct_call():
    buf = Buffer()
    w_seen, _ = watcher(buf)
    u_seen, handle = recorder(buf)
    buf.add(b"ab")
    buf.remove_cb(handle)
    assert buf._fast is not None
    buf.add(b"c")
    assert u_seen == [(0, 2, 0)]
    assert w_seen == [(2, 0), (1, 0)]


def test_disabled_user_callback_still_takes_the_ordinary_path():
    buf = Buffer()
    w_seen, _ = watcher(buf)
    u_seen, handle = recorder(buf)
    handle.disable()
    buf.add(b"ab")
    assert u_seen == [] and w_seen == [(2, 0)]


def test_two_watchers_both_called():
    buf = Buffer()
    s1, _ = watcher(buf)
    s2, _ = watcher(buf, deletes=False)
    assert buf._fast is None
    buf.add(b"abc")
    buf.drain(1)
    assert s1 == [(3, 0), (0, 1)]
    assert s2 == [(3, 0)]


def test_suspended_watcher_gets_the_totals_at_resume():
    buf = Buffer(b"0123")
    seen, _ = watcher(buf)
    buf.suspend_callbacks()
    assert buf._fast is None
    buf.add(b"abc")
    buf.drain(2)
    buf.suspend_callbacks()
    buf.add(b"d")
    buf.resume_callbacks()
    assert seen == [] and buf._fast is None  # still held by the outer suspension
    buf.resume_callbacks()
    assert seen == [(4, 2)]
    assert buf._fast is not None
    buf.add(b"e")
    assert seen == [(4, 2), (1, 0)]


def test_suspend_resume_without_changes_restores_the_direct_call():
    buf = Buffer()
    seen, _ = watcher(buf)
    buf.suspend_callbacks()
    buf.resume_callbacks()
    assert buf._fast is not None and seen == []


def test_watcher_added_while_suspended_waits_for_resume():
    buf = Buffer()
    buf.suspend_callbacks()
    seen, _ = watcher(buf)
    assert buf._fast is None
    buf.add(b"ab")
    assert seen == []
    buf.resume_callbacks()
    assert seen == [(2, 0)] and buf._fast is not None


def test_deferred_watcher_is_coalesced_and_runs_later():
    later: list[Any] = []
    buf = Buffer()
    seen, _ = watcher(buf)
    buf.defer_callbacks(later.append)
    assert buf._fast is None
    buf.add(b"ab")
    buf.add(b"c")
    buf.drain(1)
    assert seen == [] and len(later) == 1
    later.pop()()
    assert seen == [(3, 1)]
    buf.add(b"d")
    buf.defer_callbacks(None)  # back to immediate: the pending change runs now
    assert seen == [(3, 1), (1, 0)]
    assert buf._fast is not None
    later.pop()()  # the stale scheduled run finds nothing to do
    assert seen == [(3, 1), (1, 0)]


def test_deferred_with_an_event_base():
    with evcore.EventBase() as base:
        buf = Buffer()
        seen, _ = watcher(buf)
        buf.defer_callbacks(base)
        buf.add(b"abc")
        assert seen == []
        base.loop(evcore.EVLOOP_NONBLOCK)
        assert seen == [(3, 0)]


def test_a_raising_watcher_leaves_the_buffer_consistent():
    buf = Buffer()

    def boom(added: int, deleted: int) -> None:
        raise RuntimeError("watch")

    buf._add_watch(boom)
    with pytest.raises(RuntimeError):
        buf.add(b"abc")
    assert bytes(buf) == b"abc" and buf._n_add == 0 and buf._fast is boom
    u_seen, _ = recorder(buf)
    with pytest.raises(RuntimeError):
        buf.drain(1)
    assert u_seen == []  # the watcher came first and raised; counts were reset all the same
    assert buf._n_add == buf._n_del == 0
    buf.suspend_callbacks()
    buf.add(b"x")
    with pytest.raises(RuntimeError):
        buf.resume_callbacks()
    assert buf._cb_hold == 0 and buf._n_add == 0 and buf._fast is None  # two callbacks now


def test_watcher_changing_the_buffer_reenters():
    buf = Buffer()
    seen: list[tuple[int, int]] = []

    def watch(added: int, deleted: int) -> None:
        seen.append((added, deleted))
        if added and len(buf) > 3:
            buf.drain(2)

    buf._add_watch(watch)
    buf.add(b"abcd")
    assert seen == [(4, 0), (0, 2)] and bytes(buf) == b"cd"


def test_free_drops_the_watcher():
    buf = Buffer(b"abc")
    seen, handle = watcher(buf)
    buf.free()
    assert buf._fast is None and buf._cbs == []
    buf.add(b"x")
    assert seen == []
    with pytest.raises(ValueError):
        buf.remove_cb(handle)


def test_adapter_passes_counts_of_the_callbackinfo():
    buf = Buffer()
    seen, handle = watcher(buf, deletes=False)
    handle.cb(buf, CallbackInfo(0, 0, 5), None)
    handle.cb(buf, CallbackInfo(0, 2, 5), None)
    assert seen == [(2, 5)]


# ---------------------------------------------------------------------------- bufferevents
def _socket_bev(base: evcore.EventBase, options: int = 0) -> tuple[Bufferevent, socket.socket]:
    a, b = socket.socketpair()
    b.setblocking(False)
    bev = Bufferevent.socket(base, a, options | BEV_OPT.CLOSE_ON_FREE)
    return bev, b


def _recv(sock: socket.socket, n: int, base: evcore.EventBase | None = None) -> bytes:
    out = b""
    for _ in range(2000):
        if len(out) >= n:
            break
        if base is not None:
            base.loop(evcore.EVLOOP_NONBLOCK)
        try:
            out += sock.recv(65536)
        except BlockingIOError:
            import select

            select.select([sock], [], [], 0.01)
    return out


def test_socket_bev_output_uses_a_direct_watcher():
    with evcore.EventBase() as base:
        bev, peer = _socket_bev(base)
        assert bev.output._fast == bev._output_watch and not bev.output._fast_del
        bev.write(b"eager")
        assert peer.recv(10) == b"eager"  # sent inside write(), no loop pass
        bev.free()
        peer.close()


def test_socket_bev_user_output_callback_sees_correct_counts():
    with evcore.EventBase() as base:
        bev, peer = _socket_bev(base)
        seen, _ = recorder(bev.output)
        bev.write(b"hello")
        # the eager write runs inside the add's callbacks, from the bufferevent's watcher
        # (registered first): the user callback, after it, hears of the send (re-entered) first,
        # then of the add, each with its own exact counts, as with any pair of callbacks
        assert peer.recv(10) == b"hello"
        assert seen == [(5, 0, 5), (0, 5, 0)]
        assert len(bev.output) == 0
        bev.free()
        peer.close()


def test_socket_bev_deferred_callbacks_write_from_the_loop():
    with evcore.EventBase() as base:
        bev, peer = _socket_bev(base, BEV_OPT.DEFER_CALLBACKS)
        assert bev.output._fast is None
        bev.write(b"later")
        with pytest.raises(BlockingIOError):
            peer.recv(10)
        assert _recv(peer, 5, base) == b"later"
        bev.free()
        peer.close()


def test_socket_bev_suspended_output_sends_once_at_resume():
    with evcore.EventBase() as base:
        bev, peer = _socket_bev(base)
        bev.output.suspend_callbacks()
        bev.write(b"one ")
        bev.write(b"two")
        with pytest.raises(BlockingIOError):
            peer.recv(10)
        bev.output.resume_callbacks()
        assert peer.recv(10) == b"one two"
        assert bev.output._fast is not None
        bev.free()
        peer.close()


def test_socket_bev_echo_in_read_callback_sends_after_the_callback():
    with evcore.EventBase() as base:
        bev, peer = _socket_bev(base)
        sent_inside: list[int] = []

        def readcb(b: Bufferevent, arg: Any) -> None:
            b.output.add_buffer(b.input)
            b.write(b"!")
            sent_inside.append(len(b.output))

        bev.setcb(readcb, None, None)
        bev.enable(evcore.EV_READ)
        peer.send(b"ping")
        assert _recv(peer, 5, base) == b"ping!"
        assert sent_inside == [5]  # held until the callback returned: one send
        bev.free()
        peer.close()
