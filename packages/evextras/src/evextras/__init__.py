"""libevent's extras: async DNS, HTTP/1.1, RPC over HTTP, tagged marshalling.

Not built yet: this package installs, imports and reports its version, nothing more.
See the distribution's README for what it will hold.

>>> import evextras
>>> evextras.__version__
'0.1.0'
"""

from __future__ import annotations

__all__ = ["__version__"]

#: The version of the ``evextras`` distribution (kept in step with its ``pyproject.toml``).
__version__ = "0.1.0"
