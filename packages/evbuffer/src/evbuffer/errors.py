"""The exceptions evbuffer raises.

Failures of operating-system calls stay :class:`OSError` (``BlockingIOError`` where an fd
would block); everything a buffer refuses on its own account is an :class:`EvbufferError`.

>>> issubclass(FrozenError, EvbufferError)
True
>>> issubclass(SizeLimitError, ValueError) and issubclass(SizeLimitError, OverflowError)
True
"""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["EvbufferError", "FrozenError", "SizeLimitError", "check_size"]


class EvbufferError(Exception):
    """Base of every error evbuffer raises on its own account.

    >>> try:
    ...     raise EvbufferError("reservation no longer valid")
    ... except EvbufferError as exc:
    ...     str(exc)
    'reservation no longer valid'
    """


class FrozenError(EvbufferError):
    """Data was added to a frozen end, or drained from a frozen start (see ``Buffer.freeze``).

    >>> from evbuffer import Buffer
    >>> buf = Buffer()
    >>> buf.freeze(False)
    >>> try:
    ...     buf.add(b"x")
    ... except FrozenError as exc:
    ...     print(exc)
    the end of this buffer is frozen
    """


class SizeLimitError(EvbufferError, ValueError, OverflowError):
    """A size larger than the buffer agrees to allocate in one go (``Buffer.max_alloc``).

    It is a :class:`ValueError` (a bad argument) and an :class:`OverflowError` (past a
    limit), so code written against either catches it.

    >>> from evbuffer import Buffer
    >>> try:
    ...     Buffer().expand(1 << 62)
    ... except ValueError as exc:
    ...     print(type(exc).__name__)
    SizeLimitError
    """


def check_size(n: Any, what: str = "n") -> int:
    """``n`` as an int (``operator.index``), refusing negative values with ``ValueError``.

    >>> check_size(3)
    3
    >>> check_size(-1, "length")
    Traceback (most recent call last):
    ...
    ValueError: length must be >= 0, not -1
    """
    i: int = operator.index(n)
    if i < 0:
        raise ValueError(f"{what} must be >= 0, not {i}")
    return i
