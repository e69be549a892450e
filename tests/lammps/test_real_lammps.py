"""A real ML-PACE LAMMPS on a tiny fitted Si potential: halts far from the training set, not inside it.

Skips, naming the reason, without a configured ML-PACE LAMMPS (`mlip-pipe setup lammps`, $AUTOPIPE_LAMMPS).
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from aiida_autopipe.core.baseline import ReferencePotential
from aiida_autopipe.workflows import lammps_md

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def si_diamond(a=5.431):
    return bulk("Si", "diamond", a=a, cubic=True).repeat(2)


def python_model(ace_potential):
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator

    reference = ReferencePotential.from_dict(json.loads(ace_potential["reference"].read_text()))
    calculator = ReferencePlusACECalculator(
        str(ace_potential["potential"]), reference, str(ace_potential["active_set"])
    )
    return calculator, reference


def run_lammps(executable, directory, ace_potential, atoms, **parameters):
    """The workchain's files, run by `lmp` directly: results record, last frame, log."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ace_potential["potential"], directory / lammps_md.POTENTIAL_FILE)
    shutil.copy(ace_potential["active_set"], directory / lammps_md.ACTIVE_SET_FILE)
    reference = ReferencePotential.from_dict(json.loads(ace_potential["reference"].read_text()))
    settings = lammps_md.validated_parameters(parameters)
    elements = lammps_md.structure_elements(atoms)
    (directory / lammps_md.STRUCTURE_FILE).write_text(lammps_md.lammps_data(atoms, elements))
    script = lammps_md.otf_script(elements, list(atoms.get_masses()[:1]), settings, reference)
    (directory / lammps_md.SCRIPT_FILE).write_text(script)
    done = subprocess.run(
        [executable, "-in", lammps_md.SCRIPT_FILE, "-log", "none"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results, frame = lammps_md.otf_results(
        (directory / lammps_md.TRACE_FILE).read_text(),
        (directory / lammps_md.FINAL_DUMP).read_text(),
        done.stdout,
        settings,
    )
    return results, frame, done.stdout


def first_potential_energy(log: str) -> float:
    header = re.search(r"^\s*Step\s+Temp\s+PotEng.*$", log, re.MULTILINE)
    return float(log[header.end() :].split("\n")[1].split()[2])


@pytest.fixture(scope="module")
def training_threshold(ace_potential):
    """A dynamic threshold: the 95th percentile of pyace's per-atom gamma over the training set."""
    from aiida_autopipe.core.pacemaker_input import read_labelled_frames

    calculator, _ = python_model(ace_potential)
    gammas = []
    for frame in read_labelled_frames(ace_potential["labels"]):
        frame = frame.copy()
        frame.calc = calculator
        frame.get_potential_energy()
        gammas.extend(calculator.results["gamma"])
    return float(np.percentile(gammas, 95))


def test_lammps_gamma_and_energy_match_pyace(tmp_path, pace_lammps, ace_potential):
    """Same model in both engines: per-atom gamma and reference + ACE energy (less the e0 constants)."""
    atoms = si_diamond(a=5.35)
    atoms.rattle(0.05, seed=3)
    results, _, log = run_lammps(
        pace_lammps, tmp_path, ace_potential, atoms, steps=1, threshold=1e6, temperature=1.0
    )
    calculator, reference = python_model(ace_potential)
    atoms.calc = calculator
    energy = atoms.get_potential_energy()
    assert results["gamma_trace_steps"] == [0, 1]
    assert np.isclose(results["gamma_trace_max"][0], calculator.results["gamma"].max(), rtol=1e-6)
    e0 = len(atoms) * reference.atomic_energies.get("Si", 0.0)
    assert first_potential_energy(log) + e0 == pytest.approx(energy, abs=1e-4)


def test_lammps_md_inside_the_training_set_does_not_halt(
    tmp_path, pace_lammps, ace_potential, training_threshold
):
    results, frame, _ = run_lammps(
        pace_lammps,
        tmp_path,
        ace_potential,
        si_diamond(),
        temperature=300,
        steps=30,
        threshold=training_threshold,
    )
    assert results["status"] == "completed" and not results["halted"]
    assert results["steps_done"] == 30 and results["gamma_trace_steps"] == list(range(31))
    assert 0 < results["max_gamma"] <= training_threshold
    assert np.isclose(frame.arrays["gamma"].max(), results["final_max_gamma"])


def test_lammps_md_far_outside_the_training_set_halts(
    tmp_path, pace_lammps, ace_potential, training_threshold
):
    """Squeezed diamond Si halts before any step; hot diamond Si halts during the MD, on the dumped frame."""
    compressed, _, _ = run_lammps(
        pace_lammps,
        tmp_path / "compressed",
        ace_potential,
        si_diamond(a=4.75),
        temperature=300,
        steps=30,
        threshold=training_threshold,
    )
    assert compressed["halted"] and compressed["halt_step"] == 0 and compressed["steps_done"] == 0
    assert compressed["max_gamma"] > 2 * training_threshold

    hot, frame, _ = run_lammps(
        pace_lammps,
        tmp_path / "hot",
        ace_potential,
        si_diamond(),
        temperature=3000,
        steps=60,
        threshold=training_threshold,
    )
    assert hot["status"] == "halted" and 0 < hot["halt_step"] < 60 and hot["steps_done"] == hot["halt_step"]
    assert frame.arrays["gamma"].shape == (64,) and frame.arrays["gamma"].max() > training_threshold
    assert np.isclose(frame.arrays["gamma"].max(), hot["gamma_trace_max"][-1])
    assert max(hot["gamma_trace_max"][:-1]) <= training_threshold


def test_workchain_runs_aiida_lammps_and_returns_the_halting_frame(
    aiida_profile_clean, aiida_code_installed, pace_lammps, ace_potential, training_threshold
):
    from aiida import orm
    from aiida.engine import run_get_node

    code = aiida_code_installed(default_calc_job_plugin="lammps.raw", filepath_executable=pace_lammps)
    outputs, node = run_get_node(
        lammps_md.LammpsOtfMdWorkChain,
        lammps={
            "code": code,
            "metadata": {"options": {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}}},
        },
        structure=orm.StructureData(ase=si_diamond(a=4.75)),
        potential=orm.SinglefileData(ace_potential["potential"]),
        active_set=orm.SinglefileData(ace_potential["active_set"]),
        reference=orm.Dict(json.loads(ace_potential["reference"].read_text())),
        parameters={"temperature": 300.0, "steps": 20, "gamma_every": 5, "threshold": training_threshold},
    )
    assert node.is_finished_ok, node.exit_message
    parameters = outputs["output_parameters"].get_dict()
    assert parameters["halted"] and parameters["halt_step"] == 0 and parameters["engine"] == "lammps"
    gamma = outputs["halting_gamma"].get_array("gamma")
    assert gamma.shape == (64,) and gamma.max() > training_threshold
    assert len(outputs["halting_structure"].sites) == 64
    assert outputs["gamma_trace"].get_array("steps").tolist() == [0]


def test_simulation_workchain_runs_its_md_in_lammps(
    aiida_profile_clean, aiida_code_installed, pace_lammps, ace_potential, training_threshold
):
    """With `lammps_code`, Module E's MD goes through aiida-lammps; squeezed Si halts and is cut out."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.simulation import SimulationWorkChain

    lammps = aiida_code_installed(default_calc_job_plugin="lammps.raw", filepath_executable=pace_lammps)
    otf_md = aiida_code_installed(
        default_calc_job_plugin="autopipe.otf_md", filepath_executable=str(BIN / "autopipe-otf-md")
    )
    simulation = {
        "temperature": [300.0, 300.0],
        "temperature_steps": [300.0],
        "pressure": [0.0],
        "timestep_fs": 1.0,
        "md_engine": "lammps",
        "active_learning": {
            "strategy": "on_the_fly_md",
            "surrogate_model": "chgnet",
            "max_generations": 1,
            "converged_generations": 1,
            "uncertainty_threshold": training_threshold,
            "md_steps_per_generation": 20,
        },
    }
    builder = SimulationWorkChain.get_builder_from_protocol(
        otf_md,
        orm.SinglefileData(ace_potential["potential"]),
        orm.SinglefileData(ace_potential["active_set"]),
        {
            "diamond": orm.StructureData(ase=si_diamond()),
            "squeezed": orm.StructureData(ase=si_diamond(a=4.75)),
        },
        simulation,
        r_cut=5.0,
        protocol="fast",
        overrides={"embedding": {"bonding": "covalent"}},
        reference=orm.Dict(json.loads(ace_potential["reference"].read_text())),
        generation=orm.Int(1),
    )
    builder.lammps_code = lammps
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    md_runs = [child for child in node.called if child.process_label == "LammpsOtfMdWorkChain"]
    assert len(md_runs) == 2
    assert set(results["halting_structures"]) == {"md_squeezed_T0"}
    assert results["clusters"]
