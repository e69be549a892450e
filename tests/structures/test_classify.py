"""Bond-type classification on known systems, from a composition and from a structure."""

import pytest
from ase import Atoms
from ase.build import bulk, molecule

from aiida_autopipe.core.classify import BondingClass, classify_bonding
from aiida_autopipe.core.errors import InputError

KNOWN_SYSTEMS = [
    # alloys
    ({"Fe": 0.5, "Pt": 0.5}, "alloy"),
    ({"Cu": 0.5, "Au": 0.5}, "alloy"),
    ({"Ni": 1, "Al": 1}, "alloy"),
    ({"Cu": 3, "Au": 1}, "alloy"),
    ({"Al": 1, "Ni": 3}, "alloy"),
    ({"Fe": 1.0}, "alloy"),
    ({"Fe": 3, "C": 1}, "alloy"),
    ({"Co": 0.25, "Cr": 0.25, "Fe": 0.25, "Ni": 0.25}, "alloy"),
    # ionic
    ({"Na": 1, "Cl": 1}, "ionic"),
    ({"Mg": 1, "O": 1}, "ionic"),
    ({"Li": 1, "F": 1}, "ionic"),
    ({"Fe": 2, "O": 3}, "ionic"),
    ({"Ca": 1, "F": 2}, "ionic"),
    ({"Ni": 1, "O": 1}, "ionic"),
    ({"Ba": 1, "Ti": 1, "O": 3}, "ionic"),
    ({"Li": 1, "H": 1}, "ionic"),
    ({"Al": 0.4, "O": 0.6}, "ionic"),
    # covalent
    ({"Si": 1}, "covalent"),
    ({"C": 1}, "covalent"),
    ({"Si": 1, "C": 1}, "covalent"),
    ({"Ga": 1, "As": 1}, "covalent"),
    ({"Ge": 1}, "covalent"),
    ({"B": 1, "N": 1}, "covalent"),
    ({"Ga": 1, "N": 1}, "covalent"),
    ({"Zn": 1, "S": 1}, "covalent"),
    ({"Si": 1, "O": 2}, "covalent"),
    ({"Mo": 1, "S": 2}, "covalent"),
    # molecules
    ({"H": 2, "O": 1}, "molecule"),
    ({"C": 1, "H": 4}, "molecule"),
    ({"C": 6, "H": 6}, "molecule"),
    ({"N": 1, "H": 3}, "molecule"),
    ({"C": 1, "O": 2}, "molecule"),
    ({"S": 1, "F": 6}, "molecule"),
    ({"N": 1}, "molecule"),
    ({"Ar": 1}, "molecule"),
    ({"C": 0.5, "H": 0.5}, "molecule"),
    ({"C": 2, "H": 5, "O": 1, "N": 1}, "molecule"),
]


@pytest.mark.parametrize(("composition", "expected"), KNOWN_SYSTEMS, ids=lambda v: str(v))
def test_known_compositions(composition, expected):
    verdict = classify_bonding(composition)
    assert isinstance(verdict, BondingClass)
    assert verdict.structure_type == expected, verdict.reason
    assert verdict.reason


def test_hydrogen_rich_formula_without_saturated_valences_is_not_a_molecule():
    """CH5 cannot be drawn with C4 and H1 valences as one molecule (nor C2H10): covalent by rule 4."""
    assert classify_bonding({"C": 1, "H": 5}).structure_type == "covalent"


def _water_box(n_per_side: int, spacing: float) -> Atoms:
    water = molecule("H2O")
    crystal = Atoms(cell=[spacing * n_per_side] * 3, pbc=True)
    for i in range(n_per_side):
        for j in range(n_per_side):
            for k in range(n_per_side):
                copy = water.copy()
                copy.translate([i * spacing, j * spacing, k * spacing])
                crystal += copy
    return crystal


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        (molecule("CH4"), "molecule"),
        (molecule("C6H6"), "molecule"),
        (_water_box(2, 3.1), "molecule"),  # periodic molecular crystal: finite components
    ],
)
def test_structures_with_isolated_clusters_are_molecules(atoms, expected):
    assert classify_bonding(atoms).structure_type == expected


def test_metal_cluster_in_vacuum_is_a_molecule():
    cluster = bulk("Pt", "fcc", a=3.92, cubic=True)
    cluster.center(vacuum=6.0)
    assert classify_bonding(cluster).structure_type == "molecule"


@pytest.mark.parametrize(
    ("atoms", "expected"),
    [
        (bulk("Si", "diamond", a=5.43), "covalent"),
        (bulk("NaCl", "rocksalt", a=5.64), "ionic"),
        (bulk("Cu", "fcc", a=3.61), "alloy"),
        (bulk("GaAs", "zincblende", a=5.65), "covalent"),
    ],
)
def test_extended_crystals_follow_the_composition_rules(atoms, expected):
    verdict = classify_bonding(atoms)
    assert verdict.structure_type == expected
    assert verdict.reason.startswith("extended bond network")


def test_periodic_polymer_is_covalent_not_molecule():
    """A C-H chain bonded to its own periodic image along z: an extended network although CH is molecular."""
    positions = [[0, 0, 0], [0, 0, 1.3], [1.07, 0, 0], [1.07, 0, 1.3]]
    chain = Atoms("C2H2", positions=positions, cell=[10, 10, 2.6], pbc=True)
    assert classify_bonding({"C": 1, "H": 1}).structure_type == "molecule"
    assert classify_bonding(chain).structure_type == "covalent"


@pytest.mark.parametrize("bad", [{"Xx": 1}, {"Fe": -1}, {"Fe": 0}])
def test_bad_compositions_raise_input_errors(bad):
    with pytest.raises(InputError):
        classify_bonding(bad)
