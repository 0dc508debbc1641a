"""A Hypothesis state machine: two Buffers against two bytearray models."""

from __future__ import annotations

import os
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from evbuffer import EOL, Buffer

FILE_DATA = bytes(range(256)) * 8 + b"\r\n\n\r\0" * 50

data_st = st.one_of(
    st.binary(max_size=40),
    st.lists(st.sampled_from([b"a", b"b", b"\r", b"\n", b"\0", b"ab"]), max_size=12).map(b"".join),
    st.binary(min_size=1000, max_size=5000),
)
size_st = st.one_of(st.integers(0, 60), st.integers(0, 12000))
needle_st = st.one_of(
    st.sampled_from([b"", b"a", b"ab", b"\r\n", b"ba\r", b"\n\0"]),
    st.binary(min_size=1, max_size=6),
)


def model_eol(data: bytes, style: EOL):
    if style == EOL.LF:
        i = data.find(b"\n")
        return None if i < 0 else (i, 1)
    if style == EOL.NUL:
        i = data.find(b"\0")
        return None if i < 0 else (i, 1)
    if style == EOL.CRLF_STRICT:
        i = data.find(b"\r\n")
        return None if i < 0 else (i, 2)
    if style == EOL.CRLF:
        i = data.find(b"\n")
        if i < 0:
            return None
        return (i - 1, 2) if i > 0 and data[i - 1] == 13 else (i, 1)
    hits = [i for i in (data.find(b"\r"), data.find(b"\n")) if i >= 0]
    if not hits:
        return None
    i = min(hits)
    rest = data[i:]
    return i, len(rest) - len(rest.lstrip(b"\r\n"))


class BufferModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.bufs = [Buffer(), Buffer()]
        self.models = [bytearray(), bytearray()]
        self.cleaned: list[int] = []
        self.n_refs = 0
        self.file = tempfile.TemporaryFile()
        self.file.write(FILE_DATA)
        self.file.flush()

    def teardown(self):
        for buf in self.bufs:
            buf.free()
        self.file.close()
        assert sorted(self.cleaned) == list(range(self.n_refs))

    # -- adding
    @rule(which=st.integers(0, 1), data=data_st)
    def add(self, which, data):
        self.bufs[which].add(data)
        self.models[which] += data

    @rule(which=st.integers(0, 1), data=data_st)
    def add_bytearray(self, which, data):
        self.bufs[which].add(bytearray(data))
        self.models[which] += data

    @rule(which=st.integers(0, 1), data=data_st)
    def add_reference(self, which, data):
        ident = self.n_refs
        self.n_refs += 1

        def cleanup(obj, ident=ident):
            assert ident not in self.cleaned
            self.cleaned.append(ident)

        self.bufs[which].add_reference(bytes(data), cleanup)
        self.models[which] += data

    @rule(which=st.integers(0, 1), offset=st.integers(0, len(FILE_DATA)), length=st.integers(0, 300))
    def add_file(self, which, offset, length):
        length = min(length, len(FILE_DATA) - offset)
        self.bufs[which].add_file(os.dup(self.file.fileno()), offset, length)
        self.models[which] += FILE_DATA[offset : offset + length]

    @rule(which=st.integers(0, 1), data=data_st)
    def prepend(self, which, data):
        self.bufs[which].prepend(data)
        self.models[which][0:0] = data

    @rule(which=st.integers(0, 1), parts=st.lists(data_st, max_size=4))
    def add_buffer(self, which, parts):
        other = Buffer()
        for p in parts:
            other.add_buffer(Buffer(p))
        self.bufs[which].add_buffer(other)
        self.models[which] += b"".join(parts)
        assert len(other) == 0

    @rule(which=st.integers(0, 1), parts=st.lists(data_st, max_size=4))
    def prepend_buffer(self, which, parts):
        other = Buffer()
        for p in parts:
            other.add_reference(p)
        self.bufs[which].prepend_buffer(other)
        self.models[which][0:0] = b"".join(parts)

    @rule(which=st.integers(0, 1))
    def move_all(self, which):
        self.bufs[1 - which].add_buffer(self.bufs[which])
        self.models[1 - which] += self.models[which]
        self.models[which] = bytearray()

    @rule(which=st.integers(0, 1), n=size_st)
    def remove_buffer(self, which, n):
        moved = self.bufs[which].remove_buffer(self.bufs[1 - which], n)
        assert moved == min(n, len(self.models[which]))
        self.models[1 - which] += self.models[which][:moved]
        del self.models[which][:moved]

    # -- removing and reading
    @rule(which=st.integers(0, 1), n=size_st)
    def drain(self, which, n):
        self.bufs[which].drain(n)
        del self.models[which][:n]

    @rule(which=st.integers(0, 1), n=size_st)
    def remove(self, which, n):
        assert self.bufs[which].remove(n) == self.models[which][:n]
        del self.models[which][:n]

    @rule(which=st.integers(0, 1), n=size_st, start=size_st)
    def copyout(self, which, n, start):
        model = self.models[which]
        if start <= len(model):
            assert self.bufs[which].copyout(n, start) == model[start : start + n]

    @rule(which=st.integers(0, 1), what=needle_st, start=size_st, end=st.none() | size_st)
    def search(self, which, what, start, end):
        model = bytes(self.models[which])
        ptr = self.bufs[which].search(what, start, end)
        stop = len(model) if end is None else min(end, len(model))
        expected = model.find(what, start, stop) if start <= len(model) else -1
        assert (ptr.pos if ptr is not None else -1) == expected

    @rule(which=st.integers(0, 1), style=st.sampled_from(list(EOL)))
    def readln(self, which, style):
        model = self.models[which]
        r = model_eol(bytes(model), style)
        line = self.bufs[which].readln(style)
        if r is None:
            assert line is None
        else:
            assert line == model[: r[0]]
            del model[: r[0] + r[1]]

    @rule(which=st.integers(0, 1), n=st.integers(-1, 12000))
    def pullup(self, which, n):
        model = self.models[which]
        view = self.bufs[which].pullup(n)
        if n > len(model):
            assert view is None
        else:
            assert bytes(view) == (model if n < 0 else model[:n])

    @rule(which=st.integers(0, 1), n=st.integers(-1, 12000), start=st.integers(0, 100))
    def peek(self, which, n, start):
        model = self.models[which]
        if start > len(model):
            return
        views = self.bufs[which].peek(n, start)
        joined = b"".join(views)
        want = len(model) - start if n < 0 else min(n, len(model) - start)
        assert len(joined) >= want
        assert joined == model[start : start + len(joined)]

    @rule(which=st.integers(0, 1), n=st.integers(0, 9000), fill=st.integers(0, 9000), n_vec=st.integers(1, 2))
    def reserve_commit(self, which, n, fill, n_vec):
        fill = min(fill, n)
        views = self.bufs[which].reserve_space(n, n_vec)
        assert sum(len(v) for v in views) == n
        data = bytes((i * 7) & 0xFF for i in range(fill))
        left = data
        for v in views:
            k = min(len(v), len(left))
            v[:k] = left[:k]
            left = left[k:]
        self.bufs[which].commit_space(fill)
        self.models[which] += data

    @rule(which=st.integers(0, 1), n=st.integers(0, 9000))
    def expand(self, which, n):
        self.bufs[which].expand(n)

    @rule(which=st.integers(0, 1), how=st.integers(0, 1), step=st.integers(0, 30))
    def pointer_walk(self, which, how, step):
        buf, model = self.bufs[which], self.models[which]
        ptr = buf.search(model[:1]) if model else None
        if ptr is None:
            return
        target = ptr.pos + step
        if target <= len(model):
            buf.ptr_set(ptr, step if how else target, how)
            assert buf.copyout(3, ptr) == model[target : target + 3]

    @invariant()
    def same_bytes(self):
        for buf, model in zip(self.bufs, self.models, strict=True):
            assert len(buf) == len(model)
            assert bytes(buf) == model
            total = 0
            for ch in buf._chunks:
                assert ch.lo <= ch.off < ch.end <= ch.cap or (not ch.writable and ch.off < ch.end == ch.cap)
                total += ch.end - ch.off
            assert total == len(buf)


BufferModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestBufferModel = BufferModel.TestCase
