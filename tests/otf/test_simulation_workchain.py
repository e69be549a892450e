"""OtfMdCalculation and SimulationWorkChain through AiiDA on localhost with a real ACE potential."""

import numpy as np
import pytest
from otf_helpers import si_diamond

SIMULATION = {
    "temperature": [300.0, 3000.0],
    "temperature_steps": [300.0, 3000.0],
    "pressure": [0.0],
    "timestep_fs": 1.0,
    "active_learning": {
        "strategy": "on_the_fly_md",
        "surrogate_model": "chgnet",
        "max_generations": 5,
        "converged_generations": 2,
        "uncertainty_threshold": "dynamic_95percentile",
        "md_steps_per_generation": 30,
    },
}


@pytest.fixture
def potential_nodes(aiida_profile_clean, ace_potential):
    import json

    from aiida import orm

    return {
        "potential": orm.SinglefileData(ace_potential["potential"]),
        "active_set": orm.SinglefileData(ace_potential["active_set"]),
        "reference": orm.Dict(json.loads(ace_potential["reference"].read_text())),
    }


@pytest.fixture
def held_out_gammas(potential_nodes, ace_potential):
    """What the fit's job outputs as `held_out_gammas`: 5-fold held-out grades of the training frames."""
    from aiida import orm

    from aiida_autopipe.core.held_out_gamma import held_out_gammas as grade
    from aiida_autopipe.core.pacemaker_input import read_labelled_frames

    grades = grade(str(ace_potential["potential"]), read_labelled_frames(ace_potential["labels"]), 5, 0)
    node = orm.ArrayData()
    node.set_array("gamma", grades.gamma)
    node.set_array("frame_index", grades.frame_index)
    node.set_array("fold", grades.fold)
    return node


def test_workchain_returns_embedded_clusters_when_md_halts(potential_nodes, otf_code, held_out_gammas):
    """300 K stays inside the training set; 3000 K halts and its uncertain region comes back embedded."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_code,
        potential_nodes["potential"],
        potential_nodes["active_set"],
        {"diamond": orm.StructureData(ase=si_diamond())},
        SIMULATION,
        r_cut=5.0,
        overrides={
            "md_parameters": {"timing_steps": 2},
            # A cut-out of the 64-atom frame is larger than the frame: keep it to test the cut-out path.
            "embedding": {"bonding": "covalent", "relax_buffer": False, "prefer_whole_frame": False},
        },
        reference=potential_nodes["reference"],
        training_gammas=held_out_gammas,
        generation=orm.Int(3),
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    threshold = results["threshold"].get_dict()
    assert threshold["mode"] == "dynamic" and threshold["percentile"] == 95.0 and threshold["generation"] == 3
    assert (
        threshold["statistic"] == "frame_max"
        and threshold["n_gammas"] == held_out_gammas.get_array("fold").size
    )
    assert results["threshold"].creator.inputs.gammas.uuid == held_out_gammas.uuid
    summary = results["summary"].get_dict()
    runs = {run["temperature"]: run for run in summary["runs"]}
    assert not runs[300.0]["halted"] and runs[300.0]["steps_done"] == 30
    assert runs[300.0]["max_gamma"] <= threshold["threshold"]
    assert runs[3000.0]["halted"] and runs[3000.0]["max_gamma"] > threshold["threshold"]
    assert not summary["converged"] and summary["n_clusters"] == len(results["clusters"]) >= 1
    assert set(results["halting_structures"]) == {"md_diamond_T1"}

    for label, cluster in results["clusters"].items():
        assert label.startswith("md_diamond_T1_cluster_")
        weights = np.array(cluster.base.attributes.get("autopipe_force_weights"))
        regions = cluster.base.attributes.get("autopipe_regions")
        assert weights.shape == (len(cluster.sites),) and set(regions) == {"core", "buffer", "cap"}
        assert np.array_equal(weights, np.array([r == "core" for r in regions], dtype=float))
        assert cluster.base.attributes.get("autopipe_charge_method") == "not_applicable"
        assert cluster.base.attributes.get("autopipe_tot_charge") == 0.0
        # Provenance: halting frame + gamma -> embedding calcfunction -> cluster.
        creator = cluster.creator
        assert creator.process_label == "embed_halting_frame"
        assert creator.inputs.threshold.value == pytest.approx(threshold["threshold"])
    md_runs = [child for child in node.called if child.process_label == "OtfMdCalculation"]
    assert len(md_runs) == 2
    assert all(
        child.outputs.output_parameters["timing"]["us_per_atom_step_with_gamma"] > 0 for child in md_runs
    )


def test_generation_where_nothing_halts_returns_no_cluster(potential_nodes, otf_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    simulation = {
        **SIMULATION,
        "temperature_steps": [300.0],
        "active_learning": {
            **SIMULATION["active_learning"],
            "uncertainty_threshold": 5.0,
            "md_steps_per_generation": 10,
        },
    }
    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_code,
        potential_nodes["potential"],
        potential_nodes["active_set"],
        {"diamond": orm.StructureData(ase=si_diamond())},
        simulation,
        r_cut=5.0,
        overrides={"md_parameters": {"timing_steps": 0}},
        reference=potential_nodes["reference"],
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    assert summary["converged"] and summary["n_clusters"] == 0 and not results.get("clusters")
    assert summary["threshold"]["mode"] == "fixed" and summary["threshold"]["threshold"] == 5.0


def test_dynamic_threshold_without_training_gammas_is_an_exit_code(potential_nodes, otf_code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_code,
        potential_nodes["potential"],
        potential_nodes["active_set"],
        {"diamond": orm.StructureData(ase=si_diamond())},
        SIMULATION,
        r_cut=5.0,
    )
    _, node = run_get_node(builder)
    assert node.exit_status == SimulationWorkChain.exit_codes.ERROR_NO_TRAINING_GAMMAS.status


def test_calculation_exit_codes(potential_nodes, otf_code, aiida_code_installed, tmp_path):
    """A runner that rejects its input, and one that crashes before writing anything."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.otf_md import OtfMdCalculation

    inputs = {
        "code": otf_code,
        "structure": orm.StructureData(ase=si_diamond()),
        "potential": potential_nodes["potential"],
        "active_set": potential_nodes["active_set"],
        "parameters": orm.Dict({"steps": 5, "threshold": 5.0, "timestep": -1.0}),
    }
    _, node = run_get_node(OtfMdCalculation, **inputs)
    assert node.exit_status == OtfMdCalculation.exit_codes.ERROR_INVALID_INPUT.status
    assert "timestep" in node.exit_message

    crash = tmp_path / "crash.sh"
    crash.write_text("#!/bin/bash\necho 'Segmentation fault' >&2\nexit 139\n")
    crash.chmod(0o755)
    crashing = aiida_code_installed(default_calc_job_plugin="autopipe.otf_md", filepath_executable=str(crash))
    _, node = run_get_node(OtfMdCalculation, **{**inputs, "code": crashing})
    assert node.exit_status == OtfMdCalculation.exit_codes.ERROR_NO_RESULTS.status
    assert "Segmentation fault" in node.exit_message


