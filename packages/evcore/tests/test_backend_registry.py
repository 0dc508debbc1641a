"""The backend plug-in interface and registry (:mod:`evcore.backend`), and the ``select`` backend's edges.

Plug-ins are real: entry points come from a small distribution written to a
temporary directory on ``sys.path`` (found by :mod:`importlib.metadata` as any
installed package would be), and hand-registered backends are real subclasses.
Registry state is global, so each test restores it (they run forked anyway).
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import evcore
from evcore import (
    EV_PERSIST,
    EV_READ,
    EVLOOP_NONBLOCK,
    EVLOOP_ONCE,
    BackendUnavailable,
    Event,
    EventBase,
    EventError,
    Feature,
)
from evcore import backend as backend_mod
from evcore.backend import BADFD, Backend, register_backend, registered_backends, supported_methods
from evcore.select_backend import FD_SETSIZE, SelectBackend


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Forget loaded entry points and hand-registered backends before and after the test."""
    saved_manual = dict(backend_mod._manual)
    backend_mod._entry_points_loaded = None
    try:
        yield
    finally:
        backend_mod._manual.clear()
        backend_mod._manual.update(saved_manual)
        backend_mod._entry_points_loaded = None


def _write_plugin(tmp: Path) -> None:
    dist = tmp / "evcore_fakeplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evcore-fakeplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [evcore.backends]
        broken = evcore_fakeplug_missing:Nope
        notabackend = evcore_fakeplug:NOT_A_BACKEND
        custom = evcore_fakeplug:CustomBackend
        """))
    (tmp / "evcore_fakeplug.py").write_text(textwrap.dedent("""\
        from evcore.select_backend import SelectBackend

        NOT_A_BACKEND = 42

        class CustomBackend(SelectBackend):
            name = "custom"
        """))


def test_entry_points_broken_and_valid(tmp_path: Path, clean_registry: None, caplog: Any) -> None:
    """A plug-in that fails to import, or is not a Backend, is logged and skipped; a good one is used."""
    _write_plugin(tmp_path)
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        with caplog.at_level(logging.WARNING, logger="evcore"):
            methods = supported_methods()
        assert "custom" in methods and methods.index("custom") > methods.index("select")
        assert "broken" not in methods and "notabackend" not in methods
        messages = " ".join(r.getMessage() for r in caplog.records)
        assert "'broken'" in messages and "cannot load" in messages
        assert "'notabackend'" in messages and "not a Backend" in messages
        with EventBase(method="custom") as base:
            assert base.method == "custom"
            seen: list[int] = []
            Event.timer(base, lambda fd, what, arg: seen.append(what)).add(0)
            assert base.loop() == 1 and seen == [1]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("evcore_fakeplug", None)


def test_register_backend_refuses_non_backends(clean_registry: None) -> None:
    """Only named ``Backend`` subclasses can be registered."""
    with pytest.raises(TypeError):
        register_backend(int)  # type: ignore[arg-type]

    class Nameless(SelectBackend):
        name = ""

    with pytest.raises(TypeError):
        register_backend(Nameless)


def test_register_backend_preference_and_availability(clean_registry: None) -> None:
    """``preference`` orders a hand-registered backend; ``available() == False`` hides it."""

    @register_backend
    class Preferred(SelectBackend):
        name = "preferred"
        preference = -1.0

    @register_backend
    class Hidden(SelectBackend):
        name = "hidden"

        @classmethod
        def available(cls) -> bool:
            return False

    methods = supported_methods()
    assert methods[0] == "preferred"
    assert "hidden" not in methods
    assert registered_backends()[0] is Preferred
    with EventBase() as base:
        assert base.method == "preferred"
    with pytest.raises(EventError):
        EventBase(method="hidden")


def test_backend_unavailable_is_skipped(clean_registry: None) -> None:
    """A backend whose constructor raises ``BackendUnavailable`` (or ``OSError``) is skipped and named."""

    @register_backend
    class Refuses(SelectBackend):
        name = "refuses"
        preference = -2.0

        def __init__(self, base: Any) -> None:
            raise BackendUnavailable("refuses: not on this kernel")

    @register_backend
    class OsFails(SelectBackend):
        name = "osfails"
        preference = -1.0

        def __init__(self, base: Any) -> None:
            raise OSError(errno.ENOSYS, "no such system call")

    with EventBase() as base:
        assert base.method not in ("refuses", "osfails")
    with pytest.raises(EventError, match="not on this kernel"):
        EventBase(method="refuses")
    with pytest.raises(EventError, match="no such system call"):
        EventBase(method="osfails")


def test_dispatch_failure_returns_minus_one(clean_registry: None, caplog: Any) -> None:
    """``loop`` returns -1 after logging when the backend's wait fails beyond recovery."""

    @register_backend
    class Broken(SelectBackend):
        name = "brokenwait"

        def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
            raise OSError(errno.EIO, "the wait broke")

    with caplog.at_level(logging.ERROR, logger="evcore"), EventBase(method="brokenwait") as base:
        ev = Event.timer(base, lambda *a: None)
        ev.add(10)
        assert base.loop() == -1
        msgs = [r.getMessage() for r in caplog.records]
        assert any("brokenwait" in m and "the wait broke" in m for m in msgs)
        assert not base._running
        ev.delete()


