"""The exceptions evcore raises.

Failures of operating-system calls stay :class:`OSError`; everything evcore itself
refuses is an :class:`EventError`.

>>> issubclass(DebugModeError, EventError)
True
"""

from __future__ import annotations

__all__ = ["EventError", "DebugModeError", "BackendUnavailable"]


class EventError(Exception):
    """Base of every error evcore raises on its own account.

    >>> try:
    ...     raise EventError("no backend")
    ... except EventError as exc:
    ...     str(exc)
    'no backend'
    """


class DebugModeError(EventError):
    """Misuse of an event caught by debug mode (see :func:`evcore.enable_debug_mode`).

    >>> str(DebugModeError("event freed"))
    'event freed'
    """


class BackendUnavailable(EventError):
    """Raised by a backend's constructor when it cannot work on this system.

    The base then tries the next backend in its list.

    >>> isinstance(BackendUnavailable("io_uring: ENOSYS"), EventError)
    True
    """
