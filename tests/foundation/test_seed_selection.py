"""Which of Module A's structures seed exploration and on-the-fly MD when the seed budget is small."""

import pytest
from ase.build import bulk

SEEDS = {  # label: generation method, as Module A names them for a covalent crystal
    "crystal": "input",
    "crystal_melt0": "melt",
    "crystal_melt_quench0": "melt_quench",
    "crystal_melt_quench1": "melt_quench",
    "crystal_rattle_0": "rattle",
    "crystal_rattle_1": "rattle",
}


@pytest.fixture
def seeds(aiida_profile):
    from aiida import orm

    structures = {}
    for label, method in SEEDS.items():
        structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True))
        structure.base.attributes.set("autopipe_generation", {"method": method})
        structures[label] = structure
    return structures


def test_the_crystal_and_its_variants_come_before_glasses_and_liquids(seeds):
    from aiida_autopipe.workflows.active_learning import select_seeds

    first_three = ["crystal", "crystal_rattle_0", "crystal_melt_quench0"]
    assert list(select_seeds(seeds, 3, liquid=True)) == first_three
    assert list(select_seeds(seeds, 4, liquid=True))[-1] == "crystal_melt0"
    assert list(select_seeds(seeds, 5, liquid=True))[-1] == "crystal_rattle_1"  # round robin goes on


def test_liquid_snapshots_are_left_out_below_the_melt(seeds):
    from aiida_autopipe.workflows.active_learning import select_seeds

    chosen = select_seeds(seeds, len(seeds), liquid=False)
    assert "crystal_melt0" not in chosen
    assert len(chosen) == len(seeds) - 1


def test_an_alloy_budget_brackets_the_sqs_volume_before_changing_composition(aiida_profile):
    from ase.build import bulk

    from aiida_autopipe.calcfunctions.structures import tagged_structure
    from aiida_autopipe.core.structures.base import GeneratedStructure, strain_variants
    from aiida_autopipe.workflows.active_learning import select_seeds

    sqs = GeneratedStructure(bulk("Al", "fcc", a=4.1, cubic=True), "sqs", "sqs")
    off = GeneratedStructure(bulk("Al", "fcc", a=4.1, cubic=True), "sqs_off_stoichiometry", "sqs_offstoich0")
    records = [sqs, off]
    for parent in (sqs, off):  # Module A's default strains: dV/V -6, -3, +3, +6 %, then three shears
        records += strain_variants(parent, (-0.06, -0.03, 0.03, 0.06), (0.02,))
    seeds = {record.label: tagged_structure(record) for record in records}

    assert list(select_seeds(seeds, 3, liquid=False)) == ["sqs", "sqs_strain1", "sqs_strain2"]  # -3, +3 %
    assert list(select_seeds(seeds, 8, liquid=False)) == [
        "sqs",
        "sqs_strain1",
        "sqs_strain2",
        "sqs_offstoich0",
        "sqs_offstoich0_strain1",
        "sqs_offstoich0_strain2",
        "sqs_strain0",  # the next turn: -6 %, +6 %
        "sqs_strain3",
    ]
    assert len(select_seeds(seeds, 4, liquid=False)) == 4  # a pair is cut short by the budget
