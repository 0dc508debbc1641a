"""Rate limits (libevent's ``bufferevent_ratelim.c``): buckets per bufferevent and per group.

Real socketpairs with socket bufferevents; time is a FakeClock advanced by hand, so a
"tick" is exactly what the test says it is.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from evbuffer import ratelimit
from evbuffer.bufferevent import BEV_OPT, SUSPEND_BW, SUSPEND_BW_GROUP, Bufferevent
from evbuffer.errors import EvbufferError
from evbuffer.ratelimit import UNLIMITED, RateLimit, RateLimitGroup, _BevRate
from evcore import EV_READ, EV_WRITE, EVLOOP_NONBLOCK, EventBase
from evcore.testing import FakeClock

START = 1000.0
BIG = 60_000


class Env:
    """A fake-clock base and socket bufferevents with raw peers, all freed at teardown."""

    def __init__(self) -> None:
        self.clock = FakeClock(start=START)
        self.base = EventBase(clock=self.clock)
        self.bevs: list[Bufferevent] = []
        self.peers: list[socket.socket] = []
        self.groups: list[RateLimitGroup] = []

    def bev(self, options: int = 0) -> tuple[Bufferevent, socket.socket]:
        s1, s2 = socket.socketpair()
        s2.setblocking(False)
        bev = Bufferevent.socket(self.base, s1, BEV_OPT.CLOSE_ON_FREE | options)
        self.bevs.append(bev)
        self.peers.append(s2)
        return bev, s2

    def group(self, cfg: RateLimit) -> RateLimitGroup:
        g = RateLimitGroup(self.base, cfg)
        self.groups.append(g)
        return g

    def pump(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            self.base.loop(EVLOOP_NONBLOCK)

    def tick(self, seconds: float = 1.0) -> None:
        self.clock.advance(seconds)
        self.pump()

    def close(self) -> None:
        for bev in self.bevs:
            bev.free()
        for g in self.groups:
            g.free()
        for s in self.peers:
            s.close()
        self.base.free()


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


def rate_of(bev: Bufferevent) -> _BevRate:
    st = bev._rate
    assert st is not None
    return st


def drain(sock: socket.socket) -> int:
    got = 0
    for _ in range(10_000):
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            break
        if not data:
            break
        got += len(data)
    return got


def reader(env: Env, rate: int, burst: int, *, send: int = BIG) -> tuple[Bufferevent, socket.socket]:
    bev, peer = env.bev()
    bev.set_rate_limit(RateLimit(rate, burst, 10**6, 10**6))
    peer.sendall(b"r" * send)
    bev.enable(EV_READ)
    return bev, peer


# ---------------------------------------------------------------------------------- RateLimit
def test_ratelimit_fields_and_value_semantics() -> None:
    cfg = RateLimit(1, 2, 3, 4, tick=0.25)
    assert (cfg.read_rate, cfg.read_burst, cfg.write_rate, cfg.write_burst, cfg.tick) == (1, 2, 3, 4, 0.25)
    assert cfg == RateLimit(1, 2, 3, 4, 0.25) and hash(cfg) == hash(RateLimit(1, 2, 3, 4, 0.25))
    assert cfg != RateLimit(1, 2, 3, 4, 0.5)
    assert cfg != "cfg"
    assert "write_burst=4" in repr(cfg)
    with pytest.raises(AttributeError):
        cfg.read_rate = 5
    assert RateLimit(5, 5, 5, 5).tick == 1.0  # libevent's default tick


def test_ratelimit_takes_a_common_timeout_as_tick() -> None:
    with EventBase() as base:
        assert RateLimit(1, 1, 1, 1, base.init_common_timeout(0.5)).tick == 0.5


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        ((0, 1, 1, 1), ValueError),  # rate < 1
        ((1, 1, 0, 1), ValueError),
        ((5, 4, 1, 1), ValueError),  # rate > burst
        ((1, 1, 5, 4), ValueError),
        ((1, ratelimit.RATE_LIMIT_MAX + 1, 1, 1), ValueError),
        ((1, 1, 1, ratelimit.RATE_LIMIT_MAX + 1), ValueError),
        ((1.5, 2, 1, 1), TypeError),
        ((True, 2, 1, 1), TypeError),
        (("1", 2, 1, 1), TypeError),
        ((1, 1, 1, 1, 0), ValueError),
        ((1, 1, 1, 1, -1.0), ValueError),
        ((1, 1, 1, 1, float("nan")), ValueError),
        ((1, 1, 1, 1, float("inf")), ValueError),
        ((1, 1, 1, 1, 1e-9), ValueError),
        ((1, 1, 1, 1, "soon"), TypeError),
        ((1, 1, 1, 1, None), TypeError),
    ],
)
def test_ratelimit_validation(args: tuple[Any, ...], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        RateLimit(*args)


def test_ratelimit_limits_of_the_range() -> None:
    top = ratelimit.RATE_LIMIT_MAX
    assert RateLimit(top, top, 1, top).read_burst == top
    assert RateLimit(1, 1, 1, 1, tick=1e-6).tick == 1e-6


# ---------------------------------------------------------------------------------- one bufferevent
def test_read_limit_per_tick_and_resume_without_user_action(env: Env) -> None:
    rate = 100
    bev, _peer = reader(env, rate, 3 * rate)
    env.pump()
    assert len(bev.input) == rate  # a new bucket starts at the rate, as libevent's
    assert bev._read_suspended & SUSPEND_BW
    assert bev.get_read_limit() == 0
    env.pump(5)
    assert len(bev.input) == rate  # nothing more within the tick
    seen = [len(bev.input)]
    for _ in range(6):
        env.tick()
        seen.append(len(bev.input))
    assert [b - a for a, b in itertools.pairwise(seen)] == [rate] * 6
    k = 7
    assert abs(len(bev.input) - rate * k) <= 3 * rate


def test_read_burst_caps_what_idle_ticks_save(env: Env) -> None:
    bev, peer = env.bev()
    bev.set_rate_limit(RateLimit(100, 250, 10**6, 10**6))
    bev.enable(EV_READ)
    env.clock.advance(10.0)  # ten idle ticks save at most the burst
    assert bev.get_read_limit() == 250
    assert bev.get_max_to_read() == 250
    peer.sendall(b"z" * 5000)
    env.pump()
    assert len(bev.input) == 250  # all of the burst at once, then nothing this tick
    env.tick()
    assert len(bev.input) == 350


def test_read_total_over_many_ticks_matches_rate(env: Env) -> None:
    rate, burst = 300, 900
    bev, _peer = reader(env, rate, burst)
    env.pump()
    for _ in range(20):
        env.tick(0.5)  # two half ticks make one tick
    assert abs(len(bev.input) - rate * 10) <= burst


def test_write_limit_per_tick(env: Env) -> None:
    bev, peer = env.bev()
    bev.set_rate_limit(RateLimit(10**6, 10**6, 200, 400))
    bev.disable(EV_WRITE)
    bev.write(b"w" * 5000)
    bev.enable(EV_WRITE)
    env.pump()
    assert drain(peer) == 200
    assert bev._write_suspended & SUSPEND_BW
    got = [200]
    for _ in range(5):
        env.tick()
        got.append(drain(peer))
    assert got == [200] * 6
    assert len(bev.output) == 5000 - 1200


def test_eager_write_is_limited_too(env: Env) -> None:
    """The first write() goes out at once, but only as much as the bucket allows."""
    bev, peer = env.bev()
    bev.set_rate_limit(RateLimit(10**6, 10**6, 100, 100))
    bev.write(b"e" * 1000)
    assert drain(peer) == 100
    assert bev._write_suspended & SUSPEND_BW
    env.pump()
    assert drain(peer) == 0
    for _ in range(3):
        env.tick()
    assert drain(peer) == 300


def test_write_callback_runs_when_limited_output_drains(env: Env) -> None:
    bev, peer = env.bev()
    calls: list[int] = []
    bev.setcb(None, lambda b, arg: calls.append(len(b.output)), None)
    bev.set_rate_limit(RateLimit(10**6, 10**6, 100, 100))
    bev.disable(EV_WRITE)
    bev.write(b"x" * 250)
    bev.enable(EV_WRITE)
    for _ in range(4):
        env.tick()
    assert drain(peer) == 250
    assert calls and calls[-1] == 0


def test_set_rate_limit_none_removes_limit_and_unsuspends(env: Env) -> None:
    bev, _peer = reader(env, 50, 50)
    env.pump()
    assert len(bev.input) == 50 and bev._read_suspended & SUSPEND_BW
    bev.set_rate_limit(None)
    assert bev._rate is None and not bev._read_suspended
    assert bev.get_read_limit() == UNLIMITED
    env.pump()
    assert len(bev.input) == BIG  # everything, at once, without a tick
    bev.set_rate_limit(None)  # no limit: nothing to do
    assert bev._rate is None
    assert env.base.num_events() >= 1  # the read event; no refill timer left behind


def test_same_cfg_is_a_noop_and_a_new_cfg_keeps_the_bucket_clipped(env: Env) -> None:
    bev, _peer = env.bev()
    cfg = RateLimit(100, 500, 100, 500)
    bev.set_rate_limit(cfg)
    env.clock.advance(10)
    assert bev.get_read_limit() == 500
    bev.set_rate_limit(cfg)
    assert bev.get_read_limit() == 500
    bev.set_rate_limit(RateLimit(10, 200, 10, 300))  # clipped down to the new bursts
    assert (bev.get_read_limit(), bev.get_write_limit()) == (200, 300)
    bev.set_rate_limit(RateLimit(10, 1000, 10, 1000))  # never clipped up
    assert bev.get_read_limit() == 200
    env.clock.advance(1)
    assert bev.get_read_limit() == 210


def test_new_cfg_with_another_tick_counts_from_now(env: Env) -> None:
    bev, _peer = env.bev()
    bev.set_rate_limit(RateLimit(100, 1000, 100, 1000, tick=1.0))
    bev.decrement_read_limit(100)
    env.clock.advance(0.5)
    bev.set_rate_limit(RateLimit(10, 1000, 10, 1000, tick=0.1))
    assert bev.get_read_limit() == 0
    env.clock.advance(0.3)
    assert bev.get_read_limit() == 30


def test_new_cfg_while_in_debt_suspends_and_refills(env: Env) -> None:
    bev, _peer = reader(env, 100, 100)
    bev.decrement_read_limit(250)  # -150
    bev.set_rate_limit(RateLimit(100, 100, 100, 100, tick=0.5))
    assert bev._read_suspended & SUSPEND_BW
    env.pump()
    assert len(bev.input) == 0
    env.tick(0.5)
    assert len(bev.input) == 0  # -150 + 100: still in debt
    env.tick(0.5)
    assert len(bev.input) == 50  # positive again: unsuspended by the refill


def test_set_rate_limit_type_and_freed_errors(env: Env) -> None:
    bev, _peer = env.bev()
    with pytest.raises(TypeError):
        bev.set_rate_limit((1, 1, 1, 1))  # type: ignore[arg-type]
    bev.free()
    with pytest.raises(EvbufferError):
        bev.set_rate_limit(RateLimit(1, 1, 1, 1))


def test_idle_limited_bufferevent_keeps_no_timer(env: Env) -> None:
    bev, _peer = env.bev()
    bev.set_rate_limit(RateLimit(10, 10, 10, 10))
    bev.disable(EV_WRITE)
    assert env.base.loop() == 1  # nothing pending: the refill timer is armed only while suspended


# ---------------------------------------------------------------------------------- queries
def test_queries_without_limit(env: Env) -> None:
    bev, _peer = env.bev()
    assert bev.get_read_limit() == UNLIMITED
    assert bev.get_write_limit() == UNLIMITED
    assert bev.get_max_to_read() == bev.input.read_max
    assert bev.get_max_to_write() == UNLIMITED
    bev.set_max_single_read(1000)
    bev.set_max_single_write(2000)
    assert (bev.get_max_to_read(), bev.get_max_to_write()) == (1000, 2000)


def test_queries_with_limit(env: Env) -> None:
    bev, _peer = env.bev()
    bev.set_rate_limit(RateLimit(300, 600, 400, 800))
    assert (bev.get_read_limit(), bev.get_write_limit()) == (300, 400)
    assert (bev.get_max_to_read(), bev.get_max_to_write()) == (300, 400)
    bev.set_max_single_read(100)
    bev.set_max_single_write(150)
    assert (bev.get_max_to_read(), bev.get_max_to_write()) == (100, 150)
    bev.decrement_write_limit(1000)
    assert bev.get_max_to_write() == 0  # never negative
    assert bev.get_write_limit() == -600


# ---------------------------------------------------------------------------------- decrement by hand
def test_decrement_into_debt_waits_for_repayment(env: Env) -> None:
    bev, _peer = reader(env, 100, 100)
    bev.decrement_read_limit(350)  # 100 -> -250: three ticks to get positive again
    assert bev.get_read_limit() == -250
    assert bev._read_suspended & SUSPEND_BW
    env.pump()
    assert len(bev.input) == 0
    env.tick()
    env.tick()
    assert len(bev.input) == 0 and bev.get_read_limit() == -50
    env.tick()
    assert len(bev.input) == 50  # +50 after the third tick
    assert ratelimit.UNLIMITED == UNLIMITED


def test_decrement_negative_gives_bytes_back_and_unsuspends(env: Env) -> None:
    bev, _peer = reader(env, 100, 100)
    bev.decrement_read_limit(150)
    assert bev._read_suspended & SUSPEND_BW
    bev.decrement_read_limit(-120)  # -50 -> 70: reading resumes now
    assert not bev._read_suspended
    assert not rate_of(bev)._armed
    env.pump()
    assert len(bev.input) == 70
    bev.decrement_read_limit(-10)  # positive to positive: nothing changes but the count
    assert bev.get_read_limit() == 10


def test_decrement_write_limit(env: Env) -> None:
    bev, peer = env.bev()
    bev.set_rate_limit(RateLimit(100, 100, 100, 100))
    bev.decrement_write_limit(100)
    assert bev._write_suspended & SUSPEND_BW
    bev.write(b"q" * 500)
    env.pump()
    assert drain(peer) == 0
    env.tick()
    assert drain(peer) == 100
    bev.decrement_read_limit(200)  # both directions suspended: one timer serves both
    bev.decrement_write_limit(-500)
    assert not bev._write_suspended and rate_of(bev)._armed  # still armed for the read side


def test_decrement_needs_a_limit_and_an_int(env: Env) -> None:
    bev, _peer = env.bev()
    with pytest.raises(EvbufferError):
        bev.decrement_read_limit(1)
    with pytest.raises(EvbufferError):
        bev.decrement_write_limit(1)
    bev.set_rate_limit(RateLimit(1, 1, 1, 1))
    with pytest.raises(TypeError):
        bev.decrement_read_limit(1.5)  # type: ignore[arg-type]


def test_hot_path_credit_and_block(env: Env) -> None:
    """The kinds' side of the interface: consumed_* may credit, block_* suspends and arms."""
    bev, _peer = reader(env, 100, 100)
    st = bev._rate
    assert st is not None and "armed" in repr(st)
    st.consumed_read(150)
    assert bev._read_suspended & SUSPEND_BW and st._armed
    st.consumed_read(-200)  # credited back above zero: unsuspended at once
    assert not bev._read_suspended and not st._armed
    assert st.read_allowance() == 150
    bev.decrement_read_limit(150)
    st.block_read()
    assert bev._read_suspended & SUSPEND_BW and st._armed
    st.block_write()  # the write bucket is full: nothing to do
    assert not bev._write_suspended
    assert st.write_allowance() == 10**6


