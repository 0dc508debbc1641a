"""Unix readiness backends for evcore: ``poll``, ``epoll``, ``kqueue`` and ``/dev/poll``.

Each backend is one module implementing :class:`evcore.backend.Backend`, and is found by
evcore through the ``evcore.backends`` entry-point group, so installing this package is
all it takes for ``EventBase(method="epoll")`` to work.  ``kqueue`` and ``devpoll`` are
not run on Linux: there they are tested only against fakes of the stdlib objects.

>>> from evbackends_unix import EpollBackend, PollBackend
>>> PollBackend.name, EpollBackend.name
('poll', 'epoll')
>>> isinstance(__version__, str)
True
"""

from __future__ import annotations

from .devpoll import DevpollBackend
from .epoll import EpollBackend
from .kqueue import KqueueBackend
from .poll import PollBackend

__all__ = ["PollBackend", "EpollBackend", "KqueueBackend", "DevpollBackend", "__version__"]

__version__ = "0.1.0"