def test_threshold_calcfunction_records_the_percentile(aiida_profile_clean):
    """The stored record of a generation: percentile of synthetic gammas, clipped by the floor."""
    from aiida import orm

    from aiida_autopipe.calcfunctions.threshold import generation_threshold

    gammas = orm.ArrayData()
    gammas.set_array("gamma", np.random.default_rng(0).lognormal(0.5, 0.4, 5000))
    record = generation_threshold(
        orm.Dict({"uncertainty_threshold": "dynamic_97percentile"}), orm.Int(1), gammas
    )
    assert record["threshold"] == pytest.approx(np.percentile(gammas.get_array("gamma"), 97))
    assert record["n_gammas"] == 5000 and record.creator.inputs.gammas.uuid == gammas.uuid
    assert record["statistic"] == "frame_max"  # without frame_index each atom is its own frame
    strict = generation_threshold(
        orm.Dict({"uncertainty_threshold": "dynamic_95percentile", "gamma_floor": 5.0}), orm.Int(2), gammas
    )
    assert strict["threshold"] == 5.0 and strict["clipped"] == "floor"


@pytest.mark.surrogate
def test_buffer_relaxed_with_chgnet_in_the_md_job(potential_nodes, otf_code, held_out_gammas):
    """relax_buffer: the MD job cuts the halting frame and relaxes the buffer with CHGNet, core untouched."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.core.embedding.embed import REGION_ARRAY
    from aiida_autopipe.runners.otf_md import embed_frame
    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    simulation = {**SIMULATION, "temperature_steps": [3000.0]}
    relax = {"surrogate": {"requested": "chgnet", "device": "cpu"}, "fmax": 0.05, "steps": 3}
    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_code,
        potential_nodes["potential"],
        potential_nodes["active_set"],
        {"diamond": orm.StructureData(ase=si_diamond())},
        simulation,
        r_cut=3.0,  # below the ACE cutoff only to keep the CHGNet relaxation quick on a CPU
        overrides={
            "md_parameters": {"timing_steps": 0},
            "embedding": {
                "bonding": "covalent",
                "relax_buffer": True,
                "relax": relax,
                "prefer_whole_frame": False,
            },
        },
        reference=potential_nodes["reference"],
        training_gammas=held_out_gammas,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    (md,) = [child for child in node.called if child.process_label == "OtfMdCalculation"]
    assert md.outputs.output_parameters["surrogate"]["name"] == "chgnet"
    halting = md.outputs.halting_structure.get_ase()
    threshold = results["threshold"]["threshold"]
    cuts = embed_frame(
        halting,
        md.outputs.halting_gamma.get_array("gamma"),
        threshold,
        {"r_cut": 3.0, "bonding": "covalent", "prefer_whole_frame": False},
    )
    clusters = [results["clusters"][label] for label in sorted(results["clusters"])]
    assert len(clusters) == len(cuts) >= 1
    for cluster, cut in zip(clusters, cuts, strict=True):
        assert cluster.creator.uuid == md.uuid
        assert cluster.base.attributes.get("autopipe_embedding")["buffer_relaxed"]
        positions = cluster.get_ase().positions
        core = cut.arrays[REGION_ARRAY] == "core"
        assert cluster.base.attributes.get("autopipe_regions") == cut.arrays[REGION_ARRAY].tolist()
        assert np.allclose(positions[core], cut.positions[core], atol=1e-6)
        assert np.abs(positions[~core] - cut.positions[~core]).max() > 1e-4