# ---------------------------------------------------------------------------------- groups
def group_readers(env: Env, g: RateLimitGroup, n: int, *, send: int = BIG) -> list[Bufferevent]:
    bevs = []
    for _ in range(n):
        bev, peer = env.bev()
        g.add(bev)
        peer.sendall(b"g" * send)
        bev.enable(EV_READ)
        bevs.append(bev)
    return bevs


def test_group_fairness_nobody_starves(env: Env) -> None:
    rate = 400
    g = env.group(RateLimit(rate, rate, rate, rate))
    g.set_min_share(16)
    bevs = group_readers(env, g, 4)
    env.pump()
    before = [len(b.input) for b in bevs]
    assert all(x > 0 for x in before)
    assert all(b._read_suspended & SUSPEND_BW_GROUP for b in bevs)
    assert g.get_read_limit() <= 0
    for _ in range(8):
        env.tick()
        after = [len(b.input) for b in bevs]
        assert all(a > b for a, b in zip(after, before)), (before, after)  # every member, every tick
        before = after
    total = sum(before)
    assert abs(total - rate * 9) <= rate + 4 * 16
    assert g.get_totals() == (total, 0)


def test_group_share_divides_the_bucket(env: Env) -> None:
    g = env.group(RateLimit(1000, 1000, 1000, 1000))
    g.set_min_share(0)
    bevs = [env.bev()[0] for _ in range(4)]
    for b in bevs:
        g.add(b)
    assert [b.get_max_to_read() for b in bevs] == [250] * 4
    assert bevs[0].get_max_to_write() == 250
    g.decrement_read(998)  # 2 bytes left among 4: each may still take one
    assert bevs[0].get_max_to_read() == 1


