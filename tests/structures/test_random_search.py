"""AIRSS-style random search: distance constraints, charge balance, deduplication, pre-relaxation."""

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.structures.base import GeneratedStructure
from aiida_autopipe.core.structures.random_search import (
    MIN_DISTANCE_FACTOR,
    deduplicate,
    ionic_formula,
    minimum_distances,
    random_search,
    relax,
)
from aiida_autopipe.core.structures.sanity import check_structure


@pytest.mark.parametrize(
    "composition", [{"Na": 1, "Cl": 1}, {"Fe": 0.4, "O": 0.6}, {"Ca": 1, "F": 2}, {"Ba": 1, "Ti": 1, "O": 3}]
)
def test_candidates_obey_distances_and_charge_balance(composition):
    formula = ionic_formula(composition)
    candidates = random_search(composition, n_structures=4, max_atoms=20, seed=3)
    for candidate in candidates:
        atoms = candidate.atoms
        symbols = atoms.get_chemical_symbols()
        units = candidate.details["formula_units"]
        assert {s: symbols.count(s) for s in formula.counts} == {
            s: n * units for s, n in formula.counts.items()
        }
        charge = sum(formula.oxidation_states[symbol] for symbol in symbols)
        assert charge == pytest.approx(0.0)
        minimum = minimum_distances(symbols, formula.radii)
        first, second, distance = neighbor_list("ijd", atoms, float(minimum.max()))
        assert np.all(distance >= minimum[first, second] - 1e-9)
        assert check_structure(atoms).passed


def test_distance_rule_uses_ionic_radii_and_the_covalent_floor():
    formula = ionic_formula({"Na": 1, "Cl": 1})
    minimum = minimum_distances(["Na", "Cl", "Na"], formula.radii)
    assert minimum[0, 1] == pytest.approx(MIN_DISTANCE_FACTOR * (1.16 + 1.67))  # Shannon radii of Na+, Cl-
    assert minimum[0, 2] > MIN_DISTANCE_FACTOR * 2 * 1.16  # Na+-Na+ held apart by the covalent floor


def test_deduplicate_keeps_one_of_each_polymorph():
    rocksalt = bulk("NaCl", "rocksalt", a=5.64)
    cesium_chloride = bulk("NaCl", "cesiumchloride", a=3.4)
    rotated = rocksalt.repeat((2, 1, 1))
    rotated.rotate(30, "z", rotate_cell=True)
    records = [
        GeneratedStructure(rocksalt, "random_search", "a", details={"energy_per_atom": -3.0}),
        GeneratedStructure(cesium_chloride, "random_search", "b"),
        GeneratedStructure(rotated, "random_search", "c", details={"energy_per_atom": -3.1}),
    ]
    kept = deduplicate(records)
    assert sorted(record.label for record in kept) == ["b", "c"]


@pytest.mark.surrogate
def test_prerelaxation_with_a_real_surrogate_lowers_the_energy():
    """CHGNet (pretrained weights shipped in its wheel) relaxes two NaCl formula units a few FIRE steps."""
    chgnet = pytest.importorskip("chgnet.model")
    calculator = chgnet.CHGNetCalculator(use_device="cpu")
    candidate = random_search({"Na": 1, "Cl": 1}, n_structures=2, seed=5)[1]
    start = candidate.atoms.copy()
    start.calc = calculator
    start_energy = start.get_potential_energy() / len(start)
    relax([candidate], calculator, fmax=0.05, steps=8)
    assert candidate.method == "random_search_relaxed"
    assert candidate.details["energy_per_atom"] < start_energy
