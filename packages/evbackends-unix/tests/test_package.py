"""The package as evcore sees it: exports, version, entry points, a loop on each real backend."""

from __future__ import annotations

import select
from importlib import metadata

import pytest

import evbackends_unix
from evbackends_unix import DevpollBackend, EpollBackend, KqueueBackend, PollBackend
from evcore.backend import Backend


def test_exports_and_version():
    assert evbackends_unix.__version__ == metadata.version("evbackends-unix") == "0.1.0"
    assert set(evbackends_unix.__all__) == {
        "PollBackend",
        "EpollBackend",
        "KqueueBackend",
        "DevpollBackend",
        "__version__",
    }
    for cls in (PollBackend, EpollBackend, KqueueBackend, DevpollBackend):
        assert issubclass(cls, Backend)


def test_entry_points_name_the_classes():
    found = {ep.name: ep.load() for ep in metadata.entry_points(group="evcore.backends")}
    assert found["poll"] is PollBackend
    assert found["epoll"] is EpollBackend
    assert found["kqueue"] is KqueueBackend
    assert found["devpoll"] is DevpollBackend


def test_evcore_lists_what_works_here_in_libevent_order():
    import evcore.backend

    methods = evcore.backend.supported_methods()
    expected = [
        name
        for name, present in (
            ("kqueue", hasattr(select, "kqueue")),
            ("epoll", hasattr(select, "epoll")),
            ("devpoll", hasattr(select, "devpoll")),
            ("poll", hasattr(select, "poll")),
        )
        if present
    ]
    assert [m for m in methods if m in {"kqueue", "epoll", "devpoll", "poll"}] == expected


@pytest.mark.parametrize("method", [c.name for c in (EpollBackend, PollBackend) if c.available()])
def test_a_loop_runs_on_the_backend(method, pair):
    from evcore import EV_READ, Event, EventBase

    a, b = pair()
    got = []
    with EventBase(method=method) as base:
        assert base.method == method

        def on_read(fd, what, arg):
            got.append((fd, int(what), a.recv(10)))

        ev = Event(base, a, EV_READ, on_read)
        ev.add(5.0)
        b.send(b"hi")
        assert base.loop() == 1  # ran the callback, then nothing was pending
    assert got == [(a.fileno(), int(EV_READ), b"hi")]
