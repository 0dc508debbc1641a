"""A drop-in for the old ``pyevent`` module ``event``, over evcore.

Not built yet: this package installs, imports and reports its version, nothing more.
See the distribution's README for what it will hold.

>>> import event
>>> event.__version__
'0.1.0'
"""

from __future__ import annotations

__all__ = ["__version__"]

#: The version of the ``evcompat`` distribution (kept in step with its ``pyproject.toml``).
__version__ = "0.1.0"
