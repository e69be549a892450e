"""Structures and pw.x stdout reading shared by the labeling tests."""

import pathlib
import re
import shutil

import numpy as np

PSEUDO_DIR = pathlib.Path("/usr/share/espresso/pseudo")
PW_EXECUTABLE = shutil.which("pw.x") or "/usr/bin/pw.x"

#: Element -> (file, ecutwfc, ecutrho) in Ry. All PBE, as the files' headers state.
SCALAR_FILES = {
    "Si": ("Si.pbe-rrkj.UPF", 16.0, 64.0),
    "Fe": ("Fe.pbe-nd-rrkjus.UPF", 25.0, 200.0),
}
FULLY_RELATIVISTIC_FILES = {"Si": ("Si.rel-pbe-rrkj.UPF", 16.0, 64.0)}

RY_PER_EV = 1 / 13.605693122994
BOHR = 0.529177210903


def silicon(n_cells=1, displacement=None):
    """Diamond Si: the 2-atom primitive cell, or the 8-atom cubic cell with optional displacements
    (Angstrom)."""
    from aiida import orm
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=n_cells > 1)
    if displacement is not None:
        atoms.positions += np.asarray(displacement)
    return orm.StructureData(ase=atoms)


def bcc_iron(a=2.83):
    """Two-atom cubic bcc Fe."""
    from aiida import orm
    from ase.build import bulk

    return orm.StructureData(ase=bulk("Fe", "bcc", a=a, cubic=True))


def read_pw_stdout(calculation, n_atoms):
    """Energy (eV), forces (eV/A), stress (Ry/bohr^3 as printed) and total magnetisation from pw.x's own
    stdout."""
    text = calculation.outputs.retrieved.base.repository.get_object_content("aiida.out")
    energy_ry = float(re.findall(r"^!\s+total energy\s+=\s+(\S+) Ry", text, re.MULTILINE)[-1])
    # the total forces come first, before the per-term contributions pw.x also prints
    force_block = text.split("Forces acting on atoms (cartesian axes, Ry/au):")[-1]
    forces = [
        [float(value) for value in match]
        for match in re.findall(r"atom\s+\d+ type\s+\d+\s+force =\s+(\S+)\s+(\S+)\s+(\S+)", force_block)
    ][:n_atoms]
    stress_block = text.split("total   stress  (Ry/bohr**3)")[-1].splitlines()[1:4]
    stress = [[float(value) for value in line.split()[:3]] for line in stress_block]
    magnetization = re.findall(r"total magnetization\s+=\s+(\S+) Bohr mag/cell", text)
    return {
        "energy": energy_ry / RY_PER_EV,
        "forces": np.array(forces) / RY_PER_EV / BOHR,
        "stress_ry_bohr3": np.array(stress),
        "total_magnetization": float(magnetization[-1]) if magnetization else 0.0,
        "text": text,
    }
