"""Fixtures for the validation tests: the runner Code (the ACE potential is the session fixture)."""

import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture
def validate_code(aiida_code_installed):
    """The `autopipe-validate` console script as an InstalledCode (needs pyproject's entry points)."""
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.validation", filepath_executable=str(BIN / "autopipe-validate")
    )
