"""AIRSS-style random structure search for ionic solids.

Each candidate holds a whole number of charge-balanced formula units (pymatgen's oxidation-state guess), in
a random cell (lengths and angles drawn, then scaled) whose volume is the volume of the ionic spheres
(Shannon radii) divided by a packing fraction drawn in 0.4-0.6 (NaCl, MgO, Fe2O3 and BaTiO3 pack their
ionic spheres at 0.58-0.63, CaF2 at 0.50). Ions are dropped one by one at random positions that keep every
pair at least MIN_DISTANCE_FACTOR x max(ionic radii sum, covalent radii sum) apart: the covalent sum keeps
like-charged ions (small cation radii) from sitting closer than any bond. Candidates can be
pre-relaxed with any ASE calculator and are deduplicated with pymatgen's StructureMatcher.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import get_distances
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_autopipe.core.elements import covalent_radius, ionic_radius
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.structures.base import GeneratedStructure

MIN_DISTANCE_FACTOR = 0.75
PACKING_FRACTION = 0.5
COVALENT_PACKING_FRACTION = 0.35
PACKING_SPREAD = 0.1
#: Random trial positions per ion, tested together.
PLACEMENT_TRIALS = 256
CELL_ATTEMPTS = 50
#: Cells flatter than this (shortest height / cube-root of volume) are redrawn.
MIN_RELATIVE_HEIGHT = 0.5


@dataclass(frozen=True)
class FormulaUnit:
    """Integer formula unit with the radii (Angstrom) that set its minimum distances: ionic radii for the
    oxidation states of an ionic solid, covalent radii (and no oxidation states) for a covalent one."""

    counts: dict[str, int]
    oxidation_states: dict[str, float]
    radii: dict[str, float]
    packing_fraction: float = PACKING_FRACTION

    @property
    def n_atoms(self) -> int:
        return sum(self.counts.values())


def ionic_formula(composition: Mapping[str, float]) -> FormulaUnit:
    """Reduced integer formula and the first charge-balanced oxidation-state guess of pymatgen."""
    reduced = Composition(Composition(dict(composition)).get_integer_formula_and_factor()[0])
    guesses = reduced.oxi_state_guesses(max_sites=-1)
    if not guesses:
        raise InputError(
            "system.composition",
            f"no charge-balanced oxidation states for {reduced.reduced_formula}",
            "give a charge-balanced ionic composition or set structure_type",
        )
    states = {str(symbol): float(state) for symbol, state in guesses[0].items()}
    counts = {str(element): round(amount) for element, amount in reduced.items()}
    radii = {symbol: ionic_radius(symbol, states[symbol]) for symbol in counts}
    return FormulaUnit(counts, states, radii)


def random_cell(volume: float, rng: np.random.Generator) -> np.ndarray:
    """Random lattice: angles in [60, 120] degrees, lengths in [0.5, 1.5], then scaled to ``volume``;
    redrawn until no cell height is below MIN_RELATIVE_HEIGHT x volume^(1/3)."""
    for _ in range(1000):
        lengths = rng.uniform(0.5, 1.5, 3)
        alpha, beta, gamma = np.radians(rng.uniform(60.0, 120.0, 3))
        cos_a, cos_b, cos_g = np.cos([alpha, beta, gamma])
        volume_factor = 1 - cos_a**2 - cos_b**2 - cos_g**2 + 2 * cos_a * cos_b * cos_g
        if volume_factor <= 0.05:
            continue
        cell = np.zeros((3, 3))
        cell[0] = [lengths[0], 0, 0]
        cell[1] = [lengths[1] * cos_g, lengths[1] * np.sin(gamma), 0]
        cx = lengths[2] * cos_b
        cy = lengths[2] * (cos_a - cos_b * cos_g) / np.sin(gamma)
        cell[2] = [cx, cy, np.sqrt(lengths[2] ** 2 - cx**2 - cy**2)]
        cell *= (volume / abs(np.linalg.det(cell))) ** (1 / 3)
        heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        if heights.min() >= MIN_RELATIVE_HEIGHT * volume ** (1 / 3):
            return cell
    raise RuntimeError("could not draw a random cell")


def minimum_distances(symbols: list[str], radii: Mapping[str, float]) -> np.ndarray:
    """Pairwise minimum distances: MIN_DISTANCE_FACTOR x max(ionic radii sum, covalent radii sum)."""
    ionic = np.array([radii[symbol] for symbol in symbols])
    covalent = np.array([covalent_radius(symbol) for symbol in symbols])
    return MIN_DISTANCE_FACTOR * np.maximum(
        ionic[:, None] + ionic[None, :], covalent[:, None] + covalent[None, :]
    )


def _place_ions(symbols: list[str], minimum: np.ndarray, cell: np.ndarray, rng) -> np.ndarray | None:
    positions = (rng.random(3) @ cell)[None, :]
    for index in range(1, len(symbols)):
        trials = rng.random((PLACEMENT_TRIALS, 3)) @ cell
        _, distances = get_distances(trials, positions, cell=cell, pbc=True)
        allowed = np.flatnonzero(np.all(distances >= minimum[index, :index], axis=1))
        if allowed.size == 0:
            return None
        positions = np.vstack([positions, trials[allowed[0]]])
    return positions


def covalent_formula(composition: Mapping[str, float]) -> FormulaUnit:
    """Reduced integer formula with covalent radii, for random cells of covalent compounds: packed like
    diamond (0.34 of space filled by covalent spheres), not like close-packed ions."""
    reduced = Composition(Composition(dict(composition)).get_integer_formula_and_factor()[0])
    counts = {str(element): round(amount) for element, amount in reduced.items()}
    radii = {symbol: covalent_radius(symbol) for symbol in counts}
    return FormulaUnit(counts, {}, radii, packing_fraction=COVALENT_PACKING_FRACTION)


def random_structure(formula: FormulaUnit, formula_units: int, rng: np.random.Generator) -> Atoms:
    """One random candidate with ``formula_units`` formula units, obeying the minimum distances."""
    symbols = [symbol for symbol, count in formula.counts.items() for _ in range(count * formula_units)]
    sphere_volume = sum(4 / 3 * math.pi * formula.radii[symbol] ** 3 for symbol in symbols)
    # Largest ions first: they are the hardest to fit.
    ordered_symbols = sorted(symbols, key=lambda symbol: -formula.radii[symbol])
    minimum = minimum_distances(ordered_symbols, formula.radii)
    for _ in range(CELL_ATTEMPTS):
        packing = rng.uniform(
            formula.packing_fraction - PACKING_SPREAD, formula.packing_fraction + PACKING_SPREAD
        )
        cell = random_cell(sphere_volume / packing, rng)
        # Each ion also meets its own periodic images.
        if _shortest_lattice_vector(cell) < minimum.diagonal().max():
            continue
        positions = _place_ions(ordered_symbols, minimum, cell, rng)
        if positions is not None:
            return Atoms(ordered_symbols, positions=positions, cell=cell, pbc=True)
    raise RuntimeError(f"could not place {len(symbols)} ions in {CELL_ATTEMPTS} random cells")


def _shortest_lattice_vector(cell: np.ndarray) -> float:
    combinations = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    vectors = combinations[np.any(combinations != 0, axis=1)] @ cell
    return float(np.linalg.norm(vectors, axis=1).min())


def random_search(
    composition: Mapping[str, float] | FormulaUnit,
    n_structures: int,
    max_atoms: int = 24,
    seed: int = 0,
    label: str = "airss",
) -> list[GeneratedStructure]:
    """``n_structures`` random candidates, cycling through 1, 2, ... formula units up to max_atoms atoms;
    a bare composition is taken as ionic (charge-balanced formula unit, ionic radii)."""
    formula = composition if isinstance(composition, FormulaUnit) else ionic_formula(composition)
    unit_choices = list(range(1, max(1, max_atoms // formula.n_atoms) + 1))
    rng = np.random.default_rng(seed)
    structures = []
    for index in range(n_structures):
        formula_units = unit_choices[index % len(unit_choices)]
        atoms = random_structure(formula, formula_units, rng)
        details = {"formula_units": formula_units, "oxidation_states": dict(formula.oxidation_states)}
        structures.append(
            GeneratedStructure(atoms=atoms, method="random_search", label=f"{label}_{index}", details=details)
        )
    return structures


def relax(structures: list[GeneratedStructure], calculator, fmax: float = 0.1, steps: int = 100) -> None:
    """Relax positions and cell in place with FIRE on ``calculator`` (any ASE calculator); store the energy
    per atom and the relaxation tag in each record."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    for structure in structures:
        atoms = structure.atoms
        atoms.calc = calculator
        optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
        converged = optimizer.run(fmax=fmax, steps=steps)
        structure.details["energy_per_atom"] = float(atoms.get_potential_energy() / len(atoms))
        structure.details["relaxed"] = bool(converged)
        structure.method = "random_search_relaxed"
        atoms.calc = None


def deduplicate(structures: list[GeneratedStructure]) -> list[GeneratedStructure]:
    """One representative per group of symmetry-equivalent structures (pymatgen StructureMatcher, default
    tolerances); the lowest energy per atom where energies are known, otherwise the first."""
    if len(structures) < 2:
        return list(structures)
    pymatgen_structures = [AseAtomsAdaptor.get_structure(record.atoms) for record in structures]
    groups = StructureMatcher().group_structures(pymatgen_structures)
    index_of = {id(pmg): index for index, pmg in enumerate(pymatgen_structures)}
    kept = []
    for group in groups:
        members = [structures[index_of[id(pmg)]] for pmg in group]
        kept.append(min(members, key=lambda record: record.details.get("energy_per_atom", 0.0)))
    return kept
