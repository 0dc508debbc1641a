"""Chunk recycling never corrupts data: a Hypothesis state machine over a real socketpair.

``out`` recycles the chunks it sends into ``inp`` (as a socket bufferevent's output does into
its input); the machine interleaves peer sends, ``inp.read_from``, ``out.write_to`` (partial
sends: small socket buffers), moves between the buffers (``add_buffer``, ``remove_buffer``,
``prepend_buffer``), adds, references, drains, reservations committed around recycling, and
views held across all of it, and checks every buffer and the peer's byte stream against
bytearray models.
"""

from __future__ import annotations

import socket
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from evbuffer import Buffer, EvbufferError

PATTERN = bytes(range(251)) * 400  # 100 KiB; slices of it differ at every offset mod 251
data_st = st.one_of(
    st.binary(min_size=1, max_size=64),
    st.tuples(st.integers(0, 250), st.integers(1000, 5000)).map(lambda t: PATTERN[t[0] : t[0] + t[1]]),
    st.tuples(st.integers(0, 250), st.integers(10_000, 80_000)).map(lambda t: PATTERN[t[0] : t[0] + t[1]]),
)
size_st = st.one_of(st.integers(0, 100), st.integers(0, 100_000), st.just(-1))


class RecycleModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = socket.socketpair()
        for s in (self.a, self.b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            s.setblocking(False)
        self.bufs: dict[str, Buffer] = {}
        self.models: dict[str, bytearray] = {}
        self.to_a = bytearray()  # sent by the peer, not read yet
        self.written = bytearray()  # written by out, in order
        self.peer_got = bytearray()
        self.views: list[memoryview] = []  # held, never looked at again: they may go stale
        self.resv: list[memoryview] | None = None
        self.resv_valid = False
        self.n_refs = 0
        self.cleaned: list[int] = []

    @initialize(small=st.booleans())
    def setup(self, small: bool) -> None:
        inp = Buffer(read_min=1024, read_max=16384) if small else Buffer()
        out, side = Buffer(), Buffer()
        out._recycle_to = inp
        self.bufs = {"inp": inp, "out": out, "side": side}
        self.models = {name: bytearray() for name in self.bufs}

    def teardown(self) -> None:
        for buf in self.bufs.values():
            buf.free()
        self.a.close()
        self.b.close()
        assert sorted(self.cleaned) == list(range(self.n_refs))

    def touched(self, name: str) -> None:
        if name == "inp":
            self.resv_valid = False

    # -- the peer
    @rule(data=data_st)
    def peer_send(self, data: bytes) -> None:
        try:
            n = self.b.send(data)
        except BlockingIOError:
            n = 0
        self.to_a += data[:n]

    @rule()
    def peer_recv(self) -> None:
        for _ in range(1000):
            try:
                more = self.b.recv(1 << 20)
            except BlockingIOError:
                break
            self.peer_got += more
        assert self.peer_got == self.written[: len(self.peer_got)]

    # -- IO
    @rule(howmuch=size_st)
    def read_from(self, howmuch: int) -> None:
        if howmuch == 0:
            return
        try:
            n = self.bufs["inp"].read_from(self.a, howmuch)
        except BlockingIOError:
            return
        assert 0 < n <= len(self.to_a)
        self.models["inp"] += self.to_a[:n]
        del self.to_a[:n]
        self.touched("inp")

    @rule(which=st.sampled_from(["out", "inp"]), howmuch=size_st)
    def write_to(self, which: str, howmuch: int) -> None:
        if which == "side":  # pragma: no cover - not drawn; side is never written
            return
        try:
            n = self.bufs[which].write_to(self.a, howmuch)
        except BlockingIOError:
            return
        model = self.models[which]
        self.written += model[:n]
        del model[:n]
        self.touched(which)

    # -- moves
    @rule(dst=st.sampled_from(["inp", "out", "side"]), src=st.sampled_from(["inp", "out", "side"]))
    def add_buffer(self, dst: str, src: str) -> None:
        if dst == src:
            return
        self.bufs[dst].add_buffer(self.bufs[src])
        self.models[dst] += self.models[src]
        self.models[src].clear()
        self.touched(dst)
        self.touched(src)

    @rule(dst=st.sampled_from(["inp", "out", "side"]), src=st.sampled_from(["inp", "out", "side"]))
    def prepend_buffer(self, dst: str, src: str) -> None:
        if dst == src:
            return
        self.bufs[dst].prepend_buffer(self.bufs[src])
        self.models[dst][:0] = self.models[src]
        self.models[src].clear()
        self.touched(dst)
        self.touched(src)

    @rule(
        dst=st.sampled_from(["inp", "out", "side"]),
        src=st.sampled_from(["inp", "out", "side"]),
        n=st.integers(0, 100_000),
    )
    def remove_buffer(self, dst: str, src: str, n: int) -> None:
        if dst == src:
            return
        moved = self.bufs[src].remove_buffer(self.bufs[dst], n)
        assert moved == min(n, len(self.models[src]))
        self.models[dst] += self.models[src][:moved]
        del self.models[src][:moved]
        self.touched(dst)
        self.touched(src)

    @rule(
        dst=st.sampled_from(["inp", "out", "side"]),
        src=st.sampled_from(["inp", "out", "side"]),
        frac=st.floats(0.05, 0.95),
    )
    def split_first_chunk(self, dst: str, src: str, frac: float) -> None:
        """Move part of the first chunk (a zero-copy split when it is big enough)."""
        chunks = self.bufs[src]._chunks
        if dst == src or not chunks:
            return
        self.remove_buffer(dst, src, max(1, int((chunks[0].end - chunks[0].off) * frac)))

    # The corrupting sequences need several of these in a row: give them more weight (the
    # machine picks uniformly among rules).
    @rule(src=st.sampled_from(["inp", "out", "side"]), frac=st.floats(0.05, 0.95))
    def split_into_side(self, src: str, frac: float) -> None:
        self.split_first_chunk("side" if src != "side" else "inp", src, frac)

    @rule(
        src=st.sampled_from(["inp", "out", "side"]),
        frac=st.floats(0.05, 0.95),
        how=st.sampled_from(["drain", "write"]),
        refill=st.sampled_from(["add", "read", "recycled read"]),
        data=st.binary(min_size=1, max_size=8000),
    )
    def split_then_reuse(self, src: str, frac: float, how: str, refill: str, data: bytes) -> None:
        """The hazard in one step: split a chunk's front off to another buffer, drop the rest
        of the chunk (drain or send), then append or read (into a spare, maybe recycled)."""
        chunks = self.bufs[src]._chunks
        if not chunks:
            self.add(src, data, True)
            return
        self.split_first_chunk("side" if src != "side" else "inp", src, frac)
        if chunks:
            rest = chunks[0].end - chunks[0].off
            if how == "drain":
                self.drain(src, rest)
            else:
                self.write_to(src if src != "side" else "out", rest)
        if refill == "add":
            self.add(src, data, True)
        elif refill == "read":
            self.read_more(len(data))
        else:
            self.write_to("out", -1)
            self.read_more(len(data))

    @rule(which=st.sampled_from(["inp", "out", "side"]), n=st.integers(1, 70_000))
    def drain_more(self, which: str, n: int) -> None:
        self.drain(which, n)

    @rule(which=st.sampled_from(["inp", "out", "side"]), data=st.binary(min_size=1, max_size=8000))
    def add_copy(self, which: str, data: bytes) -> None:
        self.add(which, data, True)

    @rule(howmuch=size_st)
    def read_more(self, howmuch: int) -> None:
        self.peer_send(PATTERN[: 1 + howmuch % 60_000])
        self.read_from(howmuch)

    # -- adding and removing
    @rule(which=st.sampled_from(["inp", "out", "side"]), data=data_st, copy=st.booleans())
    def add(self, which: str, data: bytes, copy: bool) -> None:
        self.bufs[which].add(bytearray(data) if copy else data)
        self.models[which] += data
        self.touched(which)

    @rule(which=st.sampled_from(["inp", "out"]), data=data_st)
    def add_reference(self, which: str, data: bytes) -> None:
        i = self.n_refs
        self.n_refs += 1
        self.bufs[which].add_reference(data, lambda ref, i=i: self.cleaned.append(i))
        self.models[which] += data
        self.touched(which)

    @rule(which=st.sampled_from(["inp", "out", "side"]), n=st.integers(0, 100_000))
    def drain(self, which: str, n: int) -> None:
        self.bufs[which].drain(n)
        del self.models[which][:n]
        self.touched(which)

    @rule(which=st.sampled_from(["inp", "out", "side"]), n=st.integers(0, 5000))
    def remove(self, which: str, n: int) -> None:
        got = self.bufs[which].remove(n)
        assert got == self.models[which][:n]
        del self.models[which][:n]
        self.touched(which)

    # -- views
    @rule(which=st.sampled_from(["inp", "out", "side"]), n=st.integers(-1, 70_000))
    def hold_pullup(self, which: str, n: int) -> None:
        view = self.bufs[which].pullup(n)
        expect = self.models[which] if n < 0 else self.models[which][:n]
        if view is not None:
            assert bytes(view) == expect
            self.views = [*self.views[-20:], view]
        # pullup moves bytes between chunks but never changes the contents; no touched()

    @rule(which=st.sampled_from(["inp", "out", "side"]))
    def hold_peek(self, which: str) -> None:
        views = self.bufs[which].peek(-1)
        assert b"".join(bytes(v) for v in views) == self.models[which]
        self.views = [*self.views[-20:], *views[:4]]

    @rule(n=st.integers(1, 40_000), n_vec=st.integers(1, 2))
    def reserve(self, n: int, n_vec: int) -> None:
        self.resv = self.bufs["inp"].reserve_space(n, n_vec)
        self.resv_valid = True

    @precondition(lambda self: self.resv is not None)
    @rule(k=st.integers(0, 40_000), fill=st.integers(0, 255))
    def commit(self, k: int, fill: int) -> None:
        views = self.resv
        assert views is not None
        total = sum(len(v) for v in views)
        k = min(k, total)
        if self.resv_valid:
            left = k
            for v in views:
                take = min(left, len(v))
                v[:take] = bytes([fill]) * take
                left -= take
            self.bufs["inp"].commit_space(k)
            self.models["inp"] += bytes([fill]) * k
        else:
            try:
                self.bufs["inp"].commit_space(k)
            except EvbufferError:
                pass
            else:  # still intact (changes only at the front): what the views hold was added
                added = b"".join(bytes(v) for v in views)[:k]
                self.models["inp"] += added
        self.resv = None
        self.resv_valid = False

    @invariant()
    def contents_match(self) -> None:
        for name, buf in self.bufs.items():
            assert len(buf) == len(self.models[name]), name
            assert bytes(buf) == self.models[name], name
        assert self.peer_got == self.written[: len(self.peer_got)]


RecycleModel.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestRecycleModel = RecycleModel.TestCase


def test_final_stream_is_complete() -> None:
    """A fixed run of the same operations: every byte written arrives, in order."""
    m: Any = RecycleModel()
    m.setup(small=False)
    for i in range(30):
        m.peer_send(bytes([i]) * (500 + i * 300))
        m.read_from(-1)
        m.add_buffer("out", "inp")
        m.write_to("out", -1)
        m.peer_recv()
    for _ in range(200):
        if not m.bufs["out"] and not m.to_a:
            break
        m.read_from(-1)
        m.add_buffer("out", "inp")
        m.write_to("out", -1)
        m.peer_recv()
    m.peer_recv()
    m.contents_match()
    assert m.peer_got == m.written and len(m.written) == sum(500 + i * 300 for i in range(30))
    m.teardown()
