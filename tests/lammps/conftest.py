"""Fixtures for the LAMMPS OTF tests: an ML-PACE LAMMPS if one is configured (the tiny fitted ACE potential is
the session's `ace_potential`, tests/conftest.py).

CI does not build LAMMPS (a build takes tens of minutes), so the tests that run it skip, naming what is
missing, unless `$AUTOPIPE_LAMMPS` or `mlip-pipe setup lammps`'s build record points at an ML-PACE `lmp`.
"""

import pytest


@pytest.fixture(scope="session")
def pace_lammps():
    """Path of an `lmp` with pair_style pace/extrapolation, fix pair and fix halt; skips without one."""
    from aiida_autopipe.engines.lammps import find_pace_lammps

    executable, reason = find_pace_lammps()
    if executable is None:
        pytest.skip(f"no ML-PACE LAMMPS configured: {reason}")
    return executable
