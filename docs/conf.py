"""Sphinx configuration of rlrep's documentation site.

Guides and tutorials are MyST Markdown; the tutorials (``docs/tutorials/``) and the pages with
figures are notebooks that myst-nb executes at every build, so what they show is what the code
does today. The API pages come from the docstrings. CI builds with warnings as errors, and a
failing cell fails the build: ``python -m sphinx -W -b html docs docs/_build/html``. The build
writes only into ``docs/_build``: the pages into ``html/``, and myst-nb the executed notebooks
beside it (``jupyter_execute/``, next to the output folder it is given); no cache, nothing in
the source tree.
"""

import os

project = "rlrep"
author = "rlrep developers"
copyright = "2026, rlrep developers"
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Every notebook page runs in full at every build: no cache (it would live beside the sources)
# and a failing cell fails the build. Tutorials are CPU-sized (each well under 2 minutes).
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = "myst"  # Markdown outputs of cells (tables) as MyST, not CommonMark
# The tutorials render DMC frames through EGL and run single-threaded (quick on 2 cores, and
# every number they print is the same on every build).
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The pages import docs/figures.py: no __pycache__ beside it (nothing written into the sources).
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

html_theme = "furo"
html_title = "rlrep"
html_theme_options = {
    "source_repository": "",
    "navigation_with_keys": True,
}
