"""Special quasirandom structures (SQS) for alloys with icet, plus off-stoichiometry variants.

The parent lattice (fcc, bcc or hcp) is the composition-weighted vote of the elements' ground states and
its volume per atom follows Vegard's law over the elemental atomic volumes. The supercell is a repeat of the
conventional cell with 32-96 atoms in which the composition is exact. The cluster space holds pairs up to
1.8 nearest-neighbour distances (three shells in fcc and bcc) and the nearest-neighbour triplets: enough for
a 32-atom cell to match the random alloy, which larger cluster spaces at this size cannot.
"""

import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list
from icet import ClusterSpace
from icet.tools.structure_generation import _get_sqs_cluster_vector, generate_sqs_from_supercells

from aiida_autopipe.core.elements import atomic_volume, reference_state
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.structures.base import GeneratedStructure

PARENT_LATTICES = ("fcc", "bcc", "hcp")
IDEAL_HCP_C_OVER_A = float(np.sqrt(8.0 / 3.0))
PAIR_CUTOFF_NN = 1.8
TRIPLET_CUTOFF_NN = 1.2
#: Annealing steps per atom of the supercell (icet simulated annealing: 0.5-2 ms per step on 2 shared cores).
STEPS_PER_ATOM = 30
#: Largest ratio of supercell lengths preferred before taking more atoms.
MAX_ASPECT = 1.5


@dataclass(frozen=True)
class SqsQuality:
    """How close the SQS correlation functions are to the random alloy's (orbits of order >= 2)."""

    max_deviation: float
    rms_deviation: float
    n_orbits: int


def parent_lattice(composition: Mapping[str, float]) -> str:
    """fcc, bcc or hcp: the lattice of the elements' ground states, weighted by their fractions.

    Elements whose ground state is none of the three (Ga, Mn, Sn, Si, ...) do not vote; fcc if none votes.
    """
    votes = dict.fromkeys(PARENT_LATTICES, 0.0)
    for symbol, fraction in composition.items():
        symmetry = reference_state(symbol).get("symmetry")
        if symmetry in votes:
            votes[symmetry] += fraction
    return max(PARENT_LATTICES, key=lambda lattice: votes[lattice])


def vegard_volume_per_atom(composition: Mapping[str, float]) -> float:
    """Volume per atom (Angstrom^3) as the fraction-weighted mean of the elemental atomic volumes."""
    total = sum(composition.values())
    return sum(fraction * atomic_volume(symbol) for symbol, fraction in composition.items()) / total


def conventional_cell(composition: Mapping[str, float], lattice: str | None = None) -> Atoms:
    """Conventional cell (cubic fcc/bcc, orthorhombic hcp) at the Vegard volume, occupied by one species."""
    lattice = lattice or parent_lattice(composition)
    volume = vegard_volume_per_atom(composition)
    host = max(composition, key=composition.get)
    if lattice == "fcc":
        return bulk(host, "fcc", a=(4 * volume) ** (1 / 3), cubic=True)
    if lattice == "bcc":
        return bulk(host, "bcc", a=(2 * volume) ** (1 / 3), cubic=True)
    if lattice == "hcp":
        a = (2 * volume / (np.sqrt(3) / 2 * IDEAL_HCP_C_OVER_A)) ** (1 / 3)
        return bulk(host, "hcp", a=a, c=IDEAL_HCP_C_OVER_A * a, orthorhombic=True)
    raise InputError("system.lattice", f"unknown parent lattice {lattice!r}", f"use one of {PARENT_LATTICES}")


