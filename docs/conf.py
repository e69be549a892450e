"""Sphinx configuration for the aiida-autopipe documentation (built with warnings as errors in CI)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("AIIDA_PATH", str(Path(__file__).parent / "_build" / "aiida"))
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "aiida-autopipe"
author = "aiida-autopipe developers"
copyright = "2026, aiida-autopipe developers"
extensions = ["myst_parser", "config_reference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "developing.md"]
html_theme = "furo"
html_title = "aiida-autopipe"
myst_heading_anchors = 3
# Keep "--slurm" and quotes as written: they are commands to copy.
smartquotes = False
