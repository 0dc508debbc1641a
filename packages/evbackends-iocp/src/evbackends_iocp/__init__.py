"""Completion-port backends for evcore: io_uring on Linux and IOCP on Windows.

Not built yet: this package installs, imports and reports its version, nothing more.
See the distribution's README for what it will hold.

>>> import evbackends_iocp
>>> evbackends_iocp.__version__
'0.1.0'
"""

from __future__ import annotations

__all__ = ["__version__"]

#: The version of the ``evbackends-iocp`` distribution (kept in step with its ``pyproject.toml``).
__version__ = "0.1.0"