def nearest_neighbour_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance, periodic images included."""
    cutoff = 2.5 * (atoms.get_volume() / len(atoms)) ** (1 / 3)
    return float(neighbor_list("d", atoms, cutoff).min())


def atom_counts(composition: Mapping[str, float], n_atoms: int) -> dict[str, int]:
    """Integer counts closest to the fractions that sum to n_atoms (largest remainders)."""
    total = sum(composition.values())
    exact = {symbol: n_atoms * fraction / total for symbol, fraction in composition.items()}
    counts = {symbol: int(np.floor(value)) for symbol, value in exact.items()}
    by_remainder = sorted(exact, key=lambda symbol: exact[symbol] - counts[symbol], reverse=True)
    for symbol in by_remainder[: n_atoms - sum(counts.values())]:
        counts[symbol] += 1
    return counts


def choose_repeat(
    cell: Atoms, composition: Mapping[str, float], min_atoms: int = 32, max_atoms: int = 96
) -> tuple[int, int, int]:
    """Repeat of ``cell`` with min_atoms..max_atoms atoms, chosen by: exact composition, then supercell
    lengths within a factor 1.5 of each other, then fewest atoms, then the most equal lengths."""
    total = sum(composition.values())
    candidates = []
    for repeat in itertools.product(range(1, 9), repeat=3):
        n_atoms = len(cell) * int(np.prod(repeat))
        if not min_atoms <= n_atoms <= max_atoms:
            continue
        counts = atom_counts(composition, n_atoms)
        error = max(abs(counts[s] / n_atoms - f / total) for s, f in composition.items())
        lengths = cell.cell.lengths() * np.array(repeat)
        aspect = float(lengths.max() / lengths.min())
        candidates.append((round(error, 6), aspect > MAX_ASPECT + 1e-6, n_atoms, aspect, repeat))
    if not candidates:
        raise InputError(
            "system.generation.sqs", f"no repeat of the {len(cell)}-atom cell fits", "widen the size range"
        )
    return min(candidates)[-1]


def sqs_cluster_space(supercell: Atoms, symbols: list[str]) -> ClusterSpace:
    nearest = nearest_neighbour_distance(supercell)
    cutoffs = [PAIR_CUTOFF_NN * nearest, TRIPLET_CUTOFF_NN * nearest]
    return ClusterSpace(supercell, cutoffs, [sorted(symbols)] * len(supercell))


def sqs_quality(cluster_space: ClusterSpace, atoms: Atoms, fractions: Mapping[str, float]) -> SqsQuality:
    """Deviation of the structure's cluster vector from the random alloy's (icet's SQS target vector)."""
    target = _get_sqs_cluster_vector(cluster_space, {"A": dict(fractions)})
    actual = cluster_space.get_cluster_vector(atoms)
    orders = np.array([orbit["order"] for orbit in cluster_space.as_list])
    deviation = np.abs(actual - target)[orders >= 2]
    return SqsQuality(float(deviation.max()), float(np.sqrt(np.mean(deviation**2))), int(deviation.size))


def generate_sqs(
    composition: Mapping[str, float],
    parent: Atoms | None = None,
    min_atoms: int = 32,
    max_atoms: int = 96,
    n_steps: int | None = None,
    seed: int = 0,
    label: str = "sqs",
) -> GeneratedStructure:
    """SQS of the composition on the parent (given structure, or fcc/bcc/hcp guessed at Vegard volume).

    ``details`` carries the atom counts, the supercell repeat and the correlation-function deviation.
    """
    symbols = [symbol for symbol, fraction in composition.items() if fraction > 0]
    if len(symbols) < 2:
        raise InputError(
            "system.composition", "an SQS needs at least two elements", "give an alloy composition"
        )
    cell = parent.copy() if parent is not None else conventional_cell(composition)
    repeat = choose_repeat(cell, composition, min_atoms, max_atoms)
    supercell = cell.repeat(repeat)
    counts = atom_counts(composition, len(supercell))
    return _anneal(supercell, counts, n_steps, seed, label, repeat)


def _anneal(
    supercell: Atoms, counts: Mapping[str, int], n_steps: int | None, seed: int, label: str, repeat
) -> GeneratedStructure:
    symbols = [symbol for symbol, count in counts.items() if count > 0]
    n_atoms = len(supercell)
    fractions = {symbol: counts[symbol] / n_atoms for symbol in symbols}
    # One species on every site, so that icet sees a single sublattice whatever occupied the input.
    supercell = Atoms([symbols[0]] * n_atoms, cell=supercell.cell, positions=supercell.positions, pbc=True)
    cluster_space = sqs_cluster_space(supercell, list(counts))
    icet_logger = logging.getLogger("icet")
    previous_level = icet_logger.level
    icet_logger.setLevel(logging.WARNING)
    try:
        sqs = generate_sqs_from_supercells(
            cluster_space,
            [supercell],
            {"A": fractions},
            n_steps=n_steps or STEPS_PER_ATOM * n_atoms,
            random_seed=seed,
        )
    finally:
        icet_logger.setLevel(previous_level)
    quality = sqs_quality(cluster_space, sqs, fractions)
    details = {
        "counts": dict(counts),
        "repeat": list(repeat),
        "sqs_max_correlation_deviation": quality.max_deviation,
        "sqs_rms_correlation_deviation": quality.rms_deviation,
        "sqs_n_orbits": quality.n_orbits,
    }
    atoms = Atoms(sqs.get_chemical_symbols(), cell=sqs.cell, positions=sqs.positions, pbc=True)
    return GeneratedStructure(atoms=atoms, method="sqs", label=label, details=details)


def off_stoichiometry_variants(
    sqs: GeneratedStructure, delta: float = 0.03, n_steps: int | None = None, seed: int = 0
) -> list[GeneratedStructure]:
    """SQS in the same supercell with about ``delta`` (atomic fraction, at least one atom) moved from each
    element to each other element: two variants for a binary, n(n-1) for n elements."""
    counts = sqs.details["counts"]
    n_atoms = sum(counts.values())
    moved = max(1, round(delta * n_atoms))
    variants = []
    for index, (gaining, losing) in enumerate(itertools.permutations(sorted(counts), 2)):
        if counts[losing] <= moved:
            continue
        shifted = dict(counts)
        shifted[gaining] += moved
        shifted[losing] -= moved
        variant = _anneal(
            sqs.atoms,
            shifted,
            n_steps,
            seed + index + 1,
            f"{sqs.label}_offstoich{index}",
            sqs.details["repeat"],
        )
        variant.method = "sqs_off_stoichiometry"
        variant.parent = sqs.label
        variants.append(variant)
    return variants
