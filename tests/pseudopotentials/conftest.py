"""Fixtures for the pseudopotential tests: the offline family (fetched once per machine), Debian's files."""

from pathlib import Path

import pytest

from aiida_autopipe.core.pseudopotentials import PSEUDODOJO_PBE_SR, provision_offline_family

DEBIAN_PSEUDO_DIR = Path("/usr/share/espresso/pseudo")


@pytest.fixture(scope="session")
def offline_family():
    """The scalar-relativistic PseudoDojo family in the cache: network needed only the first time."""
    return provision_offline_family(PSEUDODOJO_PBE_SR)


@pytest.fixture
def debian_pseudo():
    """Path to one of the UPF files of Debian's quantum-espresso-data (installed by .ci/run)."""
    if not DEBIAN_PSEUDO_DIR.is_dir():
        pytest.fail("Debian's UPF files are missing: apt-get install quantum-espresso-data")
    return lambda name: DEBIAN_PSEUDO_DIR / name
