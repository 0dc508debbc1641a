"""Check that each distribution installs on its own, with only its siblings, and imports.

For every ``packages/NAME`` (or the names given on the command line):

1. build every distribution's wheel once (``pip wheel --no-deps``; no build isolation when
   hatchling is importable, which saves a build environment per package);
2. create a fresh virtualenv without pip (the running interpreter's pip drives it through
   ``pip --python``, so a venv costs a tenth of a second);
3. install the sibling wheels it depends on, transitively, read from the ``pyproject.toml`` files,
   with ``--no-deps`` (a sibling is never resolved from a package index), then the package's own
   wheel, whose third-party dependencies pip resolves as usual;
4. run ``pip check``, import every import package of the distribution, compare its
   ``__version__`` with the installed metadata, and run a small smoke test (evcore runs a loop;
   evbackends-unix must register its backends through entry points).

Checks every distribution, then exits non-zero listing those that failed. Usage::

    python tools/standalone_check.py [NAME ...]

>>> sorted(sibling_closure("evextras", {"evextras": {"evbuffer"}, "evbuffer": {"evcore"}, "evcore": set()}))
['evbuffer', 'evcore']
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"

#: Extra code run in the fresh venv after the import check, per distribution.
SMOKE: dict[str, str] = {
    "evcore": (
        "import evcore\n"
        "assert 'select' in evcore.supported_methods(), evcore.supported_methods()\n"
        "with evcore.EventBase() as base:\n"
        "    fired = []\n"
        "    evcore.Event.timer(base, lambda fd, what, arg: fired.append(what)).add(0)\n"
        "    base.loop()\n"
        "    assert fired, 'a zero timeout did not fire'\n"
        "    print('  evcore loop ran on', base.method)\n"
    ),
    "evbackends-unix": (
        "import evcore\n"
        "methods = evcore.supported_methods()\n"
        "assert 'poll' in methods, methods\n"
        "print('  backends:', methods)\n"
    ),
}


def _dep_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement string.

    >>> _dep_name("evcore>=0.1,<0.2"), _dep_name("pyOpenSSL >= 24"), _dep_name("a_b[x]; python_version>'3'")
    ('evcore', 'pyopenssl', 'a-b')
    """
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


@dataclasses.dataclass(frozen=True)
class Project:
    """One distribution under ``packages/``."""

    name: str
    dir: pathlib.Path
    deps: tuple[str, ...]
    imports: tuple[str, ...]


def read_projects() -> dict[str, Project]:
    """Every distribution under ``packages/``, from its ``pyproject.toml``."""
    projects: dict[str, Project] = {}
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data["project"]
        wheel = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
        imports = [pathlib.PurePath(p).name for p in wheel.get("packages", [])] or [
            project["name"].replace("-", "_")
        ]
        projects[project["name"]] = Project(
            name=project["name"],
            dir=pyproject.parent,
            deps=tuple(_dep_name(d) for d in project.get("dependencies", [])),
            imports=tuple(imports),
        )
    return projects


def sibling_closure(name: str, graph: Mapping[str, set[str]]) -> set[str]:
    """The siblings ``name`` needs, directly or through other siblings (``name`` excluded)."""
    seen: set[str] = set()
    todo = list(graph[name])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(graph.get(dep, ()))
    seen.discard(name)
    return seen


def _run(cmd: Sequence[object], cwd: pathlib.Path | None = None) -> None:
    shown = ["<smoke test>" if i and cmd[i - 1] == "-c" else str(c) for i, c in enumerate(cmd)]
    print("  $", " ".join(shown), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=cwd)


def _pip(*args: object) -> list[object]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def build_wheels(projects: Mapping[str, Project], outdir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Build every distribution's wheel into ``outdir``; map distribution name to wheel file."""
    try:
        import hatchling  # noqa: F401

        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    _run(_pip("wheel", "--quiet", "--no-deps", *isolation, "-w", outdir, *(p.dir for p in projects.values())))
    wheels = {}
    for name in projects:
        found = sorted(outdir.glob(f"{name.replace('-', '_')}-*.whl"))
        if not found:
            raise SystemExit(f"standalone: no wheel built for {name}")
        wheels[name] = found[-1]
    return wheels


def check_one(
    name: str, projects: Mapping[str, Project], wheels: Mapping[str, pathlib.Path], workdir: pathlib.Path
) -> None:
    """Install ``name`` with its siblings into a fresh venv and smoke-test it."""
    graph = {n: {d for d in p.deps if d in projects} for n, p in projects.items()}
    siblings = sorted(sibling_closure(name, graph))
    venv_dir = workdir / name
    shutil.rmtree(venv_dir, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", venv_dir])
    python = venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    target = ["--python", str(python)]
    if siblings:
        _run(_pip(*target, "install", "--quiet", "--no-deps", *(wheels[s] for s in siblings)))
    _run(_pip(*target, "install", "--quiet", wheels[name]))
    _run(_pip(*target, "check"))
    imports = list(projects[name].imports)
    code = (
        "import importlib, importlib.metadata\n"
        f"for mod in {imports!r}:\n"
        "    m = importlib.import_module(mod)\n"
        f"    want = importlib.metadata.version({name!r})\n"
        "    assert m.__version__ == want, (mod, m.__version__, want)\n"
        f"    print('  ', mod, m.__version__, 'from', m.__file__)\n"
    ) + SMOKE.get(name, "")
    # Run from an empty directory so the checkout's src trees cannot shadow the installed wheel.
    _run([python, "-c", code], cwd=workdir)


def main(argv: Sequence[str] | None = None) -> int:
    """Check the named distributions (all by default); return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="distribution names (default: every packages/*)")
    parser.add_argument("--workdir", type=pathlib.Path, default=None, help="where the venvs go")
    args = parser.parse_args(argv)
    projects = read_projects()
    names = args.names or list(projects)
    unknown = sorted(set(names) - set(projects))
    if unknown:
        parser.error(f"unknown distributions: {', '.join(unknown)}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="standalone-") as tmp:
        workdir = args.workdir or pathlib.Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        wheels = build_wheels(projects, workdir / "wheels")
        failed = []
        for name in names:
            print(f"standalone: {name}", flush=True)
            try:
                check_one(name, projects, wheels, workdir)
            except subprocess.CalledProcessError as exc:
                print(
                    f"standalone: {name} FAILED (exit status {exc.returncode})", file=sys.stderr, flush=True
                )
                failed.append(name)
    if failed:
        print(f"standalone: FAILED for {', '.join(failed)}", file=sys.stderr)
        return 1
    print(
        f"standalone: {len(names)} distributions install and import on their own "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
