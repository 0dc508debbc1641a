"""Sphinx configuration for the book (``nox -s docs``: HTML and the doctest builder, -W)."""

from __future__ import annotations

import pathlib
import sys

project = "evcore and friends: libevent 2.0 for Python"
author = "the evcore authors"
copyright = "2026, the evcore authors"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
]

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Docstring examples are run by pytest --doctest-modules, in their module's namespace. The
# doctest builder runs the examples written in these pages, in ``.. doctest::`` and
# ``.. testcode::`` blocks only (plain ">>>" blocks pulled in by autodoc would run without
# their module's names).
doctest_test_doctest_blocks = ""
doctest_global_setup = "import evcore"

# Python's inventory: Debian's python3.X-doc package ships one, so the book builds with no
# network. Without it the links to the standard library are left out (no warning).
_local_inventories = [
    pathlib.Path(f"/usr/share/doc/python3.{sys.version_info.minor}/html/objects.inv"),
    pathlib.Path(f"/usr/share/doc/python3.{sys.version_info.minor}-doc/html/objects.inv"),
]
_local = next((str(p) for p in _local_inventories if p.exists()), None)
intersphinx_mapping = {"python": ("https://docs.python.org/3", _local)} if _local else {}
intersphinx_timeout = 5
