"""Fixtures for the foundation tests: machine facts that do not depend on this machine."""

import pytest

from aiida_autopipe.core.config.expand import Environment, PseudoFamilyFacts


@pytest.fixture
def environment():
    """A two-core machine, running as root, with pw.x and a family covering a few elements."""
    family = PseudoFamilyFacts(
        label="test/PBE",
        source="test family",
        reason="made up for the tests",
        cutoffs_ry={
            "Fe": (90.0, 360.0),
            "Pt": (42.0, 168.0),
            "Si": (36.0, 144.0),
            "Mg": (42.0, 168.0),
            "O": (42.0, 168.0),
            "Cu": (46.0, 184.0),
            "Au": (38.0, 152.0),
        },
    )
    return Environment(physical_cores=2, is_root=True, pw_executable="/usr/bin/pw.x", pseudo_family=family)
