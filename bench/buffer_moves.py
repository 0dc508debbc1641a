"""evbuffer's buffer benchmarks: moving whole buffers between ``Buffer``s, draining, line parsing.

Usage::

    python bench/buffer_moves.py [--quick] [--reps R] [--json FILE]

Facts and theory of operation
-----------------------------
* **Moves.**  A source ``Buffer`` of 1, 4, 16 or 64 MiB is built from 256 KiB pieces (the
  size ``read_from`` grows to under load, so 4 to 256 chunks; each piece is the same immutable
  ``bytes`` object, which evbuffer keeps by reference, so 64 MiB costs 256 KiB of memory).
  The data then goes back and forth between two buffers, ``a -> b`` then ``b -> a``, and the
  time per move is the total over the number of moves; the destination is empty at every
  move, as when a read callback hands its whole input on.  Two ways: ``add_buffer(src)``
  (``dst.add_buffer(src)``) and ``remove_buffer(dst, len(src))`` (all of it, which evbuffer
  turns into the same splice).  The target (issue "evbuffer", item 6): moving 64 MiB costs the
  same as moving 1 MiB, so the ratio 64 MiB / 1 MiB is ~1.  For contrast a third row splits
  the buffer in half and joins it again (``remove_buffer(dst, len // 2)`` then
  ``dst.add_buffer(src)``): a partial move walks the chunks it moves, and ``add_buffer`` into
  a non-empty buffer extends the longer chain by the shorter one, so that row grows with the
  number of chunks (as the design says: "``remove_buffer`` costs the chunks it moves").
* **drain**: a 64 MiB buffer (256 KiB chunks) drained in 16 KiB steps, and in one call;
  GB/s of bytes discarded.  Building the buffer is outside the timed part.
* **readln**: 8 MiB of 64-byte lines (CRLF) in 256 KiB chunks (so lines straddle chunk
  ends), read with ``readln(EOL.CRLF)`` and with ``readln(EOL.LF)`` until none is left;
  lines per second and MB/s.
* Each figure is the best of ``reps`` repetitions (noise only adds time); ``time.perf_counter``
  wall time, GC left on, ``gc.collect()`` before each timed run.

>>> r = bench_move("add_buffer", MIB, moves=10, reps=1); r["us_per_move"] > 0
True
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

KIB, MIB = 1024, 1 << 20
PIECE = 256 * KIB
SIZES = [1 * MIB, 4 * MIB, 16 * MIB, 64 * MIB]
#: Each value is (moves per repetition) for full / quick.
MOVES = {"full": 20_000, "quick": 2_000}
KINDS = ["add_buffer", "remove_buffer", "remove_buffer_half"]
#: Target: 64 MiB / 1 MiB at most this (for add_buffer and whole-buffer remove_buffer).
FLAT_LIMIT = 1.25


def _evbuffer() -> Any:
    import evbuffer

    return evbuffer


def make_buffer(size: int, piece: int = PIECE) -> Any:
    """A ``Buffer`` of ``size`` bytes in ``piece``-byte chunks (one shared ``bytes`` object).

    >>> b = make_buffer(3 * PIECE); len(b) == 3 * PIECE
    True
    """
    ev = _evbuffer()
    buf = ev.Buffer()
    block = b"m" * piece
    full, rest = divmod(size, piece)
    for _ in range(full):
        buf.add(block)
    if rest:
        buf.add(block[:rest])
    return buf


def _chunks(buf: Any) -> int:
    return len(getattr(buf, "_chunks", ()))


def bench_move(kind: str, size: int, moves: int, reps: int) -> dict[str, Any]:
    """µs per move of ``size`` bytes by ``kind`` (``add_buffer``, ``remove_buffer``, ``remove_buffer_half``).

    >>> bench_move("remove_buffer", MIB, moves=4, reps=1)["size"] == MIB
    True
    """
    ev = _evbuffer()
    a = make_buffer(size)
    b = ev.Buffer()
    nchunks = _chunks(a)
    samples: list[float] = []
    half = size // 2
    for _ in range(reps):
        gc.collect()
        if kind == "add_buffer":
            t0 = time.perf_counter()
            for _ in range(moves // 2):
                b.add_buffer(a)
                a.add_buffer(b)
            t1 = time.perf_counter()
        elif kind == "remove_buffer":
            t0 = time.perf_counter()
            for _ in range(moves // 2):
                a.remove_buffer(b, size)
                b.remove_buffer(a, size)
            t1 = time.perf_counter()
        else:  # split in half and rejoin: both steps walk half the chunks
            t0 = time.perf_counter()
            for _ in range(moves):
                a.remove_buffer(b, half)  # b = first half (walks its chunks), a = second half
                b.add_buffer(a)  # b = whole again (extends by the shorter chain), a empty
                a, b = b, a
            t1 = time.perf_counter()
            samples.append((t1 - t0) / moves * 1e6)
            if len(a) != size or len(b) != 0:
                raise AssertionError(f"{kind}: lost bytes ({len(a)} + {len(b)} != {size})")
            continue
        samples.append((t1 - t0) / (2 * (moves // 2)) * 1e6)
        if len(a) != size or len(b) != 0:
            raise AssertionError(f"{kind}: lost bytes ({len(a)} + {len(b)} != {size})")
    if len(a) != size:
        raise AssertionError(f"{kind}: lost bytes ({len(a)} != {size})")
    return {
        "kind": kind,
        "size": size,
        "chunks": nchunks,
        "moves": moves,
        "us_per_move": min(samples),
        "median_us": statistics.median(samples),
        "samples_us": samples,
    }


def bench_drain(size: int, step: int, reps: int) -> dict[str, Any]:
    """GB/s of ``drain(step)`` calls over a ``size``-byte buffer (``step`` >= size: one call).

    >>> bench_drain(MIB, 16 * KIB, 1)["gb_per_s"] > 0
    True
    """
    samples: list[float] = []
    for _ in range(reps):
        buf = make_buffer(size)
        gc.collect()
        drain = buf.drain
        t0 = time.perf_counter()
        if step >= size:
            drain(size)
        else:
            for _ in range(size // step):
                drain(step)
        t1 = time.perf_counter()
        if len(buf):
            raise AssertionError("drain left bytes behind")
        samples.append(t1 - t0)
    best = min(samples)
    return {
        "kind": "drain",
        "size": size,
        "step": step,
        "calls": max(1, size // step),
        "seconds": best,
        "gb_per_s": size / best / 1e9,
        "us_per_call": best / max(1, size // step) * 1e6,
    }


def make_lines(total: int, line: int = 64, eol: bytes = b"\r\n") -> tuple[bytes, int]:
    """``total`` bytes (rounded down to whole lines) of ``line``-byte lines ending in ``eol``.

    >>> data, n = make_lines(256, 64); n, data[:3], data[62:64]
    (4, b'lin', b'\\r\\n')
    """
    body = line - len(eol)
    one = (b"line " + b"x" * body)[:body] + eol
    n = total // line
    return one * n, n


def bench_readln(total: int, style: str, reps: int) -> dict[str, Any]:
    """Lines/s and MB/s of ``readln(EOL.<style>)`` over ``total`` bytes of 64-byte lines.

    >>> bench_readln(64 * KIB, "CRLF", 1)["lines"]
    1024
    """
    ev = _evbuffer()
    eol = getattr(ev.EOL, style)
    data, nlines = make_lines(total)
    samples: list[float] = []
    for _ in range(reps):
        buf = ev.Buffer()
        for i in range(0, len(data), PIECE):
            buf.add(data[i : i + PIECE])
        gc.collect()
        readln = buf.readln
        got = 0
        t0 = time.perf_counter()
        while readln(eol) is not None:
            got += 1
        t1 = time.perf_counter()
        if got != nlines:
            raise AssertionError(f"readln found {got} lines, expected {nlines}")
        samples.append(t1 - t0)
    best = min(samples)
    return {
        "kind": f"readln {style}",
        "size": len(data),
        "lines": nlines,
        "seconds": best,
        "lines_per_s": nlines / best,
        "mb_per_s": len(data) / best / 1e6,
        "us_per_line": best / nlines * 1e6,
    }


def run(quick: bool, reps: int) -> dict[str, Any]:
    """Run every buffer benchmark; return JSON-ready results (with target verdicts)."""
    reps = max(1, reps)
    moves = MOVES["quick" if quick else "full"]
    sizes = SIZES
    out: dict[str, Any] = {"params": {"sizes": sizes, "piece": PIECE, "moves": moves, "reps": reps}}
    out["moves"] = [
        bench_move(k, s, moves if k != "remove_buffer_half" else moves // 10, reps)
        for k in KINDS
        for s in sizes
    ]
    drain_size = 16 * MIB if quick else 64 * MIB
    out["drain"] = [bench_drain(drain_size, 16 * KIB, reps), bench_drain(drain_size, drain_size, reps)]
    line_total = 1 * MIB if quick else 8 * MIB
    out["readln"] = [bench_readln(line_total, "CRLF", reps), bench_readln(line_total, "LF", reps)]
    out["targets"] = targets(out)
    return out


def _move(res: dict[str, Any], kind: str, size: int) -> dict[str, Any] | None:
    return next((m for m in res["moves"] if m["kind"] == kind and m["size"] == size), None)


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Target verdicts: 64 MiB / 1 MiB move cost <= ``FLAT_LIMIT`` for whole-buffer moves."""
    out = []
    lo, hi = min(res["params"]["sizes"]), max(res["params"]["sizes"])
    for kind in ("add_buffer", "remove_buffer"):
        a, b = _move(res, kind, hi), _move(res, kind, lo)
        ratio = a["us_per_move"] / b["us_per_move"] if a and b and b["us_per_move"] else None
        verdict = "n/a" if ratio is None else ("PASS" if ratio <= FLAT_LIMIT else "MISS")
        out.append(
            {
                "target": f"{kind}: moving {hi // MIB} MiB costs the same as {lo // MIB} MiB",
                "value": ratio,
                "limit": FLAT_LIMIT,
                "verdict": verdict,
            }
        )
    return out


