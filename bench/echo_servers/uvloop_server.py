"""Echo server on uvloop: the asyncio server's ``EchoProtocol`` on ``uvloop.new_event_loop()``.

Exits with status 3 and a message on stderr when uvloop cannot be imported.  See
``_common.py`` for the command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common
import asyncio_server


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; 3 when uvloop is missing."""
    ns = _common.parse_args(argv, "uvloop echo server")
    try:
        import uvloop
    except ImportError as exc:
        print(f"uvloop not importable: {exc}", file=sys.stderr)
        return 3
    asyncio_server.run(ns, uvloop.new_event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
