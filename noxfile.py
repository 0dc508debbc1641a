"""nox sessions for the monorepo.

``nox`` with no arguments runs the default sessions: ``lint``, ``typecheck`` and ``tests`` (the
whole test suite, forked, under coverage, the per-module coverage gate, then the standalone
install check of every distribution). That is the README's test command and the one ``.ci/run``
calls. ``nox -l`` lists every session.

Every session uses the interpreter that runs nox (``python3``: venv sessions, no interpreter
hunt) and installs through ``constraints.txt``. Sessions that need the packages install all seven
editable in one pip call. ``nox -s tests -- PYTEST-ARGS`` runs pytest alone on what you name,
with no coverage gate (``nox -s tests -- packages/evcore/tests -k timer``).
"""

from __future__ import annotations

import os
import pathlib
import shutil

import nox
import nox.command

ROOT = pathlib.Path(__file__).resolve().parent

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "venv"

CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))

#: The distributions under packages/, in dependency order.
PACKAGES = (
    "evcore",
    "evbackends-unix",
    "evbuffer",
    "evbufferevent-ssl",
    "evbackends-iocp",
    "evextras",
    "evcompat",
)

#: The import packages, as import-linter and mypy know them.
IMPORT_NAMES = (
    "evcore",
    "evbackends_unix",
    "evbuffer",
    "evbufferevent_ssl",
    "evbackends_iocp",
    "evextras",
    "evcompat",
    "event",
)

#: What the test run needs besides the packages themselves (their own third-party dependencies,
#: pyOpenSSL, httptools, dnspython, cffi..., come with them). Add test-only tools here.
TEST_DEPS = (
    "pytest",
    "pytest-forked",
    "pytest-xdist",
    "pytest-timeout",
    "hypothesis",
    "coverage",
    "trustme",
    "import-linter",  # tests-integration/test_layering.py runs lint-imports
)

#: pytest's workers: the CI machine has two cores.
WORKERS = "2"


def _package_dirs() -> list[str]:
    """Every distribution's directory; a missing one fails the install loudly, never silently."""
    return [f"packages/{name}" for name in PACKAGES]


def install_packages(session: nox.Session, *extra: str) -> None:
    """Install every package editable, plus ``extra``, in one pip call through the constraints."""
    # hatchling first, so the editable builds need no isolated build environment each.
    session.install(*CONSTRAINTS, "hatchling", "editables")
    editables = [arg for d in _package_dirs() for arg in ("-e", d)]
    session.install(*CONSTRAINTS, "--no-build-isolation", *editables, *extra)


def _test_paths() -> list[str]:
    """Doctests of every src tree, every package's tests, and the cross-package tests."""
    paths = []
    for d in _package_dirs():
        for sub in ("src", "tests"):
            if (ROOT / d / sub).is_dir():
                paths.append(f"{d}/{sub}")
    paths.append("tests-integration")
    return paths


def _pytest_args() -> list[str]:
    return ["-n", WORKERS, "--forked", "--timeout", "120", "--doctest-modules", "-ra", "--durations=15"]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree, and import-linter's layering contracts (DESIGN.md's table)."""
    install_packages(session, "ruff", "import-linter")
    failed = []
    for cmd in (("ruff", "check", "."), ("lint-imports", "--no-cache")):
        try:
            session.run(*cmd)
        except nox.command.CommandFailed:
            failed.append(cmd[0])  # run the other checker too, then fail
    if failed:
        session.error(f"failed: {', '.join(failed)}")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over every package's src: --strict for evcore (pyproject overrides), plain for the rest."""
    # The conformance suites under src/*/testing import pytest (and may use hypothesis).
    install_packages(session, "mypy", "pytest", "hypothesis")
    session.run("mypy", *(arg for name in IMPORT_NAMES for arg in ("-p", name)))
    session.run("mypy", "--strict", "tools")


def _tests_with_coverage(session: nox.Session) -> None:
    install_packages(session, *TEST_DEPS, "hatchling")
    if session.posargs:
        session.run("python", "-m", "pytest", *session.posargs)
        return
    session.run("coverage", "erase")
    # Every step runs even when an earlier one failed, so one CI log tells everything; the
    # session fails at the end, naming what failed.
    failed = []
    try:
        session.run("coverage", "run", "-m", "pytest", *_pytest_args(), *_test_paths())
    except nox.command.CommandFailed:
        failed.append("pytest")
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "json", "--quiet")
    for name, cmd in (
        ("coverage gate", ("python", "tools/coverage_gate.py", "coverage.json")),
        ("standalone installs", ("python", "tools/standalone_check.py")),
    ):
        try:
            session.run(*cmd)
        except nox.command.CommandFailed:
            failed.append(name)
    if failed:
        session.error(f"failed: {', '.join(failed)}")


@nox.session
def tests(session: nox.Session) -> None:
    """Every test and doctest, forked, 2 workers, under coverage; the per-module gate; standalone.

    One venv, all seven packages editable; then every module must have >= 90% line and >= 90%
    branch coverage (tools/coverage_gate.py), and each distribution must install on its own
    (tools/standalone_check.py).
    """
    _tests_with_coverage(session)


@nox.session
def coverage(session: nox.Session) -> None:
    """The same run as ``tests`` (coverage and its per-module gate are part of it)."""
    _tests_with_coverage(session)


@nox.session
def integration(session: nox.Session) -> None:
    """Only tests-integration/, forked, no coverage gate."""
    install_packages(session, *TEST_DEPS)
    session.run(
        "python",
        "-m",
        "pytest",
        "-n",
        WORKERS,
        "--forked",
        "-ra",
        *(session.posargs or ["tests-integration"]),
    )


@nox.session
def standalone(session: nox.Session) -> None:
    """Each distribution alone in a fresh venv with its siblings: installs, imports, smoke test."""
    session.install(*CONSTRAINTS, "hatchling", "editables")
    session.run("python", "tools/standalone_check.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The Sphinx book, warnings as errors, and every example in it run by the doctest builder."""
    install_packages(session, "sphinx")
    out = ROOT / "docs" / "_build"
    shutil.rmtree(out, ignore_errors=True)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out / "html"))
    session.run("sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", str(out / "doctest"))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (bench/run.py): every package plus uvloop; arguments after -- go to run.py."""
    install_packages(session, "uvloop")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: evcore's hello-world server on evcore + evbackends-unix (Ctrl-C stops it)."""
    session.install(*CONSTRAINTS, "hatchling", "editables")
    session.install(
        *CONSTRAINTS, "--no-build-isolation", "-e", "packages/evcore", "-e", "packages/evbackends-unix"
    )
    session.run("python", "-m", "evcore.samples.hello", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


# Keep pip quiet about its own version in every session.
os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
