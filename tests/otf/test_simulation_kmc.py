"""SimulationWorkChain with kMC beside MD: saddle searches with the real ACE potential, uncertain saddles
embedded for labelling (localhost, the installed `autopipe-kmc` and `autopipe-otf-md` runners)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from otf_helpers import si_diamond

SIMULATION = {
    "temperature": [300.0, 600.0],
    "temperature_steps": [300.0],
    "pressure": [0.0],
    "timestep_fs": 1.0,
    "active_learning": {
        "strategy": "on_the_fly_md_kmc",
        "surrogate_model": "chgnet",
        "max_generations": 5,
        "converged_generations": 2,
        # Fixed: the perfect crystal stays far below it (max gamma about 0.6), a vacancy-hop saddle of this
        # potential, fitted on 2-atom cells only, far above.
        "uncertainty_threshold": 3.0,
        "md_steps_per_generation": 5,
    },
}


@pytest.fixture
def kmc_code(aiida_code_installed):
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.kmc",
        filepath_executable=str(Path(sys.executable).parent / "autopipe-kmc"),
    )


def test_uncertain_kmc_saddles_go_to_labelling(aiida_profile_clean, ace_potential, otf_code, kmc_code):
    import json

    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_code,
        orm.SinglefileData(ace_potential["potential"]),
        orm.SinglefileData(ace_potential["active_set"]),
        {"diamond": orm.StructureData(ase=si_diamond())},
        SIMULATION,
        r_cut=5.0,
        overrides={
            "md_parameters": {"timing_steps": 0},
            "embedding": {"bonding": "covalent", "relax_buffer": False},
            "kmc_parameters": {"steps": 1000, "n_records": 10, "fmax": 0.05},
        },
        kmc_code=kmc_code,
        reference=orm.Dict(json.loads(ace_potential["reference"].read_text())),
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    (md_run,) = summary["runs"]
    assert not md_run["halted"]  # the crystal itself is known: only the saddles are new
    (kmc_run,) = summary["kmc_runs"]
    assert kmc_run["temperature"] == 300.0 and kmc_run["n_uncertain_saddles"] >= 1
    (search,) = [child for child in node.called if child.process_label == "KmcCalculation"]
    assert search.inputs.parameters["threshold"] == 3.0 and search.inputs.potential.uuid
    found = search.outputs.output_parameters.get_dict()
    assert found["n_candidates"] == 4  # the four bonds of the removed Si atom
    assert found["crystal_max_gamma"] < 3.0 < min(found["uncertain_max_gamma"])

    saddles = results["uncertain_saddles"]
    assert len(saddles) == kmc_run["n_uncertain_saddles"] and not summary["converged"]
    assert len(saddles["kmc_diamond_saddle_0"].sites) == 63  # the cell with its vacancy
    from_saddles = [label for label in results["clusters"] if label.startswith("kmc_diamond_saddle_")]
    assert from_saddles and len(from_saddles) == summary["n_clusters"]
    for label in from_saddles:
        cluster = results["clusters"][label]
        creator = cluster.creator  # provenance: saddle + its gamma -> embedding -> cluster to label
        assert creator.process_label == "embed_halting_frame"
        assert creator.inputs.structure.uuid in {saddle.uuid for saddle in saddles.values()}
        gamma = creator.inputs.gamma.get_array("gamma")
        weights = np.array(cluster.base.attributes.get("autopipe_force_weights"))
        # Forces are learnt on the uncertain core: here every atom of the strained vacancy cell.
        assert gamma.max() > 3.0 and weights.sum() >= np.sum(gamma > 3.0) >= 1
