"""Rate limits: token buckets per bufferevent and per group (libevent's ``bufferevent_ratelim.c``).

Facts and theory of operation
-----------------------------
* A :class:`RateLimit` (libevent's ``ev_token_bucket_cfg``) says how many bytes a
  bucket gains per *tick* (the rate) and how many it may hold at most (the burst),
  for reading and for writing.  Units are libevent's: bytes per tick, the tick in
  seconds.  ``1 <= rate <= burst <= RATE_LIMIT_MAX``.
* A bucket holds a signed byte count per direction and the number of the tick it
  was last brought up to date in.  Ticks are counted from the base's monotonic
  clock (``floor(now / tick)``, computed in whole microseconds so float noise never
  moves a boundary), with the base's cached time, so a
  :class:`evcore.testing.FakeClock` drives everything.  A new bucket starts at
  ``rate`` (not ``burst``), as libevent's does.
* Refilling is lazy: whenever a bucket is looked at (before every read and write,
  and by the query functions) it gains ``rate`` per tick elapsed since, capped at
  ``burst``.  Every byte moved is debited; a bucket may go negative (debt), for
  instance through :func:`decrement_read_limit` by hand, and then stays closed for
  as many ticks as the debt takes to repay.
* A bufferevent with an exhausted bucket (``<= 0``) is suspended in that direction
  with ``SUSPEND_BW`` and a refill timer is armed for one tick (a common timeout of
  the tick length, shared by every bufferevent with that tick, so arming is O(1)).
  When it fires the bucket is brought up to date; a direction whose bucket is
  positive again is unsuspended, one still in debt waits another tick.  While a
  bufferevent is suspended its timer is always armed, and it is armed only then,
  so an idle rate-limited bufferevent keeps no loop alive.
* A :class:`RateLimitGroup` has one bucket shared by its members.  A member may move
  at most ``max(group bucket // members, min_share)`` bytes in one operation (and
  at least one byte while the bucket is positive), the smaller of that and its own
  bucket if it has one.  When the group's bucket is exhausted *every* member is
  suspended with ``SUSPEND_BW_GROUP`` and the group's refill timer is armed; when
  the bucket is back to at least ``min_share`` (and positive) all members are
  unsuspended, starting at a random member so that the order in which they get
  back to the kernel (and so to the bytes of the next tick) is no one's privilege.
* ``min_share`` (default 64) keeps a big group from cutting per-operation shares
  into uselessly small pieces; it is capped at the group's read and write rates so
  at least one member can go each tick.  Totals (bytes read and written through
  the group) are kept for :meth:`RateLimitGroup.get_totals`.
* ``bev._rate`` is the per-bufferevent state (:class:`_BevRate`) and is ``None``
  whenever neither a limit nor a group applies, so an unlimited bufferevent pays one
  ``is not None`` check per IO.

Differences from libevent 2.0, on purpose:

* libevent's group refill timer is persistent and keeps the loop running forever
  once a group exists; ours is armed only while the group is suspended (the
  bucket is refilled lazily otherwise), so ``loop()`` can still return when
  nothing else is pending.
* libevent re-arms a bufferevent's refill timer every time a bucket empties,
  pushing a refill of the other direction back; ours is armed once.
* Changing the configuration brings the bucket up to date with the old one before
  the new tick length applies (libevent mixes tick numbers of both lengths).
* :meth:`RateLimitGroup.free` removes its members (libevent asserts there are none).

Locking: a member's lock (``BEV_OPT.THREADSAFE``) is taken before its group's.
A group acting on other members only *tries* their locks; a member it could not
lock notices the group's suspension at its next IO, and an unsuspension it could
not deliver is retried at the next tick, as libevent does.

>>> cfg = RateLimit(1024, 4096, 1024, 4096, tick=0.5)
>>> cfg.read_rate, cfg.read_burst, cfg.tick
(1024, 4096, 0.5)
"""

from __future__ import annotations

import math
import operator
import random
import sys
from typing import TYPE_CHECKING, Any

from evcore import Event

from .bufferevent import SUSPEND_BW, SUSPEND_BW_GROUP
from .errors import EvbufferError

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from evcore import EventBase

    from .bufferevent import Bufferevent

