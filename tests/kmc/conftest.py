"""Fixtures for the kMC CalcJob tests: the installed `autopipe-kmc` console script as a Code."""

import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture
def kmc_code(aiida_code_installed):
    """The installed `autopipe-kmc` console script as an InstalledCode."""
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.kmc", filepath_executable=str(BIN / "autopipe-kmc")
    )
