"""libevent 1.4's API under its C names, over evcore and evbuffer.

Not built yet: this package installs, imports and reports its version, nothing more.
See the distribution's README for what it will hold.

>>> import evcompat
>>> evcompat.__version__
'0.1.0'
"""

from __future__ import annotations

__all__ = ["__version__"]

#: The version of the ``evcompat`` distribution (kept in step with its ``pyproject.toml``).
__version__ = "0.1.0"