__all__ = [
    "RateLimit",
    "RateLimitGroup",
    "RATE_LIMIT_MAX",
    "UNLIMITED",
    "DEFAULT_MIN_SHARE",
    "set_rate_limit",
    "get_read_limit",
    "get_write_limit",
    "get_max_to_read",
    "get_max_to_write",
    "decrement_read_limit",
    "decrement_write_limit",
]

#: Largest rate or burst (libevent's ``EV_RATE_LIMIT_MAX``, ``EV_SSIZE_MAX``).
RATE_LIMIT_MAX = sys.maxsize
#: What the queries report for a direction no bucket limits (libevent's ``EV_SSIZE_MAX``).
UNLIMITED = sys.maxsize
#: A new group's minimum share per operation, in bytes (libevent's default).
DEFAULT_MIN_SHARE = 64

_R = 0
_W = 1
_US = 1_000_000
_rng = random.Random()  # fairness only: which member gets unsuspended first


def _tick_of(now: float, tick_us: int) -> int:
    """The number of the tick ``now`` (seconds) falls in."""
    return math.floor(now * _US + 0.5) // tick_us


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None


def _common_timeout(base: EventBase, seconds: float) -> Any:
    """A common timeout of ``seconds`` on ``base`` (the plain float if the base has none to spare)."""
    try:
        return base.init_common_timeout(seconds)
    except Exception:  # too many common timeouts on this base: a plain timer does the same job
        return seconds


def _trylock(bev: Bufferevent) -> bool:
    lock = bev._lock
    return lock is None or lock.acquire(blocking=False)


class RateLimit:
    """A token-bucket configuration (libevent's ``ev_token_bucket_cfg``); immutable.

    Rates and bursts are bytes per tick, the tick in seconds (a float, or a common
    timeout from :meth:`evcore.EventBase.init_common_timeout`).  A bucket gains
    ``rate`` bytes each tick and holds at most ``burst``; ``1 <= rate <= burst``.

    >>> cfg = RateLimit(100, 200, 50, 50)
    >>> cfg
    RateLimit(read_rate=100, read_burst=200, write_rate=50, write_burst=50, tick=1.0)
    >>> RateLimit(100, 50, 1, 1)
    Traceback (most recent call last):
    ...
    ValueError: read_rate (100) must be between 1 and read_burst (50)
    """

    __slots__ = ("read_rate", "read_burst", "write_rate", "write_burst", "tick", "_tick_us")

    read_rate: int
    read_burst: int
    write_rate: int
    write_burst: int
    tick: float
    _tick_us: int

    def __init__(
        self, read_rate: int, read_burst: int, write_rate: int, write_burst: int, tick: Any = 1.0
    ) -> None:
        values = {}
        for name, value in (
            ("read_rate", read_rate),
            ("read_burst", read_burst),
            ("write_rate", write_rate),
            ("write_burst", write_burst),
        ):
            values[name] = _count(value, name)
        for side in ("read", "write"):
            rate, burst = values[f"{side}_rate"], values[f"{side}_burst"]
            if not 1 <= rate <= burst:
                raise ValueError(f"{side}_rate ({rate}) must be between 1 and {side}_burst ({burst})")
            if burst > RATE_LIMIT_MAX:
                raise ValueError(f"{side}_burst ({burst}) is above RATE_LIMIT_MAX")
        try:
            seconds = float(tick)
        except (TypeError, ValueError):
            raise TypeError(f"tick must be a number of seconds, not {tick!r}") from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"tick must be a positive number of seconds, not {tick!r}")
        tick_us = round(seconds * _US)
        if tick_us < 1:
            raise ValueError(f"tick must be at least one microsecond, not {tick!r}")
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "tick", seconds)
        object.__setattr__(self, "_tick_us", tick_us)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("RateLimit is immutable; make a new one")

    def _key(self) -> tuple[int, int, int, int, float]:
        return (self.read_rate, self.read_burst, self.write_rate, self.write_burst, self.tick)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RateLimit):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"RateLimit(read_rate={self.read_rate}, read_burst={self.read_burst}, "
            f"write_rate={self.write_rate}, write_burst={self.write_burst}, tick={self.tick})"
        )


