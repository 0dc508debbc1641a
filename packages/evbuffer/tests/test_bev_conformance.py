"""The bufferevent conformance suite (:mod:`evbuffer.testing.bev_suite`) on evbuffer's own kinds.

Kinds: ``socket-unix`` (socket bufferevents over ``socket.socketpair()``),
``socket-tcp`` (over a TCP connection on 127.0.0.1), ``pair``
(:meth:`Bufferevent.pair`), ``filter-pair`` and ``filter-socket`` (pass-through
filters over each end of a pair / a TCP connection).  The socket kinds run over
every backend of :func:`evcore.supported_methods`, the others over the default.
"""

from __future__ import annotations

from evbuffer.testing.bev_suite import *  # noqa: F403
from evbuffer.testing.bev_suite import make_bev_fixture

bev_pair_factory = make_bev_fixture()
