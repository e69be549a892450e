"""Regenerate ``si_pwx_labels.extxyz``: real pw.x labels for small Si cells (the training tests fit on these).

Settings: Quantum ESPRESSO 6.7 pw.x (Debian), PBE, norm-conserving /usr/share/espresso/pseudo/Si.pbe-rrkj.UPF,
ecutwfc 20 Ry, ecutrho 80 Ry, Marzari-Vanderbilt smearing 0.01 Ry, k-mesh 4x4x4 (2-atom cells) and 2x2x2
(8-atom cells), 1 MPI rank. Structures: diamond Si (a = 5.43 Angstrom) with isotropic strains of -6..+6 %, a
random symmetric shear strain up to 2 % and random displacements of 0.03-0.15 Angstrom (seeded). Labels are
stored in eV, eV/Angstrom and eV/Angstrom^3 (stress as info['stress'], 3x3, ASE sign convention).

Run: ``cd tests/training/data && uv run python make_si_labels.py`` (about 1-2 minutes on one core).
"""

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.io import read, write

PSEUDO_DIR = "/usr/share/espresso/pseudo"
OUTPUT = Path(__file__).with_name("si_pwx_labels.extxyz")


def perturbed_cells(rng: np.random.Generator) -> list:
    cells = []
    for cubic, count, kpts in ((False, 16, (4, 4, 4)), (True, 10, (2, 2, 2))):
        for _ in range(count):
            atoms = bulk("Si", "diamond", a=5.43, cubic=cubic)
            shear = rng.uniform(-0.02, 0.02, (3, 3))
            strain = np.eye(3) * (1 + rng.uniform(-0.06, 0.06)) + (shear + shear.T) / 2
            atoms.set_cell(atoms.cell[:] @ strain, scale_atoms=True)
            atoms.positions += rng.normal(0, rng.uniform(0.03, 0.15), atoms.positions.shape)
            atoms.info["kpts"] = kpts
            cells.append(atoms)
    return cells


def label(atoms, workdir: Path):
    input_data = {
        "control": {"calculation": "scf", "tprnfor": True, "tstress": True, "pseudo_dir": PSEUDO_DIR},
        "system": {
            "ecutwfc": 20,
            "ecutrho": 80,
            "occupations": "smearing",
            "smearing": "mv",
            "degauss": 0.01,
        },
        "electrons": {"conv_thr": 1e-8},
    }
    pw_in, pw_out = workdir / "pw.in", workdir / "pw.out"
    write(
        pw_in,
        atoms,
        format="espresso-in",
        input_data=input_data,
        pseudopotentials={"Si": "Si.pbe-rrkj.UPF"},
        kpts=atoms.info["kpts"],
    )
    with open(pw_in) as stdin, open(pw_out, "w") as stdout:
        subprocess.run(
            ["pw.x"],
            stdin=stdin,
            stdout=stdout,
            cwd=workdir,
            check=True,
            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        )
    result = read(pw_out, format="espresso-out")
    labelled = atoms.copy()
    labelled.info = {"energy": result.get_potential_energy(), "stress": result.get_stress(voigt=False)}
    labelled.arrays["forces"] = result.get_forces()
    return labelled


def main():
    rng = np.random.default_rng(20261121)
    with tempfile.TemporaryDirectory() as tmp:
        frames = [label(atoms, Path(tmp)) for atoms in perturbed_cells(rng)]
    write(OUTPUT, frames, format="extxyz")
    print(f"wrote {len(frames)} frames to {OUTPUT}")


if __name__ == "__main__":
    main()
