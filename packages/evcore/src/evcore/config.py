"""``EventConfig``: which backend a base may use (libevent's ``event_config``).

The base walks the registered backends best first (see :mod:`evcore.backend`) and
takes the first one that is not avoided (by :meth:`EventConfig.avoid_method` or an
``EVENT_NO<METHOD>`` environment variable such as ``EVENT_NOEPOLL``, which
``BaseFlag.IGNORE_ENV`` turns off), offers every required :class:`Feature`, and
whose constructor succeeds.  ``EVENT_SHOW_METHOD`` in the environment logs the
choice on the ``evcore`` logger at WARNING level, so it shows without any logging
setup, as libevent prints it to stderr.
"""

from __future__ import annotations

import os

from .flags import BaseFlag, Feature

__all__ = ["EventConfig"]


class EventConfig:
    """Constraints on the backend and behaviour of a new :class:`evcore.EventBase`.

    >>> cfg = EventConfig()
    >>> cfg.avoid_method("epoll")
    >>> cfg.require_features(Feature.FDS)
    >>> cfg.set_flag(BaseFlag.NOLOCK)
    >>> sorted(cfg.avoided), cfg.features, cfg.flags
    (['epoll'], <Feature.FDS: 4>, <BaseFlag.NOLOCK: 1>)
    """

    __slots__ = ("avoided", "features", "flags", "only")

    def __init__(self) -> None:
        self.avoided: set[str] = set()
        self.features = Feature(0)
        self.flags = BaseFlag(0)
        #: When set, the only backend allowed (``EventBase(method=...)``).
        self.only: str | None = None

    def avoid_method(self, name: str) -> None:
        """Never use the backend called ``name``."""
        self.avoided.add(name)

    def require_features(self, features: Feature | int) -> None:
        """Only use a backend offering all of ``features`` (adds to earlier calls)."""
        self.features |= Feature(features)

    def set_flag(self, flag: BaseFlag | int) -> None:
        """Turn on a :class:`BaseFlag` for the new base."""
        self.flags |= BaseFlag(flag)

    def allows(self, name: str, features: Feature) -> bool:
        """Whether a backend ``name`` with ``features`` fits this config.

        >>> cfg = EventConfig(); cfg.require_features(Feature.ET)
        >>> cfg.allows("select", Feature.FDS), cfg.allows("epoll", Feature.ET | Feature.O1)
        (False, True)
        """
        if self.only is not None and name != self.only:
            return False
        if name in self.avoided:
            return False
        if self.features & ~features:
            return False
        return bool(self.flags & BaseFlag.IGNORE_ENV or not os.environ.get("EVENT_NO" + name.upper()))

    def __repr__(self) -> str:
        return f"<EventConfig avoid={sorted(self.avoided)} features={self.features!r} flags={self.flags!r}>"
