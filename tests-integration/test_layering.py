"""DESIGN.md's layering table holds: import-linter's contracts (root pyproject.toml) pass."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Every import package of DESIGN.md's "Packages and layering" table.
IMPORT_NAMES = {
    "evcore",
    "evbackends_unix",
    "evbackends_iocp",
    "evbuffer",
    "evbufferevent_ssl",
    "evextras",
    "evcompat",
    "event",
}


def _importlinter_config() -> dict[str, object]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        config: dict[str, object] = tomllib.load(f)["tool"]["importlinter"]
    return config


def test_every_package_has_a_row_contract() -> None:
    config = _importlinter_config()
    assert set(config["root_packages"]) == IMPORT_NAMES  # type: ignore[call-overload]
    forbidden = [c for c in config["contracts"] if c["type"] == "forbidden"]  # type: ignore[attr-defined]
    covered = {m for c in forbidden for m in c["source_modules"]}
    assert covered == IMPORT_NAMES
    # evcore is the root of the graph: it may import none of its siblings.
    (evcore_row,) = [c for c in forbidden if c["source_modules"] == ["evcore"]]
    assert IMPORT_NAMES - {"evcore"} <= set(evcore_row["forbidden_modules"])


def _lint_imports() -> str | None:
    beside = pathlib.Path(sys.executable).with_name("lint-imports")
    return str(beside) if beside.exists() else shutil.which("lint-imports")


def test_import_contracts_hold() -> None:
    exe = _lint_imports()
    if exe is None:
        pytest.skip("import-linter is not installed in this environment")
    proc = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout, proc.stdout
