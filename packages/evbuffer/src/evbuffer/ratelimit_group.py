"""Rate-limit groups: one token bucket shared fairly by many bufferevents.

The theory of operation is in :mod:`evbuffer.ratelimit`; this module holds the
group object (libevent's ``bufferevent_rate_limit_group``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from evcore import Event

from .bufferevent import SUSPEND_BW_GROUP
from .errors import EvbufferError
from .ratelimit import (
    _R,
    _W,
    DEFAULT_MIN_SHARE,
    RATE_LIMIT_MAX,
    RateLimit,
    _BevRate,
    _Bucket,
    _common_timeout,
    _count,
    _rng,
    _suspenders,
    _tick_of,
    _trylock,
)

if TYPE_CHECKING:  # pragma: no cover

    from evcore import EventBase

    from .bufferevent import Bufferevent

__all__ = ["RateLimitGroup"]


class RateLimitGroup:
    """Bufferevents sharing one token bucket (libevent's ``bufferevent_rate_limit_group``).

    Each member moves at most ``max(bucket // members, min_share)`` bytes per
    operation; when the bucket is exhausted every member waits for the next refill.
    A member may also have its own limit (:meth:`Bufferevent.set_rate_limit`): the
    stricter one applies.

    >>> import evcore, socket; from evbuffer import Bufferevent
    >>> base = evcore.EventBase()
    >>> group = RateLimitGroup(base, RateLimit(1000, 1000, 1000, 1000))
    >>> s1, s2 = socket.socketpair()
    >>> a, b = Bufferevent.socket(base, s1, 1), Bufferevent.socket(base, s2, 1)
    >>> group.add(a); group.add(b); len(group)
    2
    >>> a.get_max_to_read()
    500
    >>> group.get_totals()
    (0, 0)
    >>> a.free(); b.free(); group.free(); base.free()
    """

    def __init__(self, base: EventBase, cfg: RateLimit) -> None:
        if not isinstance(cfg, RateLimit):
            raise TypeError(f"expected a RateLimit, not {type(cfg).__name__}")
        self.base = base
        self._cfg = cfg
        self._lock = threading.RLock()
        self._bucket = _Bucket(cfg, _tick_of(base._mono(), cfg._tick_us))
        self._members: dict[_BevRate, None] = {}
        self._suspended = [False, False]
        self._pending = [False, False]  # an unsuspension some member's lock kept out
        self._totals = [0, 0]
        self._configured_min_share = DEFAULT_MIN_SHARE
        self._min_share = min(DEFAULT_MIN_SHARE, cfg.read_rate, cfg.write_rate)
        self._timer = Event(base, -1, 0, self._refill, None)
        self._armed = False
        self._timeout: Any = _common_timeout(base, cfg.tick)
        self._freed = False

    # ---------------------------------------------------------------- membership
    def add(self, bev: Bufferevent) -> None:
        """Make ``bev`` a member (leaving any other group first); idempotent.

        >>> import evcore, socket; from evbuffer import Bufferevent
        >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
        >>> g = RateLimitGroup(base, RateLimit(64, 64, 64, 64)); g.add(a); a in g
        True
        >>> a.free(); s2.close(); g.free(); base.free()
        """
        bev.lock()
        try:
            if bev._freed:
                raise EvbufferError("cannot add a freed bufferevent to a rate-limit group")
            if self._freed:
                raise EvbufferError("this rate-limit group was freed")
            st = bev._rate
            if st is None:
                st = bev._rate = _BevRate(bev)
            elif st.group is self:
                return
            elif st.group is not None:
                st.group._leave(st)
                bev._unsuspend_read(SUSPEND_BW_GROUP)
                bev._unsuspend_write(SUSPEND_BW_GROUP)
            with self._lock:
                st.group = self
                self._members[st] = None
                rsusp, wsusp = self._suspended
            if rsusp:
                bev._suspend_read(SUSPEND_BW_GROUP)
            if wsusp:
                bev._suspend_write(SUSPEND_BW_GROUP)
        finally:
            bev.unlock()

    def remove(self, bev: Bufferevent) -> None:
        """Take ``bev`` out of the group (``ValueError`` if it is not a member); it is unsuspended.

        >>> import evcore, socket; from evbuffer import Bufferevent
        >>> base = evcore.EventBase(); s1, s2 = socket.socketpair(); a = Bufferevent.socket(base, s1, 1)
        >>> g = RateLimitGroup(base, RateLimit(64, 64, 64, 64)); g.add(a); g.remove(a)
        >>> a in g, a._rate is None
        (False, True)
        >>> a.free(); s2.close(); g.free(); base.free()
        """
        bev.lock()
        try:
            st = bev._rate
            if st is None or st.group is not self:
                raise ValueError(f"{bev!r} is not a member of this group")
            self._leave(st)
            bev._unsuspend_read(SUSPEND_BW_GROUP)
            bev._unsuspend_write(SUSPEND_BW_GROUP)
            if st.cfg is None:
                st._dispose()
                bev._rate = None
        finally:
            bev.unlock()

    def _leave(self, st: _BevRate) -> None:
        with self._lock:
            self._members.pop(st, None)
            st.group = None

    def __contains__(self, bev: object) -> bool:
        st = getattr(bev, "_rate", None)
        return st is not None and st.group is self

    def __len__(self) -> int:
        return len(self._members)

    @property
    def members(self) -> list[Bufferevent]:
        """The member bufferevents, in the order they joined."""
        with self._lock:
            return [st.bev for st in self._members]

    # ---------------------------------------------------------------- configuration
    @property
    def cfg(self) -> RateLimit:
        """The group's configuration (see :meth:`set_cfg`)."""
        return self._cfg

    def set_cfg(self, cfg: RateLimit) -> None:
        """Change the group's configuration; the bucket keeps its bytes, cut down to the new burst.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(100, 100, 100, 100))
        >>> g.set_cfg(RateLimit(10, 50, 10, 50)); g.get_read_limit()
        50
        >>> g.free(); base.free()
        """
        if not isinstance(cfg, RateLimit):
            raise TypeError(f"expected a RateLimit, not {type(cfg).__name__}")
        with self._lock:
            self._update()
            old = self._cfg
            self._cfg = cfg
            self._bucket.clip(cfg)
            self._bucket.last = _tick_of(self.base._mono(), cfg._tick_us)
            if cfg._tick_us != old._tick_us:
                self._timeout = _common_timeout(self.base, cfg.tick)
                if self._armed:
                    self._timer.add(self._timeout)
            self.set_min_share(self._configured_min_share)

    def set_min_share(self, share: int) -> None:
        """Bytes a member may always move per operation, however many members share the bucket.

        Capped at the group's read and write rates (so one member at least can go each
        tick); the default is 64.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(100, 100, 30, 30))
        >>> g.set_min_share(50); g.get_min_share()
        30
        >>> g.free(); base.free()
        """
        share = _count(share, "share")
        if not 0 <= share <= RATE_LIMIT_MAX:
            raise ValueError(f"min share must be between 0 and RATE_LIMIT_MAX, not {share}")
        with self._lock:
            self._configured_min_share = share
            cfg = self._cfg
            self._min_share = min(share, cfg.read_rate, cfg.write_rate)

    def get_min_share(self) -> int:
        """The minimum share in effect (see :meth:`set_min_share`)."""
        return self._min_share

    # ---------------------------------------------------------------- bucket
    def _update(self) -> None:
        cfg = self._cfg
        self._bucket.update(cfg, _tick_of(self.base._mono(), cfg._tick_us))

    def _share(self, st: _BevRate, d: int) -> int:
        """Bytes one member may move now (member's lock held); 0 while the group is suspended."""
        with self._lock:
            if self._suspended[d]:
                # it was not suspended with the others (its lock was busy): catch up now
                _suspenders(st.bev, d)[0](SUSPEND_BW_GROUP)
                return 0
            self._update()
            share = self._bucket.lim[d] // (len(self._members) or 1)
            if share < self._min_share:
                share = self._min_share
            return share if share > 0 else 1

    def _consumed(self, d: int, n: int) -> None:
        with self._lock:
            lim = self._bucket.lim
            left = lim[d] = lim[d] - n
            self._totals[d] += n
            if left <= 0:
                if not self._suspended[d]:
                    self._suspend(d)
            elif self._suspended[d]:
                self._unsuspend(d)

    def _suspend(self, d: int) -> None:
        """Stop direction ``d`` on every member (group lock held)."""
        self._suspended[d] = True
        self._pending[d] = False
        for st in list(self._members):
            bev = st.bev
            if _trylock(bev):
                try:
                    _suspenders(bev, d)[0](SUSPEND_BW_GROUP)
                finally:
                    bev.unlock()
        self._arm()

    def _unsuspend(self, d: int) -> None:
        """Restart direction ``d`` on every member, from a random one on (group lock held)."""
        self._suspended[d] = False
        members = list(self._members)
        again = False
        if members:
            start = _rng.randrange(len(members))
            for st in members[start:] + members[:start]:
                bev = st.bev
                if st.group is not self:  # pragma: no cover - left while we iterated
                    continue
                if _trylock(bev):
                    try:
                        _suspenders(bev, d)[1](SUSPEND_BW_GROUP)
                    finally:
                        bev.unlock()
                else:
                    again = True
        self._pending[d] = again
        if again:
            self._arm()

    def _arm(self) -> None:
        if not self._armed and not self._freed:
            self._timer.add(self._timeout)
            self._armed = True

    def _refill(self, fd: int, what: int, arg: Any) -> None:
        with self._lock:
            self._armed = False
            if self._freed:  # pragma: no cover - free() deletes the timer
                return
            self._update()
            lim = self._bucket.lim
            for d in (_R, _W):
                if self._pending[d] or (self._suspended[d] and lim[d] > 0 and lim[d] >= self._min_share):
                    self._unsuspend(d)
            if self._suspended[_R] or self._suspended[_W] or self._pending[_R] or self._pending[_W]:
                self._arm()

    def get_read_limit(self) -> int:
        """Bytes the group's read bucket holds now (may be negative).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(100, 300, 100, 300)); g.get_read_limit()
        100
        >>> g.free(); base.free()
        """
        with self._lock:
            self._update()
            return self._bucket.lim[_R]

    def get_write_limit(self) -> int:
        """Bytes the group's write bucket holds now (may be negative)."""
        with self._lock:
            self._update()
            return self._bucket.lim[_W]

    def _decrement(self, d: int, n: Any) -> None:
        n = _count(n, "n")
        with self._lock:
            self._update()
            lim = self._bucket.lim
            old = lim[d]
            new = lim[d] = old - n
            if old > 0 and new <= 0:
                self._suspend(d)
            elif old <= 0 and new > 0:
                self._unsuspend(d)

    def decrement_read(self, n: int) -> None:
        """Take ``n`` bytes from the group's read bucket by hand (negative ``n`` gives them back).

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(100, 100, 100, 100)); g.decrement_read(150)
        >>> g.get_read_limit()
        -50
        >>> g.free(); base.free()
        """
        self._decrement(_R, n)

    def decrement_write(self, n: int) -> None:
        """Take ``n`` bytes from the group's write bucket by hand."""
        self._decrement(_W, n)

    # ---------------------------------------------------------------- totals
    def get_totals(self) -> tuple[int, int]:
        """``(bytes read, bytes written)`` by members while in the group, since the last reset.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(1, 1, 1, 1)); g.get_totals()
        (0, 0)
        >>> g.free(); base.free()
        """
        with self._lock:
            return (self._totals[_R], self._totals[_W])

    def reset_totals(self) -> None:
        """Start counting :meth:`get_totals` from zero again."""
        with self._lock:
            self._totals = [0, 0]

    # ---------------------------------------------------------------- teardown
    def free(self) -> None:
        """Remove every member (unsuspending them) and stop the refill timer; idempotent.

        >>> import evcore
        >>> base = evcore.EventBase()
        >>> g = RateLimitGroup(base, RateLimit(1, 1, 1, 1)); g.free(); g.free()
        >>> base.free()
        """
        with self._lock:
            if self._freed:
                return
            members = [st.bev for st in self._members]
        for bev in members:
            try:
                self.remove(bev)
            except ValueError:  # pragma: no cover - left meanwhile
                pass
        with self._lock:
            self._freed = True
            self._armed = False
            self._timer.free()

    def __enter__(self) -> RateLimitGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.free()

    def __repr__(self) -> str:
        try:
            state = " freed" if self._freed else ""
            return (
                f"<RateLimitGroup members={len(self._members)} read={self._bucket.lim[_R]} "
                f"write={self._bucket.lim[_W]} suspended={self._suspended}{state}>"
            )
        except Exception:  # pragma: no cover - a repr must never raise
            return f"<RateLimitGroup at {id(self):#x}>"
