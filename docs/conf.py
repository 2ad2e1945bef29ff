"""Sphinx configuration for graphc's manual.

The pages are MyST markdown. Tables that restate the code (the policy table, the language's
functions and operators, the CLI's help, the benchmark results) are written into ``_generated/``
when the build starts, by :mod:`generate` beside this file, so they cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import generate  # docs/generate.py, found through the line above

project = "graphc"
author = "the graphc authors"
copyright = "the graphc authors"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "_generated"]
html_theme = "alabaster"
html_title = "graphc"
smartquotes = False  # primes and quotes in formulas (relu'(0)) stay as written

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("builder-inited", lambda app: generate.write_all(HERE / "_generated"))
    return {"parallel_read_safe": True}
