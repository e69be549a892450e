"""Melt-quench and normal-mode sampling through the `autopipe-surrogate` runner with CHGNet (weights shipped
in its wheel), and StructureGeneratorWorkChain running them as real SurrogateCalculation CalcJobs.

CHGNet, not the explorer's tiny MACE model: that one is fitted to EMT copper and knows neither Si nor H2O.
Sizes keep each test near half a minute on two shared cores (CHGNet: about 0.08 s per 8-16-atom Si call).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.build import bulk, molecule
from ase.io import write
from ase.neighborlist import neighbor_list
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from aiida_autopipe.core.structures.sanity import check_structure
from aiida_autopipe.runners import surrogate as runner

CHGNET = {"requested": "chgnet", "device": "cpu"}
#: Diamond Si has no neighbour between its first (2.35 Angstrom) and second (3.84 Angstrom) shells.
DIAMOND_GAP = (2.75, 3.55)


def run_runner(workdir: Path, structures, tasks, seed=0):
    write(workdir / "structures.extxyz", structures)
    config = {"surrogate": CHGNET, "structures": "structures.extxyz", "tasks": tasks, "seed": seed}
    code, results = runner.run({**config, "torch_threads": 1}, workdir)
    return code, results, dict(np.load(workdir / runner.TRAJECTORY_FILE))


def pairs_in_diamond_gap(atoms) -> int:
    distances = neighbor_list("d", atoms, DIAMOND_GAP[1])
    return int(np.sum(distances > DIAMOND_GAP[0]))


def test_new_task_kinds_are_validated():
    with pytest.raises(ValueError, match="melt_temperature"):
        runner.expand_runs([{"kind": "melt_quench", "quench_temperature": 300}], 1)
    with pytest.raises(ValueError, match="temperatures"):
        runner.expand_runs([{"kind": "normal_modes", "temperatures": [0]}], 1)
    runs = runner.expand_runs([{"kind": "melt_quench", "melt_temperature": 2000, "repeats": 2}], 3)
    assert [(run["structure_index"], run["repeat"]) for run in runs] == [
        (s, r) for s in range(3) for r in range(2)
    ]
    assert {run["temperature"] for run in runs} == {2000.0}


@pytest.mark.surrogate
def test_runner_melt_quench_of_silicon_is_not_crystalline(tmp_path):
    """16-atom diamond Si at fixed volume: melt at 3500 K for 0.2 ps, quench to 300 K in 0.12 ps, 20 FIRE
    steps (180 CHGNet calls). Trial runs (two seeds each, 100+60 and 150+100 steps) gave 3- to 6-fold
    coordination; an 8-atom cell melted at 2530 K sometimes recrystallised, hence 16 atoms and 3500 K."""
    crystal = bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 1, 1))
    task = {
        "kind": "melt_quench",
        "melt_temperature": 3500.0,
        "quench_temperature": 300.0,
        "melt_steps": 100,
        "quench_steps": 60,
        "timestep": 2.0,
        "n_melt_snapshots": 1,
        "relax_steps": 20,
    }
    code, results, arrays = run_runner(tmp_path, [crystal], [task])
    assert code == runner.EXIT_OK, results
    (record,) = results["runs"]
    assert record["status"] == "completed" and record["kind"] == "melt_quench"
    melt, quenched = record["structures"]
    assert (melt["method"], melt["temperature"], melt["label"]) == ("melt", 3500.0, "structure_0_mq0_melt0")
    assert (quenched["method"], quenched["temperature"]) == ("melt_quench", 300.0)
    assert quenched["details"]["relax_steps"] <= 20 and quenched["details"]["quench_rate_K_per_ps"] > 0
    assert record["n_frames"] == 2 and arrays["energies"].shape == (2,)

    glass = runner.frame_atoms(arrays, quenched["frame"])
    matcher, reference = StructureMatcher(), AseAtomsAdaptor.get_structure(crystal)
    jiggled = crystal.copy()
    jiggled.rattle(0.05, seed=1)
    assert matcher.fit(reference, AseAtomsAdaptor.get_structure(jiggled))  # the check can say "crystal"
    assert pairs_in_diamond_gap(jiggled) == 0
    assert not matcher.fit(reference, AseAtomsAdaptor.get_structure(glass))
    assert pairs_in_diamond_gap(glass) >= len(glass)  # at least one gap pair per atom
    assert check_structure(glass).passed
    assert np.allclose(glass.cell, crystal.cell)  # fixed-volume quench


@pytest.mark.surrogate
def test_runner_normal_modes_of_water_obey_equipartition(tmp_path):
    """H2O on CHGNet: relaxed, dense Hessian (54 force calls), three real modes; at 30 K the surrogate's own
    energy above the minimum averages (3N - 6) kT / 2 = 1.5 kT with variance 1.5 (kT)^2 (chi-square with three
    degrees of freedom), which only holds when the Hessian, the modes and the amplitudes are all right."""
    temperature, n_samples = 30.0, 200
    task = {"kind": "normal_modes", "temperatures": [temperature], "n_samples": n_samples}
    code, results, arrays = run_runner(tmp_path, [molecule("H2O")], [task])
    assert code == runner.EXIT_OK, results
    (record,) = results["runs"]
    assert record["status"] == "completed" and record["n_samples_unstable"] == 0
    assert len(record["wavenumbers_cm"]) == 3
    assert 1000 < record["wavenumbers_cm"][0] < 2000 < 3000 < min(record["wavenumbers_cm"][1:]) < 4500
    minimum, *samples = record["structures"]
    assert minimum["method"] == "surrogate_relaxed" and len(samples) == n_samples
    assert {sample["method"] for sample in samples} == {"normal_modes"}
    assert {sample["parent"] for sample in samples} == {minimum["label"]}

    kt = units.kB * temperature
    excess = (arrays["energies"][1:] - arrays["energies"][0]) / kt
    standard_error = excess.std() / np.sqrt(n_samples)
    assert abs(excess.mean() - 1.5) < 4 * standard_error + 0.05
    assert excess.var() == pytest.approx(1.5, rel=0.4)

    relaxed = runner.frame_atoms(arrays, minimum["frame"])
    masses = relaxed.get_masses()
    for sample in samples[:20]:
        displaced = runner.frame_atoms(arrays, sample["frame"])
        momentum = (masses[:, None] * (displaced.positions - relaxed.positions)).sum(axis=0)
        assert np.abs(momentum).max() < 1e-4  # no translation (float32 surrogate arrays aside)


@pytest.fixture
def runner_code(aiida_code_installed):
    executable = Path(sys.executable).parent / "autopipe-surrogate"
    assert executable.is_file(), "autopipe-surrogate is not installed in the venv"
    return aiida_code_installed(
        filepath_executable=str(executable), default_calc_job_plugin="autopipe.surrogate"
    )


def run_generator(system: dict, generation: dict, code):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.structure_generator import StructureGeneratorWorkChain

    return run_get_node(
        StructureGeneratorWorkChain,
        system=orm.Dict(system),
        generation=orm.Dict(generation),
        surrogate={"code": code, "parameters": orm.Dict({"surrogate": CHGNET, "torch_threads": 1})},
    )


def called_surrogate_jobs(node) -> dict:
    from aiida.common.links import LinkType

    from aiida_autopipe.calculations.surrogate import SurrogateCalculation

    return {
        link.link_label: link.node
        for link in node.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()
        if link.node.process_class is SurrogateCalculation
    }


@pytest.mark.surrogate
def test_workchain_melt_quenches_covalent_silicon_through_the_runner(runner_code):
    """8-atom Si crystal: rattles in-process; one short melt-quench in a real SurrogateCalculation."""
    generation = {
        "min_crystal_atoms": 8,
        "n_rattle": 1,
        "rattle_amplitudes": [0.1],
        "melt_temperature": 3000.0,
        "melt_steps": 20,
        "quench_steps": 20,
        "n_melt_quench": 1,
        "n_melt_snapshots": 1,
        "melt_relax_steps": 5,
    }
    results, node = run_generator({"composition": {"Si": 1.0}}, generation, runner_code)
    assert node.is_finished_ok, node.exit_message
    jobs = called_surrogate_jobs(node)
    assert set(jobs) == {"melt_quench"} and jobs["melt_quench"].is_finished_ok
    tags = {label: s.base.extras.get("autopipe_generation") for label, s in results["structures"].items()}
    assert tags["crystal_mq0"]["method"] == "melt_quench" and tags["crystal_mq0"]["parent"] == "crystal"
    assert (tags["crystal_mq0_melt0"]["method"], tags["crystal_mq0_melt0"]["temperature"]) == ("melt", 3000.0)
    assert {"input", "rattle"} <= {tag["method"] for tag in tags.values()}
    summary = results["sampling_summary"]["melt_quench"].get_dict()
    assert summary["n_generated"] == 2 == summary["n_kept"] + sum(summary["rejections"].values())
    for label in ("crystal_mq0", "crystal_mq0_melt0"):
        assert check_structure(results["structures"][label].get_ase()).passed


@pytest.mark.surrogate
def test_workchain_samples_molecule_normal_modes_through_the_runner(runner_code):
    """Water from its composition (G2 geometry): normal-mode samples at two temperatures from a real
    SurrogateCalculation, tagged with temperature and with the surrogate-relaxed molecule as parent."""
    generation = {"n_rattle": 1, "normal_mode_temperatures": [100.0, 500.0], "n_normal_mode": 2}
    results, node = run_generator({"composition": {"H": 2, "O": 1}}, generation, runner_code)
    assert node.is_finished_ok, node.exit_message
    assert set(called_surrogate_jobs(node)) == {"normal_modes"}
    tags = {label: s.base.extras.get("autopipe_generation") for label, s in results["structures"].items()}
    sampled = {label: tag for label, tag in tags.items() if tag["method"] == "normal_modes"}
    assert sorted(tag["temperature"] for tag in sampled.values()) == [100.0, 100.0, 500.0, 500.0]
    assert {tag["parent"] for tag in sampled.values()} == {"molecule_relaxed"}
    assert tags["molecule_relaxed"]["method"] == "surrogate_relaxed"
    assert all(tag["details"]["n_modes"] == 3 for tag in sampled.values())
    summary = results["sampling_summary"]["normal_modes"].get_dict()
    assert summary["methods"] == {"surrogate_relaxed": 1, "normal_modes": 4}
