"""The per-module coverage gate: every module needs >= 90% line AND >= 90% branch coverage.

Reads the report written by ``coverage json`` (``coverage.json`` by default), prints one row per
module, and exits 1 listing every module under either threshold (2 when the report is missing or
holds no files). A module with no statements passes on lines; a module with no branches passes on
branches. Branch coverage is ``covered_branches / num_branches``, coverage's own numbers, not its
combined "percent covered".

Usage::

    python tools/coverage_gate.py [coverage.json] [--min-lines 90] [--min-branches 90]

>>> summary = {"num_statements": 10, "covered_lines": 9, "num_branches": 4, "covered_branches": 3}
>>> row = Row.from_summary("pkg/src/evcore/flags.py", summary)
>>> row.module, row.line_pct, row.branch_pct
('evcore.flags', 90.0, 75.0)
>>> row.failures(90.0, 90.0)
['branches 75.0% < 90%']
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def module_name(path: str) -> str:
    """The dotted module name of a source path: the part after the last ``src`` directory.

    >>> module_name("packages/evcore/src/evcore/__init__.py")
    'evcore'
    >>> module_name("packages/evbuffer/src/evbuffer/bufferevent/pair.py")
    'evbuffer.bufferevent.pair'
    >>> module_name("elsewhere/thing.py")
    'elsewhere.thing'
    """
    parts = list(pathlib.PurePath(path.replace("\\", "/")).parts)
    if "src" in parts:
        parts = parts[len(parts) - parts[::-1].index("src") :]
    if parts and parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _pct(covered: int, total: int) -> float:
    """Percentage, 100.0 when there is nothing to cover.

    >>> _pct(0, 0), _pct(1, 4)
    (100.0, 25.0)
    """
    return 100.0 if total == 0 else 100.0 * covered / total


@dataclasses.dataclass(frozen=True)
class Row:
    """One module's numbers, as coverage's JSON report gives them.

    >>> Row("m", "m.py", 0, 0, 0, 0).line_pct
    100.0
    """

    module: str
    path: str
    statements: int
    covered_lines: int
    branches: int
    covered_branches: int

    @classmethod
    def from_summary(cls, path: str, summary: Mapping[str, Any]) -> Row:
        """Build a row from one file's ``summary`` object of ``coverage json``."""
        return cls(
            module=module_name(path),
            path=path,
            statements=int(summary.get("num_statements", 0)),
            covered_lines=int(summary.get("covered_lines", 0)),
            branches=int(summary.get("num_branches", 0)),
            covered_branches=int(summary.get("covered_branches", 0)),
        )

    @property
    def line_pct(self) -> float:
        """Line coverage in percent."""
        return _pct(self.covered_lines, self.statements)

    @property
    def branch_pct(self) -> float:
        """Branch coverage in percent (100 for a module without branches)."""
        return _pct(self.covered_branches, self.branches)

    def failures(self, min_lines: float, min_branches: float) -> list[str]:
        """What this module misses, empty when it passes.

        >>> Row("m", "m.py", 10, 5, 0, 0).failures(90, 90)
        ['lines 50.0% < 90%']
        """
        out = []
        if self.line_pct < min_lines:
            out.append(f"lines {self.line_pct:.1f}% < {min_lines:g}%")
        if self.branch_pct < min_branches:
            out.append(f"branches {self.branch_pct:.1f}% < {min_branches:g}%")
        return out


def load_rows(report: Mapping[str, Any]) -> list[Row]:
    """All modules of a parsed ``coverage json`` report, sorted by module name.

    >>> load_rows({"files": {"src/a.py": {"summary": {"num_statements": 1, "covered_lines": 1}}}})
    [Row(module='a', path='src/a.py', statements=1, covered_lines=1, branches=0, covered_branches=0)]
    """
    files = report.get("files", {})
    return sorted(
        (Row.from_summary(p, f.get("summary", {})) for p, f in files.items()), key=lambda r: r.module
    )


def render(rows: Sequence[Row], min_lines: float, min_branches: float) -> str:
    """The per-module table, failing rows marked ``FAIL``.

    >>> print(render([Row("evcore.flags", "f.py", 10, 10, 2, 1)], 90, 90))  # doctest: +NORMALIZE_WHITESPACE
    module        stmts  miss  lines  branches  part  branch%
    evcore.flags     10     0 100.0%         2     1    50.0%  FAIL
    """
    width = max([len("module"), *(len(r.module) for r in rows)])
    lines = [f"{'module':<{width}}  stmts  miss  lines  branches  part  branch%"]
    for r in rows:
        mark = "  FAIL" if r.failures(min_lines, min_branches) else ""
        lines.append(
            f"{r.module:<{width}} {r.statements:6d} {r.statements - r.covered_lines:5d} {r.line_pct:5.1f}%"
            f" {r.branches:9d} {r.branches - r.covered_branches:5d} {r.branch_pct:7.1f}%{mark}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gate; return the process exit status (0 pass, 1 some module fails, 2 no data)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", nargs="?", default="coverage.json", help="coverage json report")
    parser.add_argument("--min-lines", type=float, default=90.0, help="line coverage floor, percent")
    parser.add_argument("--min-branches", type=float, default=90.0, help="branch coverage floor, percent")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.report)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"coverage gate: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    rows = load_rows(report)
    if not rows:
        print(f"coverage gate: {path} lists no measured files", file=sys.stderr)
        return 2
    print(render(rows, args.min_lines, args.min_branches))
    failing = [(r, r.failures(args.min_lines, args.min_branches)) for r in rows]
    failing = [(r, f) for r, f in failing if f]
    if failing:
        print(
            f"\ncoverage gate FAILED: {len(failing)} of {len(rows)} modules under the floor", file=sys.stderr
        )
        for r, f in failing:
            print(f"  {r.module} ({r.path}): {', '.join(f)}", file=sys.stderr)
        return 1
    print(
        f"\ncoverage gate passed: {len(rows)} modules, each >= {args.min_lines:g}% lines"
        f" and >= {args.min_branches:g}% branches"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
