"""evbuffer: libevent 2.0's buffers for Python.

:class:`Buffer` is a queue of bytes kept as a chain of chunks: moving data between buffers
moves chunks, draining never copies what stays, and sockets are read into and written from
the chunks directly (``recv_into``/``readv``, ``sendmsg``/``writev``, ``sendfile``).

>>> import evbuffer
>>> buf = evbuffer.Buffer(b"HTTP/1.0 200 OK\\r\\n")
>>> buf.readln(evbuffer.EOL.CRLF)
b'HTTP/1.0 200 OK'
"""

from __future__ import annotations

from .buffer import Buffer
from .bufferevent import BEV_EVENT, BEV_OPT, Bufferevent, FilterResult, FlushMode
from .callbacks import CallbackHandle, CallbackInfo
from .eol import (
    EOL,
    EVBUFFER_EOL_ANY,
    EVBUFFER_EOL_CRLF,
    EVBUFFER_EOL_CRLF_STRICT,
    EVBUFFER_EOL_LF,
    EVBUFFER_EOL_NUL,
)
from .errors import EvbufferError, FrozenError, SizeLimitError
from .listener import LEV_OPT, Listener
from .ptr import EVBUFFER_PTR_ADD, EVBUFFER_PTR_SET, BufferPtr, PtrHow
from .ratelimit import RateLimit, RateLimitGroup

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "BEV_EVENT",
    "BEV_OPT",
    "Bufferevent",
    "FilterResult",
    "FlushMode",
    "LEV_OPT",
    "Listener",
    "RateLimit",
    "RateLimitGroup",
    "Buffer",
    "BufferPtr",
    "EOL",
    "PtrHow",
    "CallbackInfo",
    "CallbackHandle",
    "EvbufferError",
    "FrozenError",
    "SizeLimitError",
    "EVBUFFER_EOL_ANY",
    "EVBUFFER_EOL_CRLF",
    "EVBUFFER_EOL_CRLF_STRICT",
    "EVBUFFER_EOL_LF",
    "EVBUFFER_EOL_NUL",
    "EVBUFFER_PTR_SET",
    "EVBUFFER_PTR_ADD",
]
