"""SurrogateCalculation and ExplorerWorkChain run for real through AiiDA on localhost (tiny MACE model)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.surrogate

RUNNER = Path(sys.executable).parent / "autopipe-surrogate"
MD = {"kind": "md", "ensemble": "nvt", "temperatures": [400, 1500], "steps": 6, "save_every": 2}


@pytest.fixture
def surrogate_code(aiida_code_installed):
    assert RUNNER.is_file(), "autopipe-surrogate is not installed in the venv: run `uv sync`"
    return aiida_code_installed(filepath_executable=str(RUNNER), default_calc_job_plugin="autopipe.surrogate")


@pytest.fixture
def seeds(aiida_profile, cu_seed):
    from aiida import orm

    strained = cu_seed.copy()
    strained.set_cell(cu_seed.cell * 1.03, scale_atoms=True)
    return {"cu_ideal": orm.StructureData(ase=cu_seed), "cu_strained": orm.StructureData(ase=strained)}


def test_surrogate_calculation_runs_md_and_relaxation(surrogate_code, seeds, tiny_mace_model):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.surrogate import SurrogateCalculation

    md = {**MD, "temperatures": [600], "steps": 4}
    parameters = {"tasks": [md, {"kind": "relax", "fmax": 0.02, "steps": 5}], "seed": 1, "torch_threads": 1}
    outputs, node = run_get_node(
        SurrogateCalculation,
        code=surrogate_code,
        structures=seeds,
        parameters=orm.Dict(parameters),
        model=orm.SinglefileData(tiny_mace_model),
    )
    assert node.is_finished_ok, node.exit_message
    results = outputs["output_parameters"].get_dict()
    assert results["surrogate"]["name"] == "mace" and results["surrogate"]["model"].endswith(
        "surrogate.model"
    )
    trajectory = outputs["trajectory"]
    n_frames = len(trajectory.get_array("energies"))
    assert n_frames == results["n_frames"] == 2 * 3 + sum(r["n_frames"] for r in results["runs"][2:])
    assert trajectory.get_array("positions").shape == (4 * n_frames, 3)
    assert set(outputs["relaxed_structures"]) == {"cu_ideal", "cu_strained"}
    labels = {record["structure_label"] for record in results["runs"]}
    assert labels == {"cu_ideal", "cu_strained"}


def test_bad_task_gives_numbered_exit_code(surrogate_code, seeds):
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.surrogate import SurrogateCalculation

    parameters = {"tasks": [{"kind": "md", "ensemble": "nph"}]}
    _, node = run_get_node(SurrogateCalculation, code=surrogate_code, structures=seeds, parameters=parameters)
    assert node.exit_status == SurrogateCalculation.exit_codes.ERROR_INVALID_INPUT.status
    assert "nph" in node.exit_message


def test_explorer_selects_distinct_frames_covering_every_cluster(surrogate_code, seeds, tiny_mace_model):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.explorer import ExplorerWorkChain

    inputs = {
        "surrogate": {
            "code": surrogate_code,
            "structures": seeds,
            "parameters": orm.Dict(
                {"tasks": [MD], "seed": 2, "torch_threads": 1, "descriptor": {"kind": "ace"}}
            ),
            "model": orm.SinglefileData(tiny_mace_model),
        },
        "selection": orm.Dict({"budget": 6, "seed": 0}),
    }
    outputs, node = run_get_node(ExplorerWorkChain, **inputs)
    assert node.is_finished_ok, node.exit_message
    selection = outputs["selection"].get_dict()
    structures = outputs["selected_structures"]
    assert len(structures) == selection["n_selected"] == 6
    assert selection["n_covered_clusters"] == selection["n_nonempty_clusters"]
    assert selection["descriptor"] == "precomputed by the runner"
    frames = sorted(structure.base.attributes.get("trajectory_frame") for structure in structures.values())
    assert frames == sorted(selection["indices"]) and len(set(frames)) == 6
    trajectory = outputs["trajectory"]
    energies = trajectory.get_array("energies")
    for structure in structures.values():
        frame = structure.base.attributes.get("trajectory_frame")
        assert structure.base.attributes.get("surrogate_energy_eV") == pytest.approx(energies[frame])
        assert np.allclose(structure.cell, trajectory.get_array("cells")[frame])
    # every selected structure links back to the selection calcfunction, which links to the trajectory
    creator = next(iter(structures.values())).creator
    assert creator.inputs.trajectory.uuid == trajectory.uuid
