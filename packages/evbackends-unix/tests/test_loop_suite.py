"""evcore's loop conformance suite, run on this package's backends (poll, epoll, epoll-et).

The same test functions run in evcore's own tests over every registered backend; here
they run on exactly the backends this distribution ships, so a standalone install of
evbackends-unix proves its backends keep libevent's loop semantics.
"""

from __future__ import annotations

from evcore.testing.loop_suite import *  # noqa: F403
from evcore.testing.loop_suite import make_base_fixtures

base_factory, io_base_factory = make_base_fixtures(["epoll", "poll"])