class _Bucket:
    """Bytes allowed now, per direction (``lim[_R]``, ``lim[_W]``), and the tick they are up to date with."""

    __slots__ = ("lim", "last")

    def __init__(self, cfg: RateLimit, tick: int) -> None:
        self.lim = [cfg.read_rate, cfg.write_rate]
        self.last = tick

    def update(self, cfg: RateLimit, tick: int) -> None:
        """Add ``rate`` per tick elapsed since the last update, up to ``burst``."""
        n = tick - self.last
        if n <= 0:
            return  # same tick (or a clock that went back: wait for it)
        lim = self.lim
        r = lim[_R] + n * cfg.read_rate
        lim[_R] = r if r < cfg.read_burst else cfg.read_burst
        w = lim[_W] + n * cfg.write_rate
        lim[_W] = w if w < cfg.write_burst else cfg.write_burst
        self.last = tick

    def clip(self, cfg: RateLimit) -> None:
        """Never hold more than the (new) bursts allow."""
        lim = self.lim
        if lim[_R] > cfg.read_burst:
            lim[_R] = cfg.read_burst
        if lim[_W] > cfg.write_burst:
            lim[_W] = cfg.write_burst


def _suspenders(bev: Bufferevent, d: int) -> tuple[Callable[[int], None], Callable[[int], None], int]:
    """``(suspend, unsuspend, suspended_reasons)`` for direction ``d`` of ``bev``."""
    if d:
        return bev._suspend_write, bev._unsuspend_write, bev._write_suspended
    return bev._suspend_read, bev._unsuspend_read, bev._read_suspended


class _BevRate:
    """The rate-limit state of one bufferevent (``bev._rate``): its own bucket and/or its group.

    The kinds call :meth:`read_allowance` before a read (0: call :meth:`block_read`
    and do not read), then :meth:`consumed_read` with the bytes actually read; the
    same for writing.
    """

    __slots__ = ("bev", "cfg", "bucket", "group", "_timer", "_armed", "_timeout")

    def __init__(self, bev: Bufferevent) -> None:
        self.bev = bev
        self.cfg: RateLimit | None = None
        self.bucket: _Bucket | None = None
        self.group: RateLimitGroup | None = None
        self._timer: Event | None = None
        self._armed = False
        self._timeout: Any = None

    # ---------------------------------------------------------------- hot path
    def _allowance(self, d: int) -> int:
        n = UNLIMITED
        cfg = self.cfg
        if cfg is not None:
            b = self.bucket
            assert b is not None
            tick = _tick_of(self.bev.base._mono(), cfg._tick_us)
            if tick != b.last:
                b.update(cfg, tick)
            n = b.lim[d]
        g = self.group
        if g is not None:
            share = g._share(self, d)
            if share < n:
                n = share
        return n if n > 0 else 0

    def read_allowance(self) -> int:
        """Bytes this bufferevent may read now (its bucket and its group share); 0 when blocked."""
        return self._allowance(_R)

    def write_allowance(self) -> int:
        """Bytes this bufferevent may write now; 0 when blocked."""
        return self._allowance(_W)

    def _consumed(self, d: int, n: int) -> None:
        cfg = self.cfg
        if cfg is not None:
            b = self.bucket
            assert b is not None
            left = b.lim[d] = b.lim[d] - n
            suspend, unsuspend, reasons = _suspenders(self.bev, d)
            if left <= 0:
                suspend(SUSPEND_BW)
                self._arm()
            elif reasons & SUSPEND_BW:  # credited back above zero
                unsuspend(SUSPEND_BW)
                self._disarm_if_idle()
        g = self.group
        if g is not None:
            g._consumed(d, n)

    def consumed_read(self, n: int) -> None:
        """Debit ``n`` bytes read from its bucket and its group's; suspend what ran dry."""
        self._consumed(_R, n)

    def consumed_write(self, n: int) -> None:
        """Debit ``n`` bytes written; suspend what ran dry."""
        self._consumed(_W, n)

    def _block(self, d: int) -> None:
        cfg = self.cfg
        suspend = _suspenders(self.bev, d)[0]
        if cfg is not None:
            b = self.bucket
            assert b is not None
            if b.lim[d] <= 0:
                suspend(SUSPEND_BW)
                self._arm()
        g = self.group
        if g is not None and g._suspended[d]:
            suspend(SUSPEND_BW_GROUP)

    def block_read(self) -> None:
        """The read allowance is 0: stop reading until a bucket refills."""
        self._block(_R)

    def block_write(self) -> None:
        """The write allowance is 0: stop writing until a bucket refills."""
        self._block(_W)

    # ---------------------------------------------------------------- refill timer
    def _update(self) -> None:
        cfg = self.cfg
        assert cfg is not None and self.bucket is not None
        self.bucket.update(cfg, _tick_of(self.bev.base._mono(), cfg._tick_us))

    def _arm(self) -> None:
        if self._armed:
            return
        timer = self._timer
        if timer is None:
            timer = self._timer = Event(self.bev.base, -1, 0, self._refill, None)
        timer.add(self._timeout)
        self._armed = True

    def _disarm(self) -> None:
        if self._armed:
            self._armed = False
            assert self._timer is not None
            self._timer.del_noblock()

    def _disarm_if_idle(self) -> None:
        bev = self.bev
        if not (bev._read_suspended | bev._write_suspended) & SUSPEND_BW:
            self._disarm()

    def _refill(self, fd: int, what: int, arg: Any) -> None:
        bev = self.bev
        bev.lock()
        try:
            self._armed = False
            if bev._freed or self.cfg is None or bev._rate is not self:
                return
            self._update()
            lim = self.bucket.lim  # type: ignore[union-attr]
            again = False
            for d in (_R, _W):
                _suspend, unsuspend, reasons = _suspenders(bev, d)
                if reasons & SUSPEND_BW:
                    if lim[d] > 0:
                        unsuspend(SUSPEND_BW)
                    else:
                        again = True
            if again and not bev._freed:
                self._arm()
        finally:
            bev.unlock()

    def _dispose(self) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.free(block=False)
            self._timer = None

    def __repr__(self) -> str:
        lim = self.bucket.lim if self.bucket is not None else None
        return f"<_BevRate cfg={self.cfg!r} bucket={lim} group={self.group!r} armed={self._armed}>"