def format_table(res: dict[str, Any]) -> str:
    """The moves table, the drain and readln rows and the target verdicts as text."""
    p = res["params"]
    sizes = p["sizes"]
    lines = [
        f"buffer moves: µs per move between two Buffers ({p['piece'] // KIB} KiB chunks),"
        f" best of {p['reps']}",
        f"  {'operation':<28}" + "".join(f"{str(s // MIB) + ' MiB':>10}" for s in sizes) + f"{'64/1':>8}",
    ]
    for kind in KINDS:
        row = [_move(res, kind, s) for s in sizes]
        cells = "".join(f"{m['us_per_move']:>10.3f}" if m else f"{'-':>10}" for m in row)
        ratio = row[-1]["us_per_move"] / row[0]["us_per_move"] if row[0] and row[-1] else None
        label = {
            "remove_buffer": "remove_buffer(dst, all)",
            "remove_buffer_half": "split half + rejoin *",
        }.get(kind, "add_buffer(src)")
        lines.append(f"  {label:<28}{cells}{ratio:>8.2f}" if ratio is not None else f"  {label:<28}{cells}")
    lines.append(f"  {'chunks in the buffer':<28}" + "".join(f"{_chunks_of(res, s):>10}" for s in sizes))
    lines.append(
        "  * remove_buffer(dst, len // 2) + dst.add_buffer(src): walks the chunks, so it grows with"
        " the size by design; contrast only"
    )
    for d in res["drain"]:
        how = f"drain {d['step'] // KIB} KiB steps" if d["calls"] > 1 else "drain all (one call)"
        lines.append(
            f"  {how:<28}{d['size'] // MIB:>6} MiB {d['gb_per_s']:>9.2f} GB/s"
            f" {d['us_per_call']:>9.3f} µs/call"
        )
    for r in res["readln"]:
        lines.append(
            f"  {r['kind'] + ' (64 B lines)':<28}{r['size'] // MIB:>6} MiB {r['mb_per_s']:>9.1f} MB/s"
            f" {r['lines_per_s'] / 1e6:>7.3f} M lines/s ({r['us_per_line']:.3f} µs/line)"
        )
    lines.append("  targets (issue evbuffer, item 6):")
    for t in res["targets"]:
        v = f"{t['value']:.3f}" if t["value"] is not None else "-"
        lines.append(f"    {t['target']:<56} {v:>7}  <= {t['limit']}  {t['verdict']}")
    return "\n".join(lines)


def _chunks_of(res: dict[str, Any], size: int) -> str:
    m = _move(res, "add_buffer", size)
    return str(m["chunks"]) if m else "-"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: run, print the table, optionally write JSON."""
    ap = argparse.ArgumentParser(description="evbuffer buffer moves, drain and readln benchmarks")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", default=None, metavar="FILE")
    ns = ap.parse_args(argv)
    res = run(ns.quick, ns.reps)
    print(format_table(res))
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"buffer_moves": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
