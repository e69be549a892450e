"""Seed generation per bonding class, the calcfunctions, and StructureGeneratorWorkChain end to end."""

import pytest
from ase.build import bulk

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.structures.generate import generate_seed_structures
from aiida_autopipe.core.structures.settings import GENERATION_DEFAULTS

FAST = {"volume_strains": [-0.03, 0.03], "shear_strains": [], "n_random": 3, "n_rattle": 2}


@pytest.mark.parametrize(
    ("structure_type", "composition", "methods"),
    [
        ("alloy", {"Cu": 0.75, "Au": 0.25}, {"sqs", "sqs_strained", "sqs_off_stoichiometry"}),
        ("ionic", {"Mg": 0.5, "O": 0.5}, {"random_search"}),
        ("covalent", {"Si": 1.0}, {"input", "rattle"}),
        ("covalent", {"Si": 0.5, "C": 0.5}, {"random_search"}),
        ("molecule", {"C": 6, "H": 6}, {"input", "rattle"}),
    ],
)
def test_each_class_gets_its_generators(structure_type, composition, methods):
    result = generate_seed_structures(structure_type, composition, generation=FAST)
    assert methods <= {record.method for record in result.structures}
    assert result.summary["n_kept"] == len(result.structures) > 0
    assert result.summary["n_generated"] == result.summary["n_kept"] + sum(result.rejections.values())


def test_rattled_copies_of_a_given_ionic_crystal_are_all_kept():
    """Deduplication is for the random cells: the rattled copies are the given polymorph on purpose."""
    rocksalt = bulk("MgO", "rocksalt", a=4.21, cubic=True)
    result = generate_seed_structures("ionic", {"Mg": 0.5, "O": 0.5}, rocksalt, generation=FAST)
    rattled = [record for record in result.structures if record.method == "rattle"]
    assert len(rattled) == FAST["n_rattle"] * len(GENERATION_DEFAULTS["rattle_amplitudes"])
    assert [record.method for record in result.structures].count("input") == 1


def test_given_parent_lattice_is_used_for_the_sqs():
    parent = bulk("Cu", "bcc", a=2.95, cubic=True)
    result = generate_seed_structures(
        "alloy", {"Cu": 0.5, "Zn": 0.5}, parent, {**FAST, "off_stoichiometry": 0}
    )
    sqs = result.structures[0]
    assert sqs.method == "sqs" and len(sqs.atoms) % 2 == 0
    assert sqs.atoms.get_volume() / len(sqs.atoms) == pytest.approx(2.95**3 / 2)


def test_unknown_generation_key_is_an_input_error():
    with pytest.raises(InputError, match="generation"):
        generate_seed_structures("alloy", {"Cu": 0.5, "Au": 0.5}, generation={"n_sqs": 2})


def test_workchain_classifies_generates_and_tags(aiida_profile_clean):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.structure_generator import StructureGeneratorWorkChain

    system = orm.Dict(
        {
            "elements": ["Fe", "Pt"],
            "composition": {"Fe": 0.5, "Pt": 0.5},
            "structure_file": None,
            "structure_type": "auto",
            "melting_point_guess": 1800.0,
        }
    )
    generation = orm.Dict({**FAST, "off_stoichiometry": 0, "volume_strains": [0.03]})
    results, node = run_get_node(StructureGeneratorWorkChain, system=system, generation=generation)
    assert node.is_finished_ok
    structures = results["structures"]
    assert set(structures) == {"sqs", "sqs_strain0"}
    tags = structures["sqs_strain0"].base.extras.get("autopipe_generation")
    assert tags["method"] == "sqs_strained" and tags["parent"] == "sqs"
    assert tags["strain"][0] == pytest.approx(1.03 ** (1 / 3) - 1)
    assert structures["sqs"].base.attributes.get("autopipe_generation")["method"] == "sqs"
    summary = results["summary"].get_dict()
    assert summary["n_kept"] == 2 and summary["methods"] == {"sqs": 1, "sqs_strained": 1}
    assert summary["sqs_max_correlation_deviation"] <= 0.05


def test_workchain_rejects_an_unknown_structure_type(aiida_profile_clean):
    from aiida import orm

    from aiida_autopipe.workflows.structure_generator import validate_system

    message = validate_system(orm.Dict({"composition": {"Fe": 1.0}, "structure_type": "metal"}), None)
    assert "structure_type" in message


@pytest.mark.parametrize(
    ("composition", "formula"),
    [({"C": 6, "H": 6}, "C6H6"), ({"C": 0.2, "H": 0.8}, "CH4"), ({"C": 0.5, "H": 0.5}, "C2H2")],
)
def test_molecule_geometry_from_counts_or_fractions(composition, formula):
    parent = generate_seed_structures("molecule", composition, generation=FAST).structures[0]
    assert parent.method == "input"
    assert parent.atoms.get_chemical_formula(mode="hill") == formula


def test_unknown_molecule_needs_a_structure():
    with pytest.raises(InputError, match=r"system\.structure"):
        generate_seed_structures("molecule", {"C": 7, "H": 3, "F": 5}, generation=FAST)


@pytest.mark.surrogate
def test_workchain_relaxes_random_ionic_cells_with_the_surrogate_runner(aiida_code_installed):
    """Random NaCl cells relaxed by the real `autopipe-surrogate` runner (CHGNet, shipped weights)."""
    import sys
    from pathlib import Path

    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.structure_generator import StructureGeneratorWorkChain

    runner = Path(sys.executable).parent / "autopipe-surrogate"
    assert runner.is_file(), "autopipe-surrogate is not installed in the venv"
    code = aiida_code_installed(filepath_executable=str(runner), default_calc_job_plugin="autopipe.surrogate")
    system = orm.Dict({"composition": {"Na": 0.5, "Cl": 0.5}, "structure_type": "ionic"})
    generation = orm.Dict({"n_random": 2, "random_max_atoms": 4, "seed": 1})
    parameters = orm.Dict({"surrogate": {"requested": "chgnet"}, "relax": {"steps": 5}, "torch_threads": 1})
    results, node = run_get_node(
        StructureGeneratorWorkChain,
        system=system,
        generation=generation,
        surrogate={"code": code, "parameters": parameters},
    )
    assert node.is_finished_ok, node.exit_message
    relaxed = {label: s for label, s in results["structures"].items() if label.endswith("_relaxed")}
    summary = results["relaxation_summary"].get_dict()
    assert summary["n_relaxed"] == 2 and 1 <= len(relaxed) == summary["n_distinct"] <= 2
    for structure in relaxed.values():
        tags = structure.base.extras.get("autopipe_generation")
        assert tags["method"] == "random_search_relaxed" and tags["parent"] in results["structures"]
