"""Fixtures for the explorer tests: a tiny MACE model trained here on EMT-labelled Cu, seed cells.

The MACE model is trained once per session with mace's own `mace_run_train` (8 channels, one interaction,
a few epochs on a dozen 4-atom frames: about 20 s on two shared cores). It is not accurate; the tests need a
real MACE model that runs MD, not a good one.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
TINY_MACE = [
    "--model", "MACE", "--num_channels", "8", "--max_L", "0", "--max_ell", "1", "--correlation", "2",
    "--num_interactions", "1", "--r_max", "4.0", "--num_radial_basis", "4", "--batch_size", "4",
    "--valid_batch_size", "4", "--max_num_epochs", "6", "--device", "cpu", "--default_dtype", "float64",
    "--seed", "1", "--eval_interval", "3", "--E0s", "average", "--energy_key", "REF_energy",
    "--forces_key", "REF_forces", "--stress_key", "REF_stress", "--save_cpu",
]  # fmt: skip


def emt_cu_frames(count: int, seed: int = 0):
    """Strained and rattled conventional fcc Cu cells labelled by ASE's EMT (energies, forces, stress)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.set_cell(atoms.cell * (1 + 0.02 * rng.standard_normal()), scale_atoms=True)
        atoms.rattle(0.03 + 0.01 * index, seed=index)
        atoms.calc = EMT()
        atoms.info["REF_energy"] = atoms.get_potential_energy()
        atoms.info["REF_stress"] = atoms.get_stress()
        atoms.arrays["REF_forces"] = atoms.get_forces()
        atoms.calc = None
        frames.append(atoms)
    return frames


@pytest.fixture(scope="session")
def tiny_mace_model(tmp_path_factory) -> Path:
    """Path of a MACE .model file trained by mace_run_train in this session."""
    from ase.io import write

    workdir = tmp_path_factory.mktemp("tiny-mace")
    frames = emt_cu_frames(12)
    write(workdir / "train.xyz", frames[:10])
    write(workdir / "valid.xyz", frames[10:])
    command = [str(BIN / "mace_run_train"), "--name", "tiny", "--train_file", "train.xyz",
               "--valid_file", "valid.xyz", *TINY_MACE]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=environment)
    model = workdir / "tiny.model"
    assert completed.returncode == 0 and model.is_file(), completed.stderr[-2000:]
    return model


@pytest.fixture
def cu_seed():
    from ase.build import bulk

    return bulk("Cu", "fcc", a=3.61, cubic=True)
