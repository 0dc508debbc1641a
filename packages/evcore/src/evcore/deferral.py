"""Deferred callbacks, the thread pool and virtual events."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from threading import get_ident
from typing import Any

from .evmap import EventMap

__all__ = ["Deferral"]


class Deferral(EventMap):
    """Deferred callbacks, the thread pool and virtual events."""

    def defer(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` in the loop thread after this pass's callbacks (FIFO; any thread).

        >>> from evcore import *

        >>> with EventBase(method="select") as base:
        ...     base.defer(print, "deferred")
        ...     base.loop()
        deferred
        1
        """
        with self._lock:
            self._deferred.append((fn, args))
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()

    def run_in_pool(
        self,
        fn: Callable[..., Any],
        *args: Any,
        callback: Callable[[concurrent.futures.Future[Any]], object] | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on an executor thread; deliver the finished future to ``callback`` in the loop.

        The pending job keeps the loop running (a virtual event).  An exception
        raised by ``fn`` is in the future, never lost.

        >>> from evcore import *

        >>> with EventBase(method="select") as base:
        ...     fut = base.run_in_pool(sum, [1, 2, 3], callback=lambda f: print(f.result()))
        ...     base.loop()
        6
        1
        """
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="evcore-pool"
                    )
                executor = self._executor
        with self._lock:
            self._nvirtual += 1
        future = executor.submit(fn, *args)

        def _deliver(fut: concurrent.futures.Future[Any]) -> None:
            with self._lock:
                self._nvirtual -= 1
            if callback is not None:
                callback(fut)

        future.add_done_callback(lambda fut: self.defer(_deliver, fut))
        return future

    def _virtual_add(self) -> None:
        """Count an outstanding operation that should keep the loop alive (libevent's virtual events)."""
        with self._lock:
            self._nvirtual += 1

    def _virtual_del(self) -> None:
        """Undo :meth:`_virtual_add`."""
        with self._lock:
            self._nvirtual -= 1
            if self._sleeping and self._loop_thread != get_ident():
                self._notify()
