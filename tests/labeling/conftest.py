"""Fixtures for the labeling tests: a pw.x code on localhost and small pseudopotential families from Debian's
files.

The cutoffs are far below converged values on purpose: the tests check that labels are parsed, recovered and
routed correctly, not their physical accuracy, and must run in minutes on two shared cores.
"""

import shutil

import pytest
from labeling_helpers import FULLY_RELATIVISTIC_FILES, PSEUDO_DIR, PW_EXECUTABLE, SCALAR_FILES


def install_family(label, files, directory):
    """Install an aiida-pseudo family (UpfData, as PwCalculation needs) with 'normal' cutoffs in Ry."""
    from aiida.plugins import DataFactory, GroupFactory

    family_class = GroupFactory("pseudo.family.cutoffs")
    directory.mkdir()
    for filename, _, _ in files.values():
        shutil.copy(PSEUDO_DIR / filename, directory / filename)
    family = family_class.create_from_folder(directory, label, pseudo_type=DataFactory("pseudo.upf"))
    cutoffs = {element: {"cutoff_wfc": wfc, "cutoff_rho": rho} for element, (_, wfc, rho) in files.items()}
    family.set_cutoffs(cutoffs, "normal", unit="Ry")
    return family


@pytest.fixture
def pseudo_family(aiida_profile_clean, tmp_path):
    """Scalar-relativistic PBE family with Si and Fe."""
    return install_family("autopipe-test-pbe", SCALAR_FILES, tmp_path / "scalar")


@pytest.fixture
def fr_pseudo_family(aiida_profile_clean, tmp_path):
    """Fully relativistic PBE family with Si, for the spin-orbit pass."""
    return install_family("autopipe-test-pbe-fr", FULLY_RELATIVISTIC_FILES, tmp_path / "fr")


@pytest.fixture
def pw_code(aiida_profile_clean, aiida_code_installed):
    """pw.x on localhost, run without mpirun (one process)."""
    return aiida_code_installed(
        label="pw",
        default_calc_job_plugin="quantumespresso.pw",
        filepath_executable=PW_EXECUTABLE,
        with_mpi=False,
    )


@pytest.fixture
def dft_compute(pseudo_family):
    """A cheap `dft_compute` section with the lead's keys."""
    return {
        "code": "pw@localhost",
        "pseudo_family": pseudo_family.label,
        "ecutwfc": 16.0,
        "ecutrho": 64.0,
        "kpoints_density": 0.5,
        "smearing": "mv",
        "degauss": 0.02,
        "magnetism": "ferromagnetic",
        "soc_enabled": False,
        "recovery_strategy": "aggressive",
        "conv_thr_per_atom": 2.0e-10,
        "max_concurrent": 4,
        "mpi_ranks": 1,
        "max_walltime_seconds": 600,
    }
