"""Sphinx configuration of rlrep's documentation: guides from the README's sections (one source
of truth), the API reference from the docstrings. Built with warnings as errors by CI:
``python -m sphinx -W -b html docs docs/_build``."""

project = "rlrep"
author = "rlrep developers"
extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The guides include README sections, which start at ## (the README's own level).
suppress_warnings = ["myst.header"]
html_theme = "alabaster"


def setup(app) -> None:
    """Draw the figures (docs/figures.py) from committed files before the build reads them."""
    import sys
    from pathlib import Path

    docs = Path(__file__).resolve().parent
    sys.path.insert(0, str(docs))
    from figures import draw_all

    draw_all(docs / "_generated")
