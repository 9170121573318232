"""Sphinx configuration of provision's documentation (MyST Markdown, as zero-to-jupyterhub and binderhub use).

The command-line reference is generated from the CLI itself (clireference.py walks the typer app), so it cannot
drift.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # clireference.py: the directive that writes the CLI reference

project = "provision"
author = "provision maintainers"
extensions = ["myst_parser", "clireference"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = "provision"
html_theme_options = {"navigation_with_keys": False}