def test_group_min_share(env: Env) -> None:
    g = env.group(RateLimit(1000, 1000, 600, 600))
    assert g.get_min_share() == ratelimit.DEFAULT_MIN_SHARE
    bevs = [env.bev()[0] for _ in range(4)]
    for b in bevs:
        g.add(b)
    g.set_min_share(400)
    assert g.get_min_share() == 400
    assert bevs[0].get_max_to_read() == 400  # max(1000 // 4, 400)
    g.set_min_share(5000)
    assert g.get_min_share() == 600  # capped at the smaller rate
    with pytest.raises(ValueError):
        g.set_min_share(-1)
    with pytest.raises(TypeError):
        g.set_min_share(1.0)  # type: ignore[arg-type]


def test_group_min_share_gates_the_unsuspend(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    g.set_min_share(100)
    (bev,) = group_readers(env, g, 1)
    env.pump()
    assert len(bev.input) == 100 and bev._read_suspended & SUSPEND_BW_GROUP
    g.decrement_read(50)  # -50: one tick brings 50, under the min share
    env.tick()
    assert len(bev.input) == 100 and bev._read_suspended & SUSPEND_BW_GROUP
    env.tick()
    assert len(bev.input) == 200


def test_group_totals_and_reset(env: Env) -> None:
    g = env.group(RateLimit(10**6, 10**6, 10**6, 10**6))
    bev, peer = env.bev()
    g.add(bev)
    bev.write(b"a" * 3000)
    peer.sendall(b"b" * 2000)
    bev.enable(EV_READ)
    env.pump()
    assert g.get_totals() == (2000, 3000)
    g.reset_totals()
    assert g.get_totals() == (0, 0)
    assert g.get_read_limit() == 10**6 - 2000
    assert g.get_write_limit() == 10**6 - 3000


def test_group_write_suspension(env: Env) -> None:
    g = env.group(RateLimit(10**6, 10**6, 100, 100))
    bevs = [env.bev() for _ in range(2)]
    for bev, _peer in bevs:
        g.add(bev)
        bev.disable(EV_WRITE)
        bev.write(b"w" * 1000)
    for bev, _peer in bevs:
        bev.enable(EV_WRITE)
    env.pump()
    sent = [drain(p) for _b, p in bevs]
    assert 100 <= sum(sent) <= 100 + 2 * 64 and all(sent)
    assert all(b._write_suspended & SUSPEND_BW_GROUP for b, _p in bevs)
    env.tick()
    assert sum(drain(p) for _b, p in bevs) >= 100


def test_member_with_its_own_limit_gets_the_stricter(env: Env) -> None:
    g = env.group(RateLimit(1000, 1000, 1000, 1000))
    bev, _peer = env.bev()
    g.add(bev)
    bev.set_rate_limit(RateLimit(30, 30, 5000, 5000))
    assert bev.get_max_to_read() == 30  # own bucket
    assert bev.get_max_to_write() == 1000  # group share
    bev.set_rate_limit(None)
    assert bev._rate is not None and bev._rate.group is g  # still a member
    assert bev.get_read_limit() == UNLIMITED


def test_remove_member_unsuspends(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    a, b = group_readers(env, g, 2)
    env.pump()
    assert a._read_suspended & SUSPEND_BW_GROUP
    g.remove(a)
    assert a not in g and b in g and len(g) == 1 and g.members == [b]
    assert a._rate is None and not a._read_suspended
    env.pump()
    assert len(a.input) == BIG  # unlimited again
    with pytest.raises(ValueError):
        g.remove(a)
    a.set_rate_limit(RateLimit(10, 10, 10, 10))
    g.add(a)
    g.remove(a)
    assert a._rate is not None and a._rate.cfg is not None  # its own limit stays
    assert "x" not in g  # not a bufferevent at all


def test_moving_to_another_group(env: Env) -> None:
    g1 = env.group(RateLimit(100, 100, 100, 100))
    g2 = env.group(RateLimit(10**6, 10**6, 10**6, 10**6))
    (bev,) = group_readers(env, g1, 1)
    env.pump()
    assert bev._read_suspended & SUSPEND_BW_GROUP
    g1.add(bev)  # already a member: nothing happens
    assert len(g1) == 1
    g2.add(bev)
    assert bev in g2 and bev not in g1 and not bev._read_suspended
    env.pump()
    assert len(bev.input) == BIG
    g1.decrement_read(10**4)  # g1 suspended both ways; joining it suspends at once
    g1.decrement_write(10**4)
    g1.add(bev)
    assert bev._read_suspended & SUSPEND_BW_GROUP
    assert bev._write_suspended & SUSPEND_BW_GROUP


def test_freeing_a_member_inside_a_group(env: Env) -> None:
    g = env.group(RateLimit(300, 300, 300, 300))
    g.set_min_share(1)
    a, b, c = group_readers(env, g, 3)

    def readcb(bev: Bufferevent, arg: Any) -> None:
        bev.free()  # freed from its own read callback, in the middle of the group's work

    b.setcb(readcb, None, None)
    env.pump()
    assert b.freed and b not in g and len(g) == 2
    for _ in range(3):
        env.tick()
    assert len(a.input) > 150 and len(c.input) > 150
    a.free()
    assert len(g) == 1 and a._rate is None


def test_group_free_releases_members(env: Env) -> None:
    g = RateLimitGroup(env.base, RateLimit(100, 100, 100, 100))
    (bev,) = group_readers(env, g, 1)
    env.pump()
    assert bev._read_suspended & SUSPEND_BW_GROUP
    with g:
        pass  # context manager frees
    assert bev._rate is None and not bev._read_suspended
    g.free()
    assert "freed" in repr(g)
    with pytest.raises(EvbufferError):
        g.add(bev)
    bev.free()
    g2 = env.group(RateLimit(1, 1, 1, 1))
    with pytest.raises(EvbufferError):
        g2.add(bev)


def test_group_type_errors(env: Env) -> None:
    with pytest.raises(TypeError):
        RateLimitGroup(env.base, None)  # type: ignore[arg-type]
    g = env.group(RateLimit(1, 1, 1, 1))
    with pytest.raises(TypeError):
        g.set_cfg("fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        g.decrement_read("1")  # type: ignore[arg-type]
    assert g.cfg == RateLimit(1, 1, 1, 1)
    assert "members=0" in repr(g)


def test_group_set_cfg(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    g.set_cfg(RateLimit(100, 100, 100, 100, tick=2.0))  # another tick, no timer armed
    assert not g._armed
    env.clock.advance(3)
    g.set_cfg(RateLimit(10, 40, 10, 60))
    assert (g.get_read_limit(), g.get_write_limit()) == (40, 60)
    assert g.get_min_share() == 10  # re-capped by the new rates
    g.decrement_read(100)  # suspended: the refill timer is armed at the old tick
    assert g._armed
    g.set_cfg(RateLimit(100, 100, 100, 100, tick=0.25))  # new tick: timer moved
    env.clock.advance(0.25)
    assert g.get_read_limit() == 40
    g.set_cfg(RateLimit(100, 100, 100, 100, tick=0.5))
    assert g.get_read_limit() == 40


def test_group_decrement_suspends_and_gives_back(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    g.set_min_share(1)
    (bev,) = group_readers(env, g, 1, send=50)
    g.decrement_read(100)
    assert bev._read_suspended & SUSPEND_BW_GROUP
    env.pump()
    assert len(bev.input) == 0
    g.decrement_read(-10)
    assert not bev._read_suspended
    env.pump()
    assert len(bev.input) == 10
    assert g.get_read_limit() == 0 and bev._read_suspended & SUSPEND_BW_GROUP
    g.decrement_read(5)  # already suspended: only the count changes
    assert g.get_read_limit() == -5


def test_idle_group_keeps_no_timer(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    bev, _peer = env.bev()
    g.add(bev)
    assert env.base.loop() == 1  # an idle group does not keep the loop running (libevent's does)
    g.decrement_write(200)
    assert g._armed
    for _ in range(3):
        env.tick()
    assert not g._suspended[1] and not g._armed


def test_group_refill_with_no_members(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    g.decrement_read(150)
    env.tick()
    assert g._suspended[0]
    env.tick()
    assert not g._suspended[0] and not g._armed


def test_group_credit_through_consumption_unsuspends(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    a, _pa = env.bev()
    b, _pb = env.bev()
    g.add(a)
    g.add(b)
    rate_of(a).consumed_read(100)
    assert a._read_suspended & SUSPEND_BW_GROUP and b._read_suspended & SUSPEND_BW_GROUP
    assert rate_of(a).read_allowance() == 0
    rate_of(a).block_read()
    rate_of(a).consumed_read(-50)  # positive again while suspended: everyone goes
    assert not a._read_suspended and not b._read_suspended
    rate_of(a).consumed_read(10)  # still positive, not suspended: just counted
    assert g.get_totals() == (60, 0)
    rate_of(a).consumed_read(100)
    rate_of(a).consumed_read(5)  # already suspended and still dry: only counted
    assert g.get_totals() == (165, 0) and g._suspended[0]


def test_refill_after_the_limit_went_is_harmless(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    bev, _peer = env.bev()
    g.add(bev)
    bev.set_rate_limit(RateLimit(10, 10, 10, 10))
    st = bev._rate
    assert st is not None
    bev.decrement_read_limit(20)
    assert st._armed
    bev.set_rate_limit(None)  # still a member: the state stays, the timer goes
    assert bev._rate is st and not st._armed
    st._refill(-1, 1, None)  # a late timer callback changes nothing
    assert not st._armed and not bev._read_suspended
    ratelimit._detach(bev)
    assert bev._rate is None and bev not in g
    ratelimit._detach(bev)  # nothing left to detach


def test_threadsafe_member_locked_elsewhere(env: Env) -> None:
    """The group only tries members' locks: a busy member catches up on its own."""
    g = env.group(RateLimit(100, 100, 100, 100))
    a, _pa = env.bev(BEV_OPT.THREADSAFE)
    b, _pb = env.bev(BEV_OPT.THREADSAFE)
    g.add(a)
    g.add(b)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        b.lock()
        held.set()
        release.wait(10)
        b.unlock()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        rate_of(a).consumed_read(100)  # suspends the group; b's lock is busy
        assert a._read_suspended & SUSPEND_BW_GROUP
        assert not b._read_suspended & SUSPEND_BW_GROUP
        g.decrement_read(-500)  # unsuspend: b is still busy, so it is pending
        assert g._pending[0] and g._armed
    finally:
        release.set()
        t.join(10)
    env.tick()  # the pending unsuspension is delivered now
    assert not b._read_suspended and not g._pending[0]
    # b suspends itself when it next asks (the group was suspended while it was busy)
    t2 = threading.Thread(target=hold)
    release.clear()
    held.clear()
    t2.start()
    try:
        assert held.wait(10)
        g.decrement_read(10**4)
        assert a._read_suspended & SUSPEND_BW_GROUP
    finally:
        release.set()
        t2.join(10)
    assert not b._read_suspended & SUSPEND_BW_GROUP
    assert rate_of(b).read_allowance() == 0
    assert b._read_suspended & SUSPEND_BW_GROUP


def test_threadsafe_pending_unsuspend_is_retried(env: Env) -> None:
    g = env.group(RateLimit(100, 100, 100, 100))
    a, _pa = env.bev(BEV_OPT.THREADSAFE)
    b, _pb = env.bev(BEV_OPT.THREADSAFE)
    g.add(a)
    g.add(b)
    g.decrement_read(100)
    assert b._read_suspended & SUSPEND_BW_GROUP
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        b.lock()
        held.set()
        release.wait(10)
        b.unlock()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        env.tick()  # refill: a goes, b's lock is busy
        assert not a._read_suspended and b._read_suspended & SUSPEND_BW_GROUP
        assert g._pending[0] and g._armed
    finally:
        release.set()
        t.join(10)
    env.tick()  # retried
    assert not b._read_suspended and not g._pending[0]


def test_common_timeouts_exhausted_fall_back_to_plain_timers(env: Env) -> None:
    for i in range(400):
        try:
            env.base.init_common_timeout(100 + i)
        except Exception:
            break
    bev, _peer = reader(env, 100, 100)
    bev.set_rate_limit(RateLimit(100, 100, 100, 100, tick=0.125))
    assert isinstance(rate_of(bev)._timeout, float)
    env.pump()
    env.tick(0.125)
    assert len(bev.input) == 200


def test_group_members_on_a_real_clock() -> None:
    """One run on the real monotonic clock: about rate bytes per tick."""
    with EventBase() as base:
        s1, s2 = socket.socketpair()
        bev = Bufferevent.socket(base, s1, BEV_OPT.CLOSE_ON_FREE)
        try:
            tick, rate = 0.02, 1000
            bev.set_rate_limit(RateLimit(rate, rate, rate, rate, tick=tick))
            s2.sendall(b"t" * BIG)
            bev.enable(EV_READ)
            t0 = time.monotonic()
            base.loopexit(10 * tick)
            base.loop()
            took = time.monotonic() - t0
            ticks = took / tick
            assert len(bev.input) <= rate * (ticks + 2)
            assert len(bev.input) >= rate * 3
        finally:
            bev.free()
            s2.close()


# ---------------------------------------------------------------------------------- pairs
def test_pair_reader_limited(env: Env) -> None:
    a, b = Bufferevent.pair(env.base)
    try:
        b.set_rate_limit(RateLimit(100, 100, 10**6, 10**6))
        b.enable(EV_READ)
        a.write(b"p" * 1000)
        env.pump()
        assert len(b.input) == 100 and b._read_suspended & SUSPEND_BW
        for _ in range(3):
            env.tick()
        assert len(b.input) == 400
        assert len(a.output) == 600
    finally:
        a.free()
        b.free()


def test_pair_writer_in_a_group(env: Env) -> None:
    g = env.group(RateLimit(10**6, 10**6, 200, 200))
    a, b = Bufferevent.pair(env.base)
    try:
        g.add(a)
        b.enable(EV_READ)
        a.write(b"p" * 1000)
        env.pump()
        assert len(b.input) == 200 and a._write_suspended & SUSPEND_BW_GROUP
        env.tick()
        env.tick()
        assert len(b.input) == 600
        assert g.get_totals() == (0, 600)
    finally:
        a.free()
        b.free()
