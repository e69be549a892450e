"""Deep rattling: large random displacements with a minimum-distance guard from covalent radii."""

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.elements import covalent_radius
from aiida_autopipe.core.structures.base import GeneratedStructure

#: Displaced atoms must stay at least this fraction of their covalent bond length apart.
GUARD_FACTOR = 0.75
MAX_REDRAWS = 50


def _too_close_atoms(atoms: Atoms, radii: np.ndarray, factor: float) -> np.ndarray:
    first, second, distance = neighbor_list("ijd", atoms, float(2 * radii.max() * factor))
    close = distance < factor * (radii[first] + radii[second])
    return np.unique(np.concatenate([first[close], second[close]]))


def deep_rattle(
    atoms: Atoms, amplitude: float, rng: np.random.Generator, guard_factor: float = GUARD_FACTOR
) -> Atoms:
    """Displace every atom by a Gaussian vector of standard deviation ``amplitude`` (Angstrom per Cartesian
    component); atoms that come closer than guard_factor x (r_i + r_j) get new displacements, and after
    MAX_REDRAWS rounds the remaining offenders are put back to their original positions."""
    radii = np.array([covalent_radius(symbol) for symbol in atoms.get_chemical_symbols()])
    original = atoms.get_positions()
    rattled = atoms.copy()
    rattled.set_positions(original + rng.normal(0.0, amplitude, original.shape))
    for _ in range(MAX_REDRAWS):
        offenders = _too_close_atoms(rattled, radii, guard_factor)
        if offenders.size == 0:
            return rattled
        positions = rattled.get_positions()
        positions[offenders] = original[offenders] + rng.normal(0.0, amplitude, (offenders.size, 3))
        rattled.set_positions(positions)
    displaced = np.ones(len(atoms), dtype=bool)
    while True:
        offenders = _too_close_atoms(rattled, radii, guard_factor)
        offenders = offenders[displaced[offenders]]
        if offenders.size == 0:
            return rattled
        positions = rattled.get_positions()
        positions[offenders] = original[offenders]
        displaced[offenders] = False
        rattled.set_positions(positions)


def rattled_structures(
    parent: GeneratedStructure, amplitudes: tuple[float, ...], n_per_amplitude: int, seed: int = 0
) -> list[GeneratedStructure]:
    """``n_per_amplitude`` deep-rattled copies of the parent for each amplitude (Angstrom)."""
    rng = np.random.default_rng(seed)
    structures = []
    for amplitude in amplitudes:
        for copy_index in range(n_per_amplitude):
            structures.append(
                GeneratedStructure(
                    atoms=deep_rattle(parent.atoms, amplitude, rng),
                    method="rattle",
                    label=f"{parent.label}_rattle{amplitude:g}_{copy_index}",
                    parent=parent.label,
                    details={"amplitude": amplitude},
                )
            )
    return structures
