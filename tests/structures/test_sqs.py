"""SQS for alloys: parent lattice, supercell size, correlation deviation from the random alloy, variants."""

import numpy as np
import pytest

from aiida_autopipe.core.structures.base import GeneratedStructure, strain_variants
from aiida_autopipe.core.structures.sqs import (
    choose_repeat,
    conventional_cell,
    generate_sqs,
    off_stoichiometry_variants,
    parent_lattice,
    sqs_cluster_space,
    sqs_quality,
    vegard_volume_per_atom,
)

#: Largest |SQS - random| difference of any pair or triplet correlation accepted for FePt 50/50.
FEPT_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def fept_sqs():
    return generate_sqs({"Fe": 0.5, "Pt": 0.5}, seed=1)


def test_fept_sqs_matches_random_alloy_correlations(fept_sqs):
    assert 32 <= len(fept_sqs.atoms) <= 96
    assert fept_sqs.details["counts"] == {"Fe": len(fept_sqs.atoms) // 2, "Pt": len(fept_sqs.atoms) // 2}
    assert fept_sqs.details["sqs_n_orbits"] >= 4  # three pair shells and the nearest-neighbour triplet
    assert fept_sqs.details["sqs_max_correlation_deviation"] <= FEPT_TOLERANCE


def test_ordered_l10_is_far_from_random(fept_sqs):
    """The deviation measure can fail: ordered L1_0 FePt (Fe and Pt in alternate (001) planes) is far off."""
    ordered = fept_sqs.atoms.copy()
    scaled_z = ordered.get_scaled_positions()[:, 2] * fept_sqs.details["repeat"][2] * 2
    ordered.symbols = ["Fe" if round(z) % 2 == 0 else "Pt" for z in scaled_z]
    assert ordered.get_chemical_formula() == "Fe16Pt16"
    cluster_space = sqs_cluster_space(ordered, ["Fe", "Pt"])
    assert sqs_quality(cluster_space, ordered, {"Fe": 0.5, "Pt": 0.5}).max_deviation > 0.3


@pytest.mark.parametrize(
    ("composition", "lattice"),
    [({"Fe": 0.5, "Pt": 0.5}, "fcc"), ({"Fe": 0.5, "Cr": 0.5}, "bcc"), ({"Ti": 0.5, "Zr": 0.5}, "hcp")],
)
def test_parent_lattice_follows_elemental_ground_states(composition, lattice):
    assert parent_lattice(composition) == lattice


def test_vegard_volume_lies_between_the_elements():
    fe, pt = vegard_volume_per_atom({"Fe": 1.0}), vegard_volume_per_atom({"Pt": 1.0})
    assert vegard_volume_per_atom({"Fe": 0.5, "Pt": 0.5}) == pytest.approx((fe + pt) / 2)
    assert 11.0 < fe < 12.5  # bcc Fe: 11.8 Angstrom^3 per atom
    cell = conventional_cell({"Fe": 0.5, "Pt": 0.5})
    assert cell.get_volume() / len(cell) == pytest.approx((fe + pt) / 2)


@pytest.mark.parametrize(
    ("composition", "n_atoms"), [({"Cu": 0.75, "Au": 0.25}, 32), ({"Ni": 1 / 3, "Al": 2 / 3}, 48)]
)
def test_supercell_size_makes_the_composition_exact(composition, n_atoms):
    cell = conventional_cell(composition)
    repeat = choose_repeat(cell, composition)
    assert len(cell) * np.prod(repeat) == n_atoms


def test_off_stoichiometry_moves_one_atom_each_way(fept_sqs):
    variants = off_stoichiometry_variants(fept_sqs, delta=0.03, seed=2)
    formulas = sorted(variant.atoms.get_chemical_formula() for variant in variants)
    assert formulas == ["Fe15Pt17", "Fe17Pt15"]
    assert all(variant.parent == fept_sqs.label for variant in variants)
    assert all(variant.details["sqs_max_correlation_deviation"] < 0.1 for variant in variants)


def test_strain_variants_have_the_requested_volume_and_shear():
    parent = GeneratedStructure(conventional_cell({"Cu": 1.0}).repeat(2), "sqs", "p")
    variants = strain_variants(parent, volume_changes=(-0.06, 0.03), shears=(0.02,))
    assert len(variants) == 2 + 3
    volume = parent.atoms.get_volume()
    assert variants[0].atoms.get_volume() / volume == pytest.approx(0.94)
    assert variants[1].atoms.get_volume() / volume == pytest.approx(1.03)
    sheared = variants[2]
    assert sheared.strain == (0.0, 0.0, 0.0, 0.02, 0.0, 0.0)
    assert sheared.atoms.get_volume() / volume == pytest.approx(1 - 0.02**2, rel=1e-6)
