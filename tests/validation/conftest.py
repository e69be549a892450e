"""Fixtures for the validation tests: the OTF tests' tiny delta-learned Si ACE potential (fitted once).

The fixture is taken from tests/otf/conftest.py rather than copied, so both folders test the same potential;
a `conftest` module cannot be imported by name across folders, hence the import by path (with the OTF test
folder on sys.path for its helper module, as pytest puts it there when it collects that folder).
"""

import importlib.util
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
OTF_TESTS = Path(__file__).parents[1] / "otf"
sys.path.insert(0, str(OTF_TESTS))
_spec = importlib.util.spec_from_file_location("otf_conftest", OTF_TESTS / "conftest.py")
_otf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_otf)

ace_potential = _otf.ace_potential


@pytest.fixture
def validate_code(aiida_code_installed):
    """The `autopipe-validate` console script as an InstalledCode (needs pyproject's entry points)."""
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.validation", filepath_executable=str(BIN / "autopipe-validate")
    )
