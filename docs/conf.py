"""Sphinx configuration: furo theme, MyST Markdown pages, API reference from docstrings."""

from __future__ import annotations

import sys
from importlib.metadata import version as _version
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "storage-dsn"
author = "the storage-dsn authors"
copyright = "2026, the storage-dsn authors"
release = _version("storage-dsn")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "dsnref",
    "mdlinks",
    "noleaks",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Show defaults as written (``environ=os.environ``), never by value: a value repr would
# publish the builder's environment (noleaks.py fails the build if one does).
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"storage-dsn {release}"
html_static_path: list[str] = []
# The docs are built offline (CI reaches PyPI and Debian only): no intersphinx.
