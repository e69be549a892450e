"""Fixtures for the OTF MD tests: the runner Code (the ACE potential is the session's, tests/conftest.py)."""

import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture
def otf_code(aiida_code_installed):
    """The installed `autopipe-otf-md` console script as an InstalledCode."""
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.otf_md", filepath_executable=str(BIN / "autopipe-otf-md")
    )
