"""Fixtures for the Slurm tests: this machine's single-node Slurm, its AiiDA Computer and Codes.

Slurm is brought up by the product's own `engines.slurm.start_local_slurm` (what `mlip-pipe setup --slurm`
runs) and the Computer and Codes are registered by the functions `mlip-pipe setup` uses.
"""

import os
import shutil
from pathlib import Path

import pytest

from aiida_autopipe.engines.slurm import SLURM_COMPUTER, slurm_installed

PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
SILICON_UPF = "Si.pbe-rrkj.UPF"


def pytest_collection_modifyitems(items):
    reason = None
    if not slurm_installed():
        reason = "slurm-wlm is not installed (apt-get install slurm-wlm munge; .ci/run does it)"
    elif os.geteuid() != 0:
        reason = "starting slurmctld and slurmd needs root"
    if reason:
        for item in items:
            if item.get_closest_marker("slurm"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def local_slurm():
    """munged, slurmctld and slurmd running on this machine, the node idle."""
    from aiida_autopipe.engines.slurm import start_local_slurm

    return start_local_slurm()


@pytest.fixture
def slurm_computer(aiida_profile_clean, local_slurm, tmp_path):
    """The `slurm-localhost` Computer (autopipe.slurm over core.local) with the pw and surrogate Codes."""
    from aiida_autopipe.engines.codes import ensure_code, ensure_localhost

    computer = ensure_localhost(
        tmp_path / "slurm-scratch",
        ["mpirun", "--allow-run-as-root", "-np", "{tot_num_mpiprocs}"],
        local_slurm.cpus,
        label=SLURM_COMPUTER,
        scheduler_type="autopipe.slurm",
    )
    for label in ("pw", "autopipe-surrogate"):
        ensure_code(label, computer)
    return computer


@pytest.fixture
def silicon_family(aiida_profile_clean, tmp_path):
    """A one-element PBE family from Debian's Si file, with far from converged cutoffs (16/64 Ry)."""
    from aiida.plugins import DataFactory, GroupFactory

    folder = tmp_path / "pseudos"
    folder.mkdir()
    shutil.copy(PSEUDO_DIR / SILICON_UPF, folder / SILICON_UPF)
    family = GroupFactory("pseudo.family.cutoffs").create_from_folder(
        folder, "autopipe-slurm-si", pseudo_type=DataFactory("pseudo.upf")
    )
    family.set_cutoffs({"Si": {"cutoff_wfc": 16.0, "cutoff_rho": 64.0}}, "normal", unit="Ry")
    return family