def test_changelist_errors_drop_the_fd(clean_registry: None, caplog: Any) -> None:
    """With a changelist, a refused add surfaces in the loop: logged, the fd's events dropped, others kept."""
    refused: set[int] = set()

    @register_backend
    class Refuser(SelectBackend):
        name = "refuser"
        changelist = True

        def add(self, fd: int, old: int, events: int) -> None:
            if fd in refused:
                raise PermissionError(errno.EPERM, f"cannot watch fd {fd}")
            super().add(fd, old, events)

        def delete(self, fd: int, old: int, events: int) -> None:
            if fd in refused:
                raise OSError(errno.EBADF, "not there either")
            super().delete(fd, old, events)

    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        refused.add(a.fileno())
        with caplog.at_level(logging.WARNING, logger="evcore"), EventBase(method="refuser") as base:
            bad = Event(base, a, EV_READ, lambda *x: None)
            bad.add()  # deferred: no error yet
            assert bad.pending(EV_READ) == EV_READ
            good_seen: list[int] = []
            good = Event(base, c, EV_READ, lambda fd, what, arg: good_seen.append(what))
            good.add()
            d.send(b"x")
            assert base.loop(EVLOOP_NONBLOCK) == 1
            assert good_seen == [EV_READ]
            assert bad.pending() == 0
            assert any(f"fd {a.fileno()}" in r.getMessage() for r in caplog.records)
            assert base.num_events() == 0
    finally:
        for s in (a, b, c, d):
            s.close()


def test_changelist_coalesces(clean_registry: None) -> None:
    """``test-changelist``: add/delete churn on an fd between dispatches reaches the backend as one change."""
    calls: list[tuple[str, int, int, int]] = []

    @register_backend
    class Counting(SelectBackend):
        name = "counting"
        changelist = True

        def add(self, fd: int, old: int, events: int) -> None:
            calls.append(("add", fd, old, events))
            super().add(fd, old, events)

        def delete(self, fd: int, old: int, events: int) -> None:
            calls.append(("del", fd, old, events))
            super().delete(fd, old, events)

    a, b = socket.socketpair()
    try:
        with EventBase(method="counting") as base:
            calls.clear()  # the base's own wakeup fd
            r = Event(base, a, EV_READ | EV_PERSIST, lambda *x: None)
            w = Event(base, a, 4 | EV_PERSIST, lambda *x: None)  # EV_WRITE
            r.add()
            for _ in range(100):  # enable/disable writing, as a busy connection does
                w.add()
                w.delete()
            assert calls == []  # nothing reaches the backend before the dispatch
            assert base.loop(EVLOOP_NONBLOCK) == 0
            assert calls == [("add", a.fileno(), 0, EV_READ)]
            calls.clear()
            w.add()
            w.delete()
            w.add()
            assert base.loop(EVLOOP_NONBLOCK | EVLOOP_ONCE) == 0  # w is always ready: one pass
            assert calls == [("add", a.fileno(), EV_READ, 4)]
            calls.clear()
            r.delete()
            w.delete()
            assert base.loop(EVLOOP_NONBLOCK) == 1
            assert calls == [("del", a.fileno(), EV_READ | 4, EV_READ | 4)]
    finally:
        a.close()
        b.close()


