"""The loop conformance suite (:mod:`evcore.testing.loop_suite`) on every backend evcore finds.

With evcore alone that is ``select``; with evbackends-unix installed, also ``poll``
and ``epoll`` (plus ``epoll-et`` for the fd tests).  The list is read at collection
time from :func:`evcore.supported_methods`.
"""

from __future__ import annotations

from evcore.testing.loop_suite import *  # noqa: F403
from evcore.testing.loop_suite import make_base_fixtures

base_factory, io_base_factory = make_base_fixtures()
