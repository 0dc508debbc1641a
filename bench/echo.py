"""evbuffer's echo benchmark: one C client against echo servers on evbuffer, asyncio and uvloop.

Usage::

    python bench/echo.py [--quick] [--json FILE] [--reps R] [--duration S] [--warmup S]
                         [--stacks evbuffer,asyncio,uvloop] [--no-pin]
    python bench/echo.py --profile [--profile-stack evbuffer] [--profile-seconds S] [--conns 10] [--size 1024]

Facts and theory of operation
-----------------------------
* **One client for every stack**: ``echo_servers/echo_client.c`` (a copy of the project's
  shared load generator, ``/work/shared/bench/echo_client.c``), compiled with ``gcc -O2`` at run
  time into a cache directory (``$EVBENCH_CACHE``, else ``~/.cache/evbench``, else the temp
  directory), named by a hash of its source so an edit recompiles.  It opens K connections and
  plays ping-pong on each (send one message, wait until all of it has come back, repeat) from
  one epoll loop, and reports requests/s and MB/s (10^6 bytes, echoed bytes counted once) over
  the measured seconds after its warm-up.
* **Servers are separate Python processes** (``echo_servers/*_server.py``), started once per
  run and kept for every cell: ``evbuffer`` (socket bufferevents from a ``Listener``, the read
  callback does ``bev.output.add_buffer(bev.input)``), ``asyncio`` (a ``Protocol`` whose
  ``data_received`` does ``transport.write(data)``) and ``uvloop`` (the same protocol on uvloop,
  skipped when uvloop is not importable).  All set ``TCP_NODELAY``.
* **Pinning**: on a machine with two or more cores every server runs on core 0
  (``os.sched_setaffinity`` in the server) and the client on core 1 (``sched_setaffinity`` in
  the forked child before ``exec``), so the client never steals the server's CPU; ``--no-pin``
  turns it off.  Each server is single-threaded, so one core is all it can use.
* **Cells** are (connections, message size).  Each (cell, stack) is measured as ``reps``
  samples (3 in the full run, 2 quick; at most ``MAX_REPS``) that share the cell's measured
  time (3 s full, 1 s quick), interleaved: round 1 runs every stack once, then round 2, ...,
  in an order rotated by cell, so a noisy spell of a shared machine is spread over all stacks
  instead of landing on one.  Every client run is a fresh set of connections with its own
  warm-up (1 s full / 0.5 s quick in round 1, 0.2 s after).  The best sample's requests/s is
  reported (noise only ever lowers throughput); every sample is in the JSON.  Server CPU is
  read from ``/proc/PID/stat`` over each client's measured interval: "srv cpu%" near 100 means
  the server was the bottleneck, and "cpu µs/req" (server CPU time over requests, all samples)
  is the figure least disturbed by other work on the machine.
* **Loopback bandwidth**, measured in the same run (before the echo cells, and in the full run
  once more after them; the best is used): a Python ``sendall``/``recv_into`` pair on 127.0.0.1
  (``echo_servers/loopback.py``, the receiver on core 0 and the sender on core 1), one
  connection, one direction, GB/s.  The 1 MiB rows are reported as a percentage of it.  Note
  what is compared: an echo server moves every byte in *and* out, the loopback pair moves it
  once; the issue's target compares echo MB/s (counted once) with it all the same.  With many
  connections the echo rows can exceed it: one connection does not saturate loopback.
* **Targets** (issue "evbuffer", item 6), printed with PASS/MISS: 1 MiB messages at >= 85 % of
  loopback TCP bandwidth, and 1 KiB messages at >= 1.15x asyncio Protocol requests/s, each at
  10 and 100 connections (``--quick`` runs only 10 connections).

>>> fmt_size(1024), fmt_size(1 << 20), fmt_size(65536)
('1 KiB', '1 MiB', '64 KiB')
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pstats
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "echo_servers")
CLIENT_SOURCES = [
    os.environ.get("EVBENCH_ECHO_CLIENT", ""),
    os.path.join(SERVERS, "echo_client.c"),
    "/work/shared/bench/echo_client.c",
]
#: (name, script); uvloop's server exits with status 3 when uvloop is missing.
STACKS: list[tuple[str, str]] = [
    ("evbuffer", "evbuffer_server.py"),
    ("asyncio", "asyncio_server.py"),
    ("uvloop", "uvloop_server.py"),
]
KIB, MIB = 1024, 1 << 20
FULL: dict[str, Any] = {
    "cells": [(10, KIB), (10, 64 * KIB), (10, MIB), (100, KIB), (100, 64 * KIB), (100, MIB)],
    "duration": 3.0,
    "warmup": 1.0,
    "rewarm": 0.2,
    "reps": 3,
    "loopback_seconds": 1.5,
    "loopback_runs": 2,
}
QUICK: dict[str, Any] = {
    "cells": [(10, KIB), (10, MIB)],
    "duration": 1.0,
    "warmup": 0.5,
    "rewarm": 0.2,
    "reps": 2,
    "loopback_seconds": 1.0,
    "loopback_runs": 1,
}
#: At most this many samples per (cell, stack), whatever ``reps`` asks: the time budget.
MAX_REPS = 3
SERVER_CPU, CLIENT_CPU = 0, 1
#: Issue targets.
LOOPBACK_SHARE = 0.85
SMALL_VS_ASYNCIO = 1.15


def fmt_size(n: int) -> str:
    """A message size in KiB/MiB.

    >>> fmt_size(4 * 1024 * 1024)
    '4 MiB'
    """
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} B"


def pinning_possible() -> bool:
    """True when this machine has the two cores the pinning needs.

    >>> isinstance(pinning_possible(), bool)
    True
    """
    return (
        hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2 and (os.cpu_count() or 1) >= 2
    )


# ---------------------------------------------------------------------------
# processes


def compile_client(log: Any = None) -> str:
    """Compile the echo client (once per source version); return the binary's path.

    Raises ``RuntimeError`` when there is no source or no C compiler.
    """
    src = next((p for p in CLIENT_SOURCES if p and os.path.isfile(p)), None)
    if src is None:
        raise RuntimeError(
            "echo_client.c not found (looked in " + ", ".join(p for p in CLIENT_SOURCES if p) + ")"
        )
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler (gcc) to build the echo client")
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read() + cc.encode()).hexdigest()[:16]
    for cache in (
        os.environ.get("EVBENCH_CACHE"),
        os.path.expanduser("~/.cache/evbench"),
        tempfile.gettempdir(),
    ):
        if not cache:
            continue
        try:
            os.makedirs(cache, exist_ok=True)
        except OSError:
            continue
        exe = os.path.join(cache, f"echo_client-{digest}")
        if os.access(exe, os.X_OK):
            return exe
        tmp = f"{exe}.{os.getpid()}.tmp"
        try:
            subprocess.run([cc, "-O2", "-o", tmp, src], check=True, capture_output=True, text=True)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"compiling {src} failed:\n{exc.stderr}") from None
        except OSError:
            continue
        os.replace(tmp, exe)
        if log:
            log(f"  compiled {src} -> {exe}")
        return exe
    raise RuntimeError("no writable directory for the compiled echo client")


def _pin(cpu: int | None) -> Any:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line of ``proc``'s stdout, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"no output from {proc.args!r} within {timeout} s")
    line = proc.stdout.readline()
    if not line:
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{proc.args!r} exited ({proc.wait()}) without output: {err.strip()}")
    return line.strip()


def _stop(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


def start_server(
    script: str, cpu: int | None, profile: str | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Start an echo server script; return the process and the port it announced."""
    cmd = [sys.executable, os.path.join(SERVERS, script)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    if profile:
        cmd += ["--profile", profile]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(_read_line(proc, 30.0))
    except BaseException:
        _stop(proc)
        raise
    return proc, port


def _cpu_ticks(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(
    exe: str,
    port: int,
    conns: int,
    size: int,
    duration: float,
    warmup: float,
    cpu: int | None,
    server_pid: int,
) -> dict[str, Any]:
    """One client run; its JSON result plus ``server_cpu_pct`` over the measured interval."""
    cmd = [exe, "-p", str(port), "-c", str(conns), "-s", str(size), "-d", str(duration), "-w", str(warmup)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_pin(cpu)
    )
    time.sleep(warmup)
    c0, t0 = _cpu_ticks(server_pid), time.perf_counter()
    try:
        out, err = proc.communicate(timeout=duration + warmup + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"echo client stalled: {' '.join(cmd)}") from None
    c1, t1 = _cpu_ticks(server_pid), time.perf_counter()
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"echo client failed ({proc.returncode}): {err.strip()}")
    res: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if c0 is not None and c1 is not None:
        res["server_cpu_pct"] = 100.0 * (c1 - c0) / (t1 - t0)
        res["server_cpu_s_per_s"] = (c1 - c0) / (t1 - t0)
    else:
        res["server_cpu_pct"] = res["server_cpu_s_per_s"] = None
    return res


def loopback_bandwidth(seconds: float, pin: bool) -> dict[str, Any]:
    """Measure one-way loopback TCP bandwidth with the Python sender/receiver pair (GB/s)."""
    script = os.path.join(SERVERS, "loopback.py")
    warm = min(0.5, seconds / 3)
    sink_cmd = [sys.executable, script, "sink", "--warmup", str(warm)]
    src_cmd = [sys.executable, script, "source", "--seconds", str(seconds + warm)]
    if pin:
        sink_cmd += ["--cpu", str(SERVER_CPU)]
        src_cmd += ["--cpu", str(CLIENT_CPU)]
    sink = subprocess.Popen(sink_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(_read_line(sink, 30.0))
        src = subprocess.run(
            [*src_cmd, "--port", str(port)], capture_output=True, text=True, timeout=seconds + 60
        )
        if src.returncode != 0:
            raise RuntimeError(f"loopback source failed: {src.stderr.strip()}")
        res: dict[str, Any] = json.loads(_read_line(sink, 30.0))
    finally:
        _stop(sink)
    res["method"] = "python sendall/recv_into pair, 1 MiB buffers, one connection"
    return res


# ---------------------------------------------------------------------------
# the run


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run(
    quick: bool,
    reps: int = 0,
    *,
    stacks: Sequence[str] | None = None,
    duration: float | None = None,
    warmup: float | None = None,
    pin: bool = True,
    log: Any = None,
) -> dict[str, Any]:
    """Run the loopback measurement and the echo matrix; return JSON-ready results.

    Every (cell, stack) gets ``reps`` samples (0: the default, 3 full / 2 quick; at most
    ``MAX_REPS``) that share the cell's measured ``duration``, interleaved across the stacks;
    the best requests/s is reported.  ``stacks`` limits the servers.
    """
    cfg = dict(QUICK if quick else FULL)
    if duration is not None:
        cfg["duration"] = duration
    if warmup is not None:
        cfg["warmup"] = warmup
    reps = min(MAX_REPS, reps if reps > 0 else cfg["reps"])
    sample_s = cfg["duration"] / reps
    pin = pin and pinning_possible()
    scpu, ccpu = (SERVER_CPU, CLIENT_CPU) if pin else (None, None)
    say = log or (lambda s: None)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "params": {
            "cells": [list(c) for c in cfg["cells"]],
            "duration_s": cfg["duration"],
            "warmup_s": cfg["warmup"],
            "rewarm_s": cfg["rewarm"],
            "sample_s": sample_s,
            "reps": reps,
            "pinned": {"server": scpu, "client": ccpu},
            "python": sys.version.split()[0],
        },
        "loadavg_start": _loadavg(),
        "stacks": {},
        "cells": [],
        "errors": {},
    }
    exe = compile_client(say)
    loopbacks = [loopback_bandwidth(cfg["loopback_seconds"], pin)]
    say(f"  loopback TCP: {loopbacks[-1]['gb_per_s']:.3f} GB/s")
    servers: dict[str, tuple[subprocess.Popen[str], int]] = {}
    try:
        for name, script in STACKS:
            if stacks and name not in stacks:
                continue
            try:
                servers[name] = start_server(script, scpu)
                results["stacks"][name] = {"script": script}
            except RuntimeError as exc:
                results["errors"][name] = str(exc)
                say(f"  {name}: not run: {exc}")
        names = list(servers)
        for ci, (conns, size) in enumerate(cfg["cells"]):
            k = ci % len(names) if names else 0
            order = names[k:] + names[:k]
            samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
            errors: dict[str, str] = {}
            for rep in range(reps):
                warm = cfg["warmup"] if rep == 0 else cfg["rewarm"]
                for name in order:
                    if name in errors:
                        continue
                    proc, port = servers[name]
                    try:
                        samples[name].append(
                            run_client(exe, port, conns, size, sample_s, warm, ccpu, proc.pid)
                        )
                    except RuntimeError as exc:
                        errors[name] = str(exc)
                        say(f"  {conns} conns {fmt_size(size)} {name}: FAILED: {exc}")
            for name in names:
                got = samples[name]
                best = max(got, key=lambda r: r["req_per_s"]) if got else None
                cell: dict[str, Any] = {"conns": conns, "size": size, "stack": name}
                if best is not None:
                    cell.update(
                        req_per_s=best["req_per_s"],
                        mb_per_s=best["mb_per_s"],
                        server_cpu_pct=best["server_cpu_pct"],
                        client_cpu_pct=best["client_cpu_pct"],
                        server_cpu_us_per_req=_cpu_us_per_req(got),
                        samples=[
                            {k2: s[k2] for k2 in ("req_per_s", "mb_per_s", "server_cpu_pct", "seconds")}
                            for s in got
                        ],
                    )
                    say(
                        f"  {conns:>3} conns {fmt_size(size):>7} {name:<9} {best['req_per_s']:>10.0f} req/s"
                        f" {best['mb_per_s']:>9.1f} MB/s  server cpu {best['server_cpu_pct'] or 0:.0f}%"
                    )
                if name in errors:
                    cell["error"] = errors[name]
                results["cells"].append(cell)
    finally:
        for proc, _port in servers.values():
            _stop(proc)
    for _ in range(cfg["loopback_runs"] - 1):
        loopbacks.append(loopback_bandwidth(cfg["loopback_seconds"], pin))
        say(f"  loopback TCP: {loopbacks[-1]['gb_per_s']:.3f} GB/s")
    results["loopback"] = dict(max(loopbacks, key=lambda r: r["gb_per_s"]))
    results["loopback"]["samples_gb_per_s"] = [r["gb_per_s"] for r in loopbacks]
    results["loadavg_end"] = _loadavg()
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets(results)
    return results


def _cell(results: dict[str, Any], conns: int, size: int, stack: str) -> dict[str, Any] | None:
    for c in results["cells"]:
        if c["conns"] == conns and c["size"] == size and c["stack"] == stack and "req_per_s" in c:
            return c
    return None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets judged on ``results``: a list of {target, value, limit, verdict}."""
    out: list[dict[str, Any]] = []
    loop_mb = results.get("loopback", {}).get("gb_per_s", 0.0) * 1000.0
    conns_seen = sorted({c["conns"] for c in results["cells"]})
    for conns in conns_seen:
        if any(c["size"] == MIB for c in results["cells"] if c["conns"] == conns):
            ev = _cell(results, conns, MIB, "evbuffer")
            value = ev["mb_per_s"] / loop_mb if ev and loop_mb else None
            out.append(_verdict(f"1 MiB, {conns} conns: evbuffer MB/s / loopback TCP", value, LOOPBACK_SHARE))
        if any(c["size"] == KIB for c in results["cells"] if c["conns"] == conns):
            ev, aio = _cell(results, conns, KIB, "evbuffer"), _cell(results, conns, KIB, "asyncio")
            value = ev["req_per_s"] / aio["req_per_s"] if ev and aio and aio["req_per_s"] else None
            out.append(_verdict(f"1 KiB, {conns} conns: evbuffer req/s / asyncio", value, SMALL_VS_ASYNCIO))
    return out


def _cpu_us_per_req(samples: list[dict[str, Any]]) -> float | None:
    """Server CPU µs per request over all ``samples`` (total CPU / total requests)."""
    cpu = reqs = 0.0
    for s in samples:
        if s.get("server_cpu_s_per_s") is None:
            return None
        cpu += s["server_cpu_s_per_s"] * s["seconds"]
        reqs += s["req_per_s"] * s["seconds"]
    return cpu / reqs * 1e6 if reqs else None


def cpu_per_req(cell: dict[str, Any]) -> float | None:
    """Server CPU µs per request of a cell: less sensitive to a busy machine than req/s (other
    work takes CPU time away from the server, it does not make the server's requests cost more).

    >>> cpu_per_req({"server_cpu_us_per_req": 50.0})
    50.0
    """
    v: float | None = cell.get("server_cpu_us_per_req")
    return v


def _verdict(target: str, value: float | None, limit: float) -> dict[str, Any]:
    verdict = "n/a" if value is None else ("PASS" if value >= limit else "MISS")
    return {"target": target, "value": value, "limit": limit, "verdict": verdict}


# ---------------------------------------------------------------------------
# report


def _f(v: float | None, spec: str) -> str:
    width = spec.split(".")[0].rstrip("f")
    return format(v, spec) if v is not None else format("-", ">" + (width or "1"))


def format_table(results: dict[str, Any]) -> str:
    """The echo table, the loopback line and the target verdicts as text."""
    p = results["params"]
    lb = results.get("loopback", {})
    loop_mb = lb.get("gb_per_s", 0.0) * 1000.0
    pinned = p["pinned"]
    where = (
        f"server on core {pinned['server']}, client on core {pinned['client']}"
        if pinned.get("server") is not None
        else "not pinned"
    )
    lines = [
        f"echo: same C client for every stack; {where}; per cell and stack: best of {p['reps']} samples"
        f" of {p['sample_s']:.2g} s, interleaved (warm-up {p['warmup_s']:g} s, then {p['rewarm_s']:g} s)",
        f"  load average {results.get('loadavg_start')} at the start,"
        f" {results.get('loadavg_end')} at the end",
        f"  loopback TCP bandwidth ({lb.get('method', '?')}): {lb.get('gb_per_s', 0.0):.3f} GB/s"
        f" (best of {', '.join(f'{g:.3f}' for g in lb.get('samples_gb_per_s', []))})",
        f"  {'conns':>5} {'size':>7}  {'stack':<9}{'req/s':>11}{'MB/s':>10}{'srv cpu%':>9}{'cpu µs/req':>11}"
        f"{'/asyncio':>10}{'/uvloop':>9}{'%loopback':>10}",
    ]
    for c in results["cells"]:
        if "req_per_s" not in c:
            lines.append(
                f"  {c['conns']:>5} {fmt_size(c['size']):>7}  {c['stack']:<9}   FAILED: {c.get('error', '?')}"
            )
            continue
        aio = _cell(results, c["conns"], c["size"], "asyncio")
        uv = _cell(results, c["conns"], c["size"], "uvloop")
        r_aio = (
            c["req_per_s"] / aio["req_per_s"]
            if aio and aio["req_per_s"] and c["stack"] != "asyncio"
            else None
        )
        r_uv = c["req_per_s"] / uv["req_per_s"] if uv and uv["req_per_s"] and c["stack"] != "uvloop" else None
        share = 100.0 * c["mb_per_s"] / loop_mb if c["size"] >= MIB and loop_mb else None
        lines.append(
            f"  {c['conns']:>5} {fmt_size(c['size']):>7}  {c['stack']:<9}"
            f"{c['req_per_s']:>11.0f}{c['mb_per_s']:>10.1f}"
            f"{_f(c.get('server_cpu_pct'), '9.0f')}{_f(cpu_per_req(c), '11.1f')}"
            f"{_f(r_aio, '10.2f')}{_f(r_uv, '9.2f')}{_f(share, '9.1f')}" + ("%" if share is not None else "")
        )
    for name, err in results.get("errors", {}).items():
        lines.append(f"  {name}: not run: {err}")
    lines.append("  targets (issue evbuffer, item 6):")
    for t in results.get("targets", []):
        lines.append(f"    {t['target']:<50} {_f(t['value'], '7.3f')}  >= {t['limit']:<5} {t['verdict']}")
    extra = []
    for c in results["cells"]:
        if c["stack"] != "evbuffer":
            continue
        mine = cpu_per_req(c)
        for other in ("asyncio", "uvloop"):
            o = _cell(results, c["conns"], c["size"], other)
            theirs = cpu_per_req(o) if o else None
            if mine and theirs:
                extra.append(f"{c['conns']}x{fmt_size(c['size'])} vs {other} {theirs / mine:.2f}")
    if extra:
        lines.append(
            "  server CPU per request, other / evbuffer (> 1: evbuffer cheaper;"
            " less sensitive to a busy machine):"
        )
        for i in range(0, len(extra), 4):
            lines.append("    " + "; ".join(extra[i : i + 4]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# profiling


def profile(
    seconds: float, conns: int, size: int, pin: bool = True, top: int = 25, stack: str = "evbuffer"
) -> str:
    """Run one server (``stack``) under cProfile against one load; return the top functions by own time."""
    pin = pin and pinning_possible()
    scpu, ccpu = (SERVER_CPU, CLIENT_CPU) if pin else (None, None)
    exe = compile_client()
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = os.path.join(tmp, f"{stack}.prof")
        proc, port = start_server(dict(STACKS)[stack], scpu, profile=stats_file)
        try:
            res = run_client(exe, port, conns, size, seconds, 0.5, ccpu, proc.pid)
        finally:
            _stop(proc)
        out = io.StringIO()
        st = pstats.Stats(stats_file, stream=out)
        st.sort_stats("tottime").print_stats(top)
    head = (
        f"cProfile of the {stack} echo server: {conns} conns x {fmt_size(size)}, {seconds:g} s:"
        f" {res['req_per_s']:.0f} req/s under the profiler\n"
    )
    return head + out.getvalue()


# ---------------------------------------------------------------------------
# command line


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: run, print the table, optionally write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 10 conns x 1 KiB and 1 MiB, 1 s cells")
    ap.add_argument("--reps", type=int, default=0, help=f"samples per cell and stack (best; max {MAX_REPS})")
    ap.add_argument("--duration", type=float, default=None, help="measured seconds per cell and stack")
    ap.add_argument("--warmup", type=float, default=None, help="warm-up seconds per cell")
    ap.add_argument("--stacks", default=None, help="comma-separated subset of evbuffer,asyncio,uvloop")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to cores")
    ap.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one server instead")
    ap.add_argument("--profile-stack", default="evbuffer", choices=[n for n, _ in STACKS])
    ap.add_argument("--profile-seconds", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=10, help="connections for --profile")
    ap.add_argument("--size", type=int, default=KIB, help="message bytes for --profile")
    ns = ap.parse_args(argv)
    if ns.profile:
        print(profile(ns.profile_seconds, ns.conns, ns.size, pin=not ns.no_pin, stack=ns.profile_stack))
        return 0

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    res = run(
        ns.quick,
        ns.reps,
        stacks=ns.stacks.split(",") if ns.stacks else None,
        duration=ns.duration,
        warmup=ns.warmup,
        pin=not ns.no_pin,
        log=log,
    )
    print(format_table(res))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"echo": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