def test_backend_base_class_defaults() -> None:
    """The ABC's defaults: available, a no-op close, a repr naming the backend."""

    class Minimal(Backend):
        name = "minimal"
        features = Feature.FDS

        def add(self, fd: int, old: int, events: int) -> None:
            pass

        def delete(self, fd: int, old: int, events: int) -> None:
            pass

        def dispatch(self, timeout: float | None) -> Iterable[tuple[int, int]]:
            return ()

    be = Minimal(None)
    assert Minimal.available() and be.base is None
    be.close()
    assert "minimal" in repr(be)
    assert not Minimal.need_reinit and not Minimal.changelist and Minimal.preference is None


def test_vendored_copy_finds_select(tmp_path: Path) -> None:
    """A vendored copy of evcore (no package metadata, no site-packages) still finds ``select``."""
    src = Path(evcore.__file__).parent
    shutil.copytree(src, tmp_path / "evcore", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import evcore, sys; print(evcore.supported_methods()); "
            "b = evcore.EventBase(); print(b.method, b.loop()); b.free()")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COV_CORE", "COVERAGE"))}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["['select']", "select 1"]


# ---------------------------------------------------------------------------------------- select


def test_select_refuses_fd_over_setsize() -> None:
    """``select`` refuses an fd ≥ FD_SETSIZE at ``add`` (``OSError``) and the base stays consistent."""
    a, b = socket.socketpair()
    high = FD_SETSIZE + 476
    try:
        os.dup2(a.fileno(), high)
    except OSError:  # pragma: no cover - fd limit below 1500
        a.close()
        b.close()
        pytest.skip("cannot open an fd above FD_SETSIZE here")
    try:
        with EventBase(method="select") as base:
            ev = Event(base, high, EV_READ, lambda *x: None)
            with pytest.raises(OSError) as info:
                ev.add()
            assert info.value.errno == errno.EINVAL
            assert ev.pending() == 0 and base.num_events() == 0
            seen: list[int] = []
            ok = Event(base, a, EV_READ, lambda fd, what, arg: seen.append(what))
            ok.add()
            b.send(b"x")
            assert base.loop() == 1 and seen == [EV_READ]
        be = SelectBackend(None)
        with pytest.raises(OSError):
            be.add(-1, 0, EV_READ)
    finally:
        os.close(high)
        a.close()
        b.close()


def test_select_ebadf_reports_only_the_closed_fd(caplog: Any) -> None:
    """``select`` failing with EBADF finds the closed fds one by one and reports each as BADFD."""
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    be = SelectBackend(None)
    try:
        be.add(a.fileno(), 0, EV_READ)
        be.add(c.fileno(), 0, EV_READ | 4)
        fd = a.fileno()
        a.close()
        got = list(be.dispatch(0))
        assert got == [(fd, BADFD)]
        # the bad fd is forgotten; the good one works
        assert list(be.dispatch(0)) == [(c.fileno(), 4)]
        d.send(b"x")
        assert dict(be.dispatch(0)) == {c.fileno(): EV_READ | 4}
        be.delete(c.fileno(), EV_READ | 4, EV_READ | 4)
        assert list(be.dispatch(0)) == []
    finally:
        be.close()
        for s in (b, c, d):
            s.close()


def test_select_base_drops_closed_fd(caplog: Any) -> None:
    """Through a base: the EBADF fd is logged as a warning naming it, and its events are dropped."""
    a, b = socket.socketpair()
    with caplog.at_level(logging.WARNING, logger="evcore"), EventBase(method="select") as base:
        ev = Event(base, a, EV_READ, lambda *x: None)
        ev.add()
        fd = a.fileno()
        a.close()
        assert base.loop(EVLOOP_NONBLOCK) == 0  # a pass that ran nothing
        assert ev.pending() == 0
        assert base.loop() == 1  # nothing left
        assert any(f"fd {fd}" in r.getMessage() for r in caplog.records)
    b.close()


def test_evcore_exports() -> None:
    """The top-level names DESIGN.md lists are all there."""
    for name in ("EventBase", "EventConfig", "Event", "EV", "Feature", "BaseFlag", "LoopFlag", "EV_TIMEOUT",
                 "EV_READ", "EV_WRITE", "EV_SIGNAL", "EV_PERSIST", "EV_ET", "EV_CLOSED", "EVLOOP_ONCE",
                 "EVLOOP_NONBLOCK", "EVLOOP_NO_EXIT_ON_EMPTY", "supported_methods", "register_backend",
                 "EventError", "DebugModeError", "enable_debug_mode", "set_fatal_callback",
                 "event_self_cbarg"):
        assert hasattr(evcore, name), name
