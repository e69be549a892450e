"""Sanity check every generated structure passes: no atoms closer than a fraction of their covalent bond
length, and a mass density within the range of real condensed matter (periodic solids only)."""

from collections import Counter
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.elements import covalent_radius
from aiida_autopipe.core.structures.base import GeneratedStructure

#: Two atoms closer than this fraction of the sum of their covalent radii are unphysical.
MIN_DISTANCE_FACTOR = 0.6
#: Mass density range in g/cm^3 (solid hydrogen 0.09 to osmium 22.6, with margin).
DENSITY_RANGE = (0.05, 30.0)
AMU_PER_ANGSTROM3_IN_G_PER_CM3 = 1.66053906660


@dataclass(frozen=True)
class SanityVerdict:
    passed: bool
    reason: str


def shortest_scaled_distance(atoms: Atoms) -> float:
    """Smallest d_ij / (r_i + r_j) over all pairs (periodic images included), covalent radii r."""
    radii = np.array([covalent_radius(symbol) for symbol in atoms.get_chemical_symbols()])
    first, second, distance = neighbor_list("ijd", atoms, float(2 * radii.max()))
    if distance.size == 0:
        return float("inf")
    return float(np.min(distance / (radii[first] + radii[second])))


def mass_density(atoms: Atoms) -> float:
    """Mass density in g/cm^3."""
    return float(atoms.get_masses().sum() / atoms.get_volume() * AMU_PER_ANGSTROM3_IN_G_PER_CM3)


def check_structure(
    atoms: Atoms,
    min_distance_factor: float = MIN_DISTANCE_FACTOR,
    density_range: tuple[float, float] = DENSITY_RANGE,
    check_density: bool = True,
) -> SanityVerdict:
    """Pass or fail with a reason. Density is checked only for fully periodic cells when asked (a molecule in
    a vacuum box has no meaningful density)."""
    scaled = shortest_scaled_distance(atoms)
    if scaled < min_distance_factor:
        return SanityVerdict(False, f"too_close: shortest distance {scaled:.2f} x covalent bond length")
    if check_density and atoms.pbc.all():
        density = mass_density(atoms)
        if not density_range[0] <= density <= density_range[1]:
            return SanityVerdict(False, f"density: {density:.2f} g/cm^3 outside {density_range}")
    return SanityVerdict(True, "ok")


def filter_sane(
    structures: list[GeneratedStructure], check_density: bool = True
) -> tuple[list[GeneratedStructure], dict[str, int]]:
    """Keep the structures that pass; count rejections by kind ('too_close', 'density')."""
    kept, rejected = [], Counter()
    for structure in structures:
        verdict = check_structure(structure.atoms, check_density=check_density)
        if verdict.passed:
            kept.append(structure)
        else:
            rejected[verdict.reason.split(":")[0]] += 1
    return kept, dict(rejected)
