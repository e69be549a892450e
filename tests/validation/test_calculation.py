"""ValidationCalculation and ValidationWorkChain through AiiDA on localhost with a real ACE potential.

Needs the `autopipe-validate` console script and the `autopipe.validation` calculation and parser entry points
of pyproject.toml (installed with `uv sync`).
"""

import json

import numpy as np
import pytest
from ase.build import bulk

QUICK = {
    "relax": {"fmax": 0.005, "steps": 50},
    "eos": {"points": 7},
    "rdf": {"temperatures": [1200], "steps": 60, "equilibration": 20, "sample_every": 10, "min_atoms": 16},
    "phase_relax": {"steps": 30},
}


@pytest.fixture
def model_nodes(aiida_profile_clean, ace_potential):
    from aiida import orm

    return {
        "potential": orm.SinglefileData(ace_potential["potential"]),
        "reference": orm.Dict(json.loads(ace_potential["reference"].read_text())),
        "dataset": orm.SinglefileData(ace_potential["labels"]),
    }


def _tagged(atoms, method):
    from aiida import orm

    from aiida_autopipe.calcfunctions.structures import GENERATION_ATTRIBUTE

    node = orm.StructureData(ase=atoms)
    node.base.attributes.set(GENERATION_ATTRIBUTE, {"method": method})
    return node


def test_calculation_outputs_the_report_the_rdf_and_the_parity_values(model_nodes, validate_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.validation import ValidationCalculation

    diamond = bulk("Si", "diamond", a=5.43, cubic=True)
    results, node = run_get_node(
        ValidationCalculation,
        code=validate_code,
        structure=orm.StructureData(ase=diamond),
        phases={
            "diamond": orm.StructureData(ase=diamond),
            "fcc": orm.StructureData(ase=bulk("Si", "fcc", a=3.9)),
        },
        parameters=orm.Dict(QUICK),
        **model_nodes,
    )
    assert node.is_finished_ok, node.exit_message
    report = results["report"].get_dict()
    assert report["status"] == "completed" and report["n_labelled_frames"] == 26
    assert report["eos"]["bulk_modulus_gpa"] > 0 and report["elastic"]["cubic"]
    assert set(report["phases"]["phases"]) == {"diamond", "fcc"}
    assert report["parity"]["table"]["all"]["energy_meV_per_atom"]["count"] == 26
    rdf = results["rdf"]
    assert {"r", "g_T1200", "g_Si_Si_T1200"} <= set(rdf.get_arraynames())
    assert rdf.get_array("r").shape == rdf.get_array("g_T1200").shape
    parity = results["parity"]
    assert parity.get_array("energy_dft").shape == (26,)
    force_errors = parity.get_array("force_model") - parity.get_array("force_dft")
    assert np.sqrt(np.mean(force_errors**2)) * 1000 == pytest.approx(
        report["parity"]["table"]["all"]["force_meV_per_angstrom"]["rmse"]
    )


def test_bad_parameters_give_the_invalid_input_exit_code(model_nodes, validate_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.validation import ValidationCalculation

    _, node = run_get_node(
        ValidationCalculation,
        code=validate_code,
        potential=model_nodes["potential"],
        parameters=orm.Dict({"rdf": {"temperatures": [-10]}}),
    )
    assert node.exit_status == ValidationCalculation.exit_codes.ERROR_INVALID_INPUT.status
    assert "rdf.temperatures" in node.exit_message


def test_workchain_ranks_distinct_seeds_and_runs_the_rdf_at_the_highest_temperature(
    model_nodes, validate_code
):
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.validation import ValidationWorkChain, reference_crystal

    diamond = bulk("Si", "diamond", a=5.43, cubic=True)
    rattled = diamond.copy()
    rattled.rattle(0.05, seed=1)
    seeds = {"crystal": _tagged(diamond, "input"), "crystal_rattle": _tagged(rattled, "rattle")}
    crystal, origin = reference_crystal(seeds)
    overrides = {**QUICK, "rdf": {key: v for key, v in QUICK["rdf"].items() if key != "temperatures"}}
    builder = ValidationWorkChain.get_builder_from_protocol(
        validate_code,
        {"potential_yaml": model_nodes["potential"], "reference": model_nodes["reference"]},
        dataset=model_nodes["dataset"],
        seed_structures=seeds,
        temperature_steps=[300.0, 900.0],
        protocol="fast",
        overrides=overrides,
        structure=crystal,
        structure_origin=origin,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    report = results["report"].get_dict()
    assert list(report["phases"]["phases"]) == ["crystal"]
    assert report["reference_structure"] == "Module A's crystal seed 'crystal' (Si8): no structure was given"
    assert "GPa; crystal: Module A's crystal seed 'crystal'" in "\n".join(log.message for log in _logs(node))
    assert [run["temperature_K"] for run in report["rdf"]["runs"]] == [900.0]
    assert "g_T900" in results["rdf"].get_arraynames()


def _logs(node):
    from aiida import orm

    return orm.Log.collection.get_logs_for(node)


def test_reference_crystal_is_the_users_structure_else_the_crystal_seed_never_the_lowest_phase(aiida_profile):
    from aiida import orm
    from ase.build import molecule

    from aiida_autopipe.workflows.validation import reference_crystal

    diamond = bulk("Si", "diamond", a=5.43, cubic=True)
    # A poor model can rank the melt-quenched cell lowest: it must never become the EOS crystal.
    seeds = {
        "a_melt_quench": _tagged(bulk("Si", "fcc", a=3.9), "melt_quench"),
        "crystal": _tagged(diamond, "input"),
        "crystal_rattle": _tagged(diamond, "rattle"),
    }
    crystal, origin = reference_crystal(seeds)
    assert crystal is seeds["crystal"] and origin.startswith("Module A's crystal seed 'crystal' (Si8)")

    given = orm.StructureData(ase=bulk("Si", "diamond", a=5.5))
    crystal, origin = reference_crystal(seeds, given)
    assert crystal is given and origin == "the input structure (Si2, system.structure)"

    # An alloy has no prototype seed: its nominal-composition SQS is the crystal, not a strained or
    # off-stoichiometric variant.
    sqs = bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 2, 2)
    sqs.symbols[::2] = "Au"
    seeds = {
        "sqs_off_stoichiometry_0": _tagged(sqs, "sqs_off_stoichiometry"),
        "sqs_strain_0": _tagged(sqs, "sqs_strained"),
        "sqs": _tagged(sqs, "sqs"),
    }
    crystal, origin = reference_crystal(seeds)
    assert crystal is seeds["sqs"] and origin.startswith("Module A's SQS seed 'sqs' (Au16Cu16)")

    water = molecule("H2O", vacuum=5.0)
    seeds = {"molecule": _tagged(water, "input"), "molecule_rattle": _tagged(water, "rattle")}
    crystal, origin = reference_crystal(seeds)
    assert crystal is None and "the model's lowest periodic phase" in origin


def test_distinct_phases_leave_out_perturbed_copies(aiida_profile):
    from aiida import orm

    from aiida_autopipe.workflows.validation import distinct_phases

    crystal = bulk("Si", "diamond", a=5.43)
    seeds = {
        "crystal": _tagged(crystal, "input"),
        "crystal_rattle": _tagged(crystal, "rattle"),
        "crystal_strain0": _tagged(crystal, "input_strained"),
        "crystal_nm": _tagged(crystal, "normal_modes"),
        "random_0": _tagged(crystal, "random_search"),
        "by_hand": orm.StructureData(ase=crystal),
    }
    assert sorted(distinct_phases(seeds)) == ["by_hand", "crystal", "random_0"]