# -------------------------------------------------------------------- per-bufferevent API
def set_rate_limit(bev: Bufferevent, cfg: RateLimit | None) -> None:
    """Limit ``bev`` with its own token bucket configured by ``cfg`` (``None``: remove the limit).

    Setting the same configuration again changes nothing; a different one keeps the
    bucket's contents, cut down to the new burst.  Removing the limit unsuspends
    the bufferevent.  Group membership is unaffected.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase()
    >>> s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> set_rate_limit(a, RateLimit(10, 20, 30, 40))
    >>> get_read_limit(a), get_write_limit(a)
    (10, 30)
    >>> set_rate_limit(a, None); a._rate is None
    True
    >>> a.free(); s2.close(); base.free()
    """
    if cfg is not None and not isinstance(cfg, RateLimit):
        raise TypeError(f"expected a RateLimit or None, not {type(cfg).__name__}")
    bev.lock()
    try:
        if bev._freed:
            raise EvbufferError("set_rate_limit() on a freed bufferevent")
        st = bev._rate
        if cfg is None:
            if st is None or st.cfg is None:
                return
            st.cfg = None
            st.bucket = None
            st._disarm()
            bev._unsuspend_read(SUSPEND_BW)
            bev._unsuspend_write(SUSPEND_BW)
            if st.group is None:
                st._dispose()
                bev._rate = None
            return
        if st is None:
            st = _BevRate(bev)
        elif st.cfg is cfg:
            return
        tick = _tick_of(bev.base._mono(), cfg._tick_us)
        old = st.cfg
        if old is None or st.bucket is None:
            st.bucket = _Bucket(cfg, tick)
        else:
            st._update()  # up to date in the old tick's units first
            st.bucket.clip(cfg)
            st.bucket.last = tick
        st.cfg = cfg
        st._timeout = _common_timeout(bev.base, cfg.tick)
        bev._rate = st
        st._disarm()
        suspended = False
        for d in (_R, _W):
            suspend, unsuspend, _reasons = _suspenders(bev, d)
            if st.bucket.lim[d] > 0:
                unsuspend(SUSPEND_BW)
            else:
                suspend(SUSPEND_BW)
                suspended = True
        if suspended:
            st._arm()
    finally:
        bev.unlock()


