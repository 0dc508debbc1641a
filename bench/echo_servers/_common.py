"""Shared start-up of the echo servers: arguments, CPU pinning, readiness line, profiling.

Every server is started the same way by ``bench/echo.py``::

    python bench/echo_servers/NAME_server.py [--port 0] [--cpu K] [--profile FILE]

It listens on 127.0.0.1 (port 0: the kernel picks one), prints the port alone on one line
of stdout when it is ready to accept, and runs until SIGTERM or SIGINT.  ``--cpu K`` pins
the process to core ``K`` (``os.sched_setaffinity``) before the socket is made.  With
``--profile FILE`` the serving loop runs under :mod:`cProfile` and the statistics are
dumped to ``FILE`` when the signal stops it.

>>> ns = parse_args(["--port", "0", "--cpu", "0"]); ns.port, ns.cpu, ns.profile
(0, 0, None)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import signal
import sys
from collections.abc import Callable, Sequence


def parse_args(argv: Sequence[str] | None, description: str = "echo server") -> argparse.Namespace:
    """Parse the common server options.

    >>> parse_args([]).port
    0
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    p.add_argument("--cpu", type=int, default=None, help="pin this process to core K")
    p.add_argument("--profile", default=None, help="run under cProfile, dump stats to FILE at exit")
    return p.parse_args(argv)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def prepare(ns: argparse.Namespace) -> None:
    """Pin to ``ns.cpu`` if given, and turn SIGTERM and SIGINT into ``SystemExit``.

    >>> import argparse; prepare(argparse.Namespace(cpu=None))
    """
    if ns.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {ns.cpu})
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def ready(port: int) -> None:
    """Announce readiness: the port alone on one line of stdout.

    >>> ready(1234)
    1234
    """
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def serve(ns: argparse.Namespace, loop: Callable[[], object]) -> None:
    """Run ``loop()`` until a stop signal; under cProfile when ``ns.profile`` is set.

    >>> import argparse; serve(argparse.Namespace(profile=None), lambda: None)
    """
    prof = cProfile.Profile() if ns.profile else None
    try:
        if prof is not None:
            prof.enable()
        loop()
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        if prof is not None:
            prof.disable()
            prof.dump_stats(ns.profile)
