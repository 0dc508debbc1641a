"""Test helpers for evbuffer: the bufferevent conformance suite lives in :mod:`evbuffer.testing.bev_suite`.

Importing this package costs nothing (the suite modules import pytest; this one
does not).  A package with its own bufferevent kind (TLS, completion ports) plugs
into the suite by describing its kind with :class:`~evbuffer.testing.bev_suite.BevKind`
and defining the ``bev_pair_factory`` fixture with
:func:`~evbuffer.testing.bev_suite.make_bev_fixture`; see :mod:`evbuffer.testing.bev_suite`.

>>> import evbuffer.testing
>>> evbuffer.testing.SUITE_MODULE
'evbuffer.testing.bev_suite'
"""

from __future__ import annotations

__all__ = ["SUITE_MODULE"]

#: Where the importable conformance tests are.
SUITE_MODULE = "evbuffer.testing.bev_suite"