def _get_limit(bev: Bufferevent, d: int) -> int:
    bev.lock()
    try:
        st = bev._rate
        if st is None or st.cfg is None:
            return UNLIMITED
        st._update()
        return st.bucket.lim[d]  # type: ignore[union-attr]
    finally:
        bev.unlock()


def get_read_limit(bev: Bufferevent) -> int:
    """Bytes ``bev``'s own read bucket holds now (may be negative); ``UNLIMITED`` without a limit.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> get_read_limit(a) == UNLIMITED
    True
    >>> a.free(); s2.close(); base.free()
    """
    return _get_limit(bev, _R)


def get_write_limit(bev: Bufferevent) -> int:
    """Bytes ``bev``'s own write bucket holds now; ``UNLIMITED`` without a limit.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> set_rate_limit(a, RateLimit(1, 1, 7, 9)); get_write_limit(a)
    7
    >>> a.free(); s2.close(); base.free()
    """
    return _get_limit(bev, _W)


def get_max_to_read(bev: Bufferevent) -> int:
    """The most ``bev`` would read in one operation now: buckets, group share and max single read.

    Without any limit this is the max single read, or the buffer's adaptive cap.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> set_rate_limit(a, RateLimit(500, 500, 1, 1)); get_max_to_read(a)
    500
    >>> a.set_max_single_read(100); get_max_to_read(a)
    100
    >>> a.free(); s2.close(); base.free()
    """
    bev.lock()
    try:
        n = bev._read_budget()
        return n if n >= 0 else bev.input.read_max
    finally:
        bev.unlock()


def get_max_to_write(bev: Bufferevent) -> int:
    """The most ``bev`` would write in one operation now (``UNLIMITED`` when nothing limits it).

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> get_max_to_write(a) == UNLIMITED
    True
    >>> a.free(); s2.close(); base.free()
    """
    bev.lock()
    try:
        n = bev._write_budget()
        return n if n >= 0 else UNLIMITED
    finally:
        bev.unlock()


def _decrement(bev: Bufferevent, d: int, n: Any) -> None:
    n = _count(n, "n")
    bev.lock()
    try:
        st = bev._rate
        if st is None or st.cfg is None:
            raise EvbufferError("no rate limit on this bufferevent: call set_rate_limit() first")
        st._update()
        lim = st.bucket.lim  # type: ignore[union-attr]
        old = lim[d]
        new = lim[d] = old - n
        suspend, unsuspend, _reasons = _suspenders(bev, d)
        if old > 0 and new <= 0:
            suspend(SUSPEND_BW)
            st._arm()
        elif old <= 0 and new > 0:
            unsuspend(SUSPEND_BW)
            st._disarm_if_idle()
    finally:
        bev.unlock()


def decrement_read_limit(bev: Bufferevent, n: int) -> None:
    """Take ``n`` bytes from ``bev``'s read bucket by hand (negative ``n`` gives them back).

    The bucket may go negative (debt): reading then waits until refills repay it.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> set_rate_limit(a, RateLimit(10, 10, 10, 10)); decrement_read_limit(a, 25)
    >>> get_read_limit(a)
    -15
    >>> a.free(); s2.close(); base.free()
    """
    _decrement(bev, _R, n)


def decrement_write_limit(bev: Bufferevent, n: int) -> None:
    """Take ``n`` bytes from ``bev``'s write bucket by hand (negative ``n`` gives them back).

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
    >>> set_rate_limit(a, RateLimit(10, 10, 10, 10)); decrement_write_limit(a, -5)
    >>> get_write_limit(a)
    15
    >>> a.free(); s2.close(); base.free()
    """
    _decrement(bev, _W, n)


def _detach(bev: Bufferevent) -> None:
    """``bev`` is being freed: leave its group and drop its timer (bev lock held)."""
    st = bev._rate
    if st is None:
        return
    bev._rate = None
    try:
        if st.group is not None:
            st.group._leave(st)
    finally:
        st._dispose()


# -------------------------------------------------------------------- groups


from .ratelimit_group import RateLimitGroup  # noqa: E402 - the group builds on this module
