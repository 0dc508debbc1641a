"""TLS bufferevents over pyOpenSSL memory BIOs.

Not built yet: this package installs, imports and reports its version, nothing more.
See the distribution's README for what it will hold.

>>> import evbufferevent_ssl
>>> evbufferevent_ssl.__version__
'0.1.0'
"""

from __future__ import annotations

__all__ = ["__version__"]

#: The version of the ``evbufferevent-ssl`` distribution (kept in step with its ``pyproject.toml``).
__version__ = "0.1.0"
