"""`autopipe-surrogate`: universal-surrogate MD and relaxations, files in, files out (no AiiDA import).

Run by `SurrogateCalculation` on any Computer (a laptop, a GPU node of a cluster), so exploration never blocks
a daemon worker. Input: a YAML/JSON file naming the surrogate, the structures (extxyz) and the tasks:

    surrogate: {requested: mace_mp, device: auto}      # or a .model path, or chgnet
    structures: structures.extxyz
    structure_labels: [seed_0, seed_1]                  # optional, echoed in results.json
    seed: 0
    tasks:
      - {kind: md, ensemble: nvt, temperatures: [300, 900], steps: 200, timestep: 1.0, save_every: 10}
      - {kind: md, ensemble: npt, temperatures: [600], pressures: [0.0, 5.0], steps: 200, barostat_time: 500}
      - {kind: relax, fmax: 0.05, steps: 200, relax_cell: true}
      - {kind: melt_quench, melt_temperature: 2500, quench_temperature: 300, melt_steps: 1000,
         quench_steps: 1000, timestep: 2.0, n_melt_snapshots: 2, repeats: 1, relax_steps: 100}
      - {kind: normal_modes, temperatures: [100, 300], n_samples: 4, cutoff: null}
    descriptor: {kind: ace, r_cut: 5.0}                 # optional: per-frame descriptors for DIRECT
    torch_threads: 1                                    # optional: CPU threads for the surrogate

Units: K, GPa, fs, eV/Angstrom. Every (structure, task, temperature, pressure) is one run; a melt-quench
repeat is one run; a normal-mode task is one run per structure (one Hessian, all temperatures). Melt-quench
and normal-mode runs generate structures with the core generators (core/structures/melt_quench.py,
normal_modes.py) and save only those frames, each described (label, method, parent, temperature, details)
in the run's `structures` list. Output:
`trajectory.npz` (all saved frames of all runs, flat arrays: positions/numbers/forces stacked over frames
with `n_atoms` per frame; cells, pbc, energies, stress (Voigt, eV/Angstrom^3), temperatures, run_index per
frame) and `results.json` (status, the resolved surrogate and why, one record per run). Exit status:
0 done, 2 invalid input, 3 surrogate unavailable, 4 every run unstable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

EXIT_OK = 0
EXIT_INVALID_INPUT = 2
EXIT_SURROGATE_UNAVAILABLE = 3
EXIT_ALL_UNSTABLE = 4

TRAJECTORY_FILE = "trajectory.npz"
RESULTS_FILE = "results.json"

MD_DEFAULTS = {
    "ensemble": "nvt",
    "temperatures": [300.0],
    "pressures": [0.0],
    "steps": 100,
    "timestep": 1.0,
    "save_every": 10,
    "friction": 0.01,
    "max_force": 50.0,
}
RELAX_DEFAULTS = {"fmax": 0.05, "steps": 200, "relax_cell": True, "save_every": 10, "max_force": 50.0}
MELT_QUENCH_DEFAULTS = {
    "melt_temperature": None,  # required
    "quench_temperature": 300.0,
    "melt_steps": 1000,
    "quench_steps": 1000,
    "timestep": 2.0,
    "n_melt_snapshots": 0,
    "repeats": 1,  # independent quenches (different seeds) per structure
    "relax_steps": 0,  # FIRE steps relaxing the quenched structure; 0: keep it as quenched
    "fmax": 0.05,
    "relax_cell": False,
    "max_force": 50.0,
}
NORMAL_MODE_DEFAULTS = {
    "temperatures": [300.0],
    "n_samples": 4,  # per temperature
    "displacement": 0.005,  # finite-difference step, Angstrom
    "cutoff": None,  # None: dense Hessian (6N force calls); else compressed (core/structures/normal_modes.py)
    "relax_fmax": 0.005,  # the Hessian is taken at the surrogate's minimum
    "relax_steps": 500,
    "vacuum": 8.0,  # Angstrom around a molecule given without a cell (surrogates built for crystals need one)
    "max_force": 50.0,
}
TASK_KINDS = ("md", "relax", "melt_quench", "normal_modes")


class Unstable(RuntimeError):
    """The surrogate produced non-finite or absurd forces: the run is stopped, its earlier frames are kept."""


class Recorder:
    """Collects frames of all runs into flat arrays (one trajectory file, not a file per frame)."""

    def __init__(self):
        self.per_atom = {"positions": [], "numbers": [], "forces": []}
        self.per_frame = {
            "n_atoms": [],
            "cells": [],
            "pbc": [],
            "energies": [],
            "stress": [],
            "temperatures": [],
            "run_index": [],
            "step": [],
        }

    @property
    def n_frames(self) -> int:
        return len(self.per_frame["n_atoms"])

    def record(
        self, atoms, run_index: int, step: int, max_force: float, temperature: float | None = None
    ) -> None:
        """Append a frame (``temperature``: the target one, for frames without momenta)."""
        energy = atoms.get_potential_energy()
        forces = checked_forces(atoms, max_force, step)
        if not np.isfinite(energy):
            raise Unstable(f"non-finite energy at step {step}")
        stress = atoms.get_stress(voigt=True) if atoms.cell.rank == 3 else np.zeros(6)
        self.per_atom["positions"].append(atoms.get_positions())
        self.per_atom["numbers"].append(atoms.get_atomic_numbers())
        self.per_atom["forces"].append(forces)
        self.per_frame["n_atoms"].append(len(atoms))
        self.per_frame["cells"].append(np.array(atoms.cell))  # a copy: NPT changes the cell in place
        self.per_frame["pbc"].append(atoms.pbc.copy())
        self.per_frame["energies"].append(energy)
        self.per_frame["stress"].append(stress)
        self.per_frame["temperatures"].append(
            atoms.get_temperature() if temperature is None else float(temperature)
        )
        self.per_frame["run_index"].append(run_index)
        self.per_frame["step"].append(step)

    def arrays(self) -> dict[str, np.ndarray]:
        shapes = {"positions": (0, 3), "numbers": (0,), "forces": (0, 3)}
        arrays = {
            key: np.concatenate(values) if values else np.zeros(shapes[key])
            for key, values in self.per_atom.items()
        }
        arrays["numbers"] = arrays["numbers"].astype(np.int32)
        frame_shapes = {"cells": (0, 3, 3), "pbc": (0, 3), "stress": (0, 6)}
        for key, values in self.per_frame.items():
            arrays[key] = np.array(values) if values else np.zeros(frame_shapes.get(key, (0,)))
        arrays["n_atoms"] = arrays["n_atoms"].astype(np.int32)
        arrays["run_index"] = arrays["run_index"].astype(np.int32)
        arrays["step"] = arrays["step"].astype(np.int32)
        arrays["pbc"] = arrays["pbc"].astype(bool)
        return arrays


def checked_forces(atoms, max_force: float, step: int) -> np.ndarray:
    """The forces, or Unstable when they are non-finite or larger than ``max_force`` (eV/Angstrom)."""
    forces = atoms.get_forces()
    if not np.all(np.isfinite(forces)):
        raise Unstable(f"non-finite forces at step {step}")
    largest = float(np.max(np.linalg.norm(forces, axis=1))) if len(forces) else 0.0
    if largest > max_force:
        raise Unstable(f"force {largest:.1f} eV/Angstrom above max_force {max_force} at step {step}")
    return forces


def frame_atoms(arrays: dict[str, np.ndarray], index: int):
    """Frame `index` of a trajectory (arrays of trajectory.npz) as ASE Atoms with its energy and forces."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    offsets = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
    start, stop = offsets[index], offsets[index + 1]
    atoms = Atoms(
        numbers=arrays["numbers"][start:stop],
        positions=arrays["positions"][start:stop],
        cell=arrays["cells"][index],
        pbc=arrays["pbc"][index],
    )
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(arrays["energies"][index]),
        forces=arrays["forces"][start:stop],
        stress=arrays["stress"][index],
    )
    return atoms


def expand_runs(tasks: list[dict], n_structures: int) -> list[dict]:
    """One run per (structure, task, temperature, pressure, repeat), with defaults filled in; validates."""
    runs = []
    for task_index, task in enumerate(tasks):
        settings, combos = _task_runs(task_index, task)
        for structure_index in range(n_structures):
            for combo in combos:
                runs.append(
                    {
                        **settings,
                        "task_index": task_index,
                        "structure_index": structure_index,
                        "temperature": None,
                        "pressure": None,
                        **combo,
                    }
                )
    return runs


def _task_runs(task_index: int, task: dict) -> tuple[dict, list[dict]]:
    """A task's settings with defaults, and what varies between its runs on one structure."""
    kind = task.get("kind")
    where = f"tasks[{task_index}]"
    if kind == "md":
        settings = {**MD_DEFAULTS, **task}
        if settings["ensemble"] not in ("nvt", "npt"):
            raise ValueError(f"{where}.ensemble: {settings['ensemble']!r} is not 'nvt' or 'npt'")
        pressures = settings["pressures"] if settings["ensemble"] == "npt" else [None]
        combos = [{"temperature": t, "pressure": p} for t in settings["temperatures"] for p in pressures]
    elif kind == "relax":
        settings = {**RELAX_DEFAULTS, **task}
        combos = [{}]
    elif kind == "melt_quench":
        settings = {**MELT_QUENCH_DEFAULTS, **task}
        melt, quench = settings["melt_temperature"], float(settings["quench_temperature"])
        if melt is None or not float(melt) > quench > 0:
            raise ValueError(f"{where}: melt_temperature must be given and above quench_temperature > 0 K")
        if min(int(settings[key]) for key in ("melt_steps", "quench_steps", "repeats")) < 1:
            raise ValueError(f"{where}: melt_steps, quench_steps and repeats must be at least 1")
        return settings, [{"temperature": float(melt), "repeat": r} for r in range(int(settings["repeats"]))]
    elif kind == "normal_modes":
        settings = {**NORMAL_MODE_DEFAULTS, **task}
        if not settings["temperatures"] or min(float(t) for t in settings["temperatures"]) <= 0:
            raise ValueError(f"{where}.temperatures: give at least one temperature above 0 K")
        if int(settings["n_samples"]) < 1 or float(settings["displacement"]) <= 0:
            raise ValueError(f"{where}: n_samples must be at least 1 and displacement positive")
        return settings, [{}]
    else:
        raise ValueError(f"{where}.kind: {kind!r} is not one of {TASK_KINDS}")
    if int(settings["steps"]) < 1 or int(settings["save_every"]) < 1:
        raise ValueError(f"{where}: steps and save_every must be at least 1")
    return settings, combos


def run_md(atoms, run: dict, run_index: int, seed: int, recorder: Recorder) -> dict:
    """Langevin NVT, or Langevin-Hoover NPT (isotropic, ASE's LangevinBAOAB), saved every `save_every`."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.langevinbaoab import LangevinBAOAB
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    rng = np.random.default_rng(seed)
    temperature = float(run["temperature"])
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    timestep = float(run["timestep"]) * units.fs
    if run["ensemble"] == "nvt":
        friction = float(run["friction"]) / units.fs
        dynamics = Langevin(atoms, timestep, temperature_K=temperature, friction=friction, rng=rng)
    else:
        stress = -float(run["pressure"]) * units.GPa  # ASE: external stress is minus the pressure
        barostat = run.get("barostat_time")  # fs; ASE's default is 1000 timesteps
        dynamics = LangevinBAOAB(
            atoms,
            timestep,
            temperature_K=temperature,
            externalstress=stress,
            hydrostatic=True,
            P_tau=float(barostat) * units.fs if barostat else None,
            rng=rng,
        )
    return _drive(dynamics, atoms, run, run_index, recorder, lambda: dynamics.run(int(run["steps"])))


def run_relax(atoms, run: dict, run_index: int, recorder: Recorder) -> dict:
    """FIRE relaxation of positions (and of the cell through ASE's FrechetCellFilter when relax_cell)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    target = FrechetCellFilter(atoms) if run["relax_cell"] and atoms.cell.rank == 3 else atoms
    optimizer = FIRE(target, logfile=None)
    record = _drive(
        optimizer,
        atoms,
        run,
        run_index,
        recorder,
        lambda: optimizer.run(float(run["fmax"]), int(run["steps"])),
    )
    if record["status"] == "completed":
        try:
            recorder.record(atoms, run_index, optimizer.nsteps, float(run["max_force"]))
        except Unstable as exc:
            record.update(status="unstable", message=str(exc))
            return record
        record["n_frames"] += 1
        record["status"] = "converged" if optimizer.converged() else "not_converged"
    return record


def run_melt_quench(atoms, run: dict, run_index: int, seed: int, recorder: Recorder, label: str) -> dict:
    """Melt, hold, quench (core.structures.melt_quench), optionally relax; saves the melt snapshots and the
    quenched structure, labelled `<label>_mq<repeat>` (`..._melt<i>` for the snapshots)."""
    from aiida_autopipe.core.structures.base import GeneratedStructure
    from aiida_autopipe.core.structures.melt_quench import melt_quench

    calculator, max_force = atoms.calc, float(run["max_force"])
    started, first = time.perf_counter(), recorder.n_frames
    name = f"{label}_mq{run['repeat']}"
    record = {"status": "completed", "message": "", "first_frame": first, "structures": []}
    try:
        generated = melt_quench(
            GeneratedStructure(atoms, "input", label),
            calculator,
            float(run["melt_temperature"]),
            float(run["quench_temperature"]),
            melt_steps=int(run["melt_steps"]),
            quench_steps=int(run["quench_steps"]),
            timestep_fs=float(run["timestep"]),
            n_melt_snapshots=int(run["n_melt_snapshots"]),
            seed=seed,
            observer=lambda moving, step: checked_forces(moving, max_force, step),
        )
        *melt_snapshots, quenched = generated
        for index, snapshot in enumerate(melt_snapshots):
            snapshot.label = f"{name}_melt{index}"
        quenched.label = name
        if int(run["relax_steps"]):
            quenched.atoms.calc = calculator
            converged, steps = relax_in_place(
                quenched.atoms, float(run["fmax"]), int(run["relax_steps"]), bool(run["relax_cell"])
            )
            quenched.details.update({"relaxed": converged, "relax_steps": steps})
        for structure in generated:
            _save_generated(structure, calculator, run_index, max_force, recorder, record)
    except Unstable as exc:
        record.update(status="unstable", message=str(exc))
    steps_done = int(run["melt_steps"]) + int(run["quench_steps"])
    record.update(
        n_frames=recorder.n_frames - first,
        steps_done=steps_done,
        wall_time_s=round(time.perf_counter() - started, 3),
    )
    return record


def run_normal_modes(atoms, run: dict, run_index: int, seed: int, recorder: Recorder, label: str) -> dict:
    """Relax the molecule's positions, Hessian by finite differences of surrogate forces, modes, then
    thermal displacements for every temperature (core.structures.normal_modes). Saves the relaxed molecule
    (`<label>_relaxed`) and the samples; a sample with absurd forces is dropped and counted."""
    from aiida_autopipe.core.structures import normal_modes as harmonic
    from aiida_autopipe.core.structures.base import GeneratedStructure

    calculator, max_force = atoms.calc, float(run["max_force"])
    started, first = time.perf_counter(), recorder.n_frames
    molecule = atoms.copy()
    if molecule.cell.rank < 3:
        molecule.center(vacuum=float(run["vacuum"]))  # pbc stays as given
    molecule.calc = calculator
    record = {"status": "completed", "message": "", "first_frame": first, "structures": []}
    try:
        converged, steps = relax_in_place(molecule, float(run["relax_fmax"]), int(run["relax_steps"]), False)
        minimum = GeneratedStructure(
            molecule, "surrogate_relaxed", f"{label}_relaxed", parent=label, details={"relaxed": converged}
        )
        _save_generated(minimum, calculator, run_index, max_force, recorder, record)
        hessian_started = time.perf_counter()
        omega_squared, modes = harmonic.harmonic_analysis(
            molecule,
            calculator,
            cutoff=None if run["cutoff"] is None else float(run["cutoff"]),
            displacement=float(run["displacement"]),
        )
        record["harmonic_analysis_s"] = round(time.perf_counter() - hessian_started, 3)
        record["wavenumbers_cm"] = [round(float(w), 2) for w in harmonic.wavenumbers(omega_squared)]
        record["relax_steps"] = steps
        samples = harmonic.samples_from_modes(
            minimum,
            omega_squared,
            modes,
            tuple(float(t) for t in run["temperatures"]),
            int(run["n_samples"]),
            np.random.default_rng(seed),
        )
    except Unstable as exc:
        record.update(status="unstable", message=str(exc), n_frames=recorder.n_frames - first)
        record["wall_time_s"] = round(time.perf_counter() - started, 3)
        return record
    dropped = 0
    for sample in samples:
        try:
            _save_generated(sample, calculator, run_index, max_force, recorder, record)
        except Unstable:
            dropped += 1
    record.update(
        n_frames=recorder.n_frames - first,
        n_samples_unstable=dropped,
        steps_done=steps,
        wall_time_s=round(time.perf_counter() - started, 3),
    )
    return record


def relax_in_place(atoms, fmax: float, steps: int, relax_cell: bool) -> tuple[bool, int]:
    """FIRE on the positions (and the cell when asked); returns (converged, steps taken)."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    target = FrechetCellFilter(atoms) if relax_cell and atoms.cell.rank == 3 else atoms
    optimizer = FIRE(target, logfile=None)
    optimizer.run(fmax, steps)
    return bool(optimizer.converged()), int(optimizer.nsteps)


def _save_generated(structure, calculator, run_index, max_force, recorder, record) -> None:
    """Record a generated structure's frame (surrogate energy and forces) and describe it in the run."""
    atoms = structure.atoms
    atoms.calc = calculator
    recorder.record(
        atoms, run_index, int(structure.details.get("md_step", 0)), max_force, structure.temperature
    )
    record["structures"].append(
        {
            "frame": recorder.n_frames - 1,
            "label": structure.label,
            "method": structure.method,
            "parent": structure.parent,
            "temperature": structure.temperature,
            "details": json.loads(json.dumps(structure.details, default=float)),
        }
    )


def _drive(dynamics, atoms, run, run_index, recorder, go) -> dict:
    first = recorder.n_frames
    started = time.perf_counter()
    dynamics.attach(
        lambda: recorder.record(atoms, run_index, dynamics.nsteps, float(run["max_force"])),
        interval=int(run["save_every"]),
    )
    status, message = "completed", ""
    try:
        go()
    except Unstable as exc:
        status, message = "unstable", str(exc)
    return {
        "status": status,
        "message": message,
        "first_frame": first,
        "n_frames": recorder.n_frames - first,
        "steps_done": int(dynamics.nsteps),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }


def run(config: dict, workdir: Path) -> tuple[int, dict]:
    """Execute every run of `config`; returns (exit status, results) and writes both output files."""
    from ase.io import read

    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.core.surrogate import SurrogateChoice, make_calculator, resolve_surrogate

    started = time.perf_counter()
    results: dict = {"status": "ok", "message": "", "runs": []}
    try:
        structures = read(workdir / config.get("structures", "structures.extxyz"), index=":")
        labels = config.get("structure_labels") or [f"structure_{i}" for i in range(len(structures))]
        runs = expand_runs(config.get("tasks") or [], len(structures))
        if not runs:
            raise ValueError("tasks: no task given")
        surrogate = config.get("surrogate") or {}
        if "name" in surrogate:
            choice = SurrogateChoice.from_dict(surrogate)
        else:
            choice = resolve_surrogate(surrogate.get("requested", "mace_mp"), surrogate.get("device", "auto"))
    except (InputError, ValueError, OSError) as exc:
        return _finish(
            workdir, EXIT_INVALID_INPUT, {**results, "status": "invalid_input", "message": str(exc)}, None
        )
    results["surrogate"] = choice.as_dict()
    if config.get("torch_threads"):
        import torch

        torch.set_num_threads(int(config["torch_threads"]))
    try:
        calculator = make_calculator(choice)
    except Exception as exc:  # a broken model file or a missing package: report, never a bare traceback
        message = f"{type(exc).__name__}: {exc}"
        return _finish(
            workdir,
            EXIT_SURROGATE_UNAVAILABLE,
            {**results, "status": "surrogate_unavailable", "message": message},
            None,
        )

    recorder = Recorder()
    seed = int(config.get("seed", 0))
    for run_index, settings in enumerate(runs):
        atoms = structures[settings["structure_index"]].copy()
        atoms.calc = calculator
        label = labels[settings["structure_index"]]
        if settings["kind"] == "md":
            record = run_md(atoms, settings, run_index, seed + run_index, recorder)
        elif settings["kind"] == "relax":
            record = run_relax(atoms, settings, run_index, recorder)
        elif settings["kind"] == "melt_quench":
            record = run_melt_quench(atoms, settings, run_index, seed + run_index, recorder, label)
        else:
            record = run_normal_modes(atoms, settings, run_index, seed + run_index, recorder, label)
        keys = ("kind", "ensemble", "task_index", "structure_index", "temperature", "pressure", "steps")
        record.update({key: settings.get(key) for key in keys})
        if "repeat" in settings:
            record["repeat"] = settings["repeat"]
        record["structure_label"] = label
        results["runs"].append(record)

    arrays = recorder.arrays()
    if config.get("descriptor") and recorder.n_frames:
        from aiida_autopipe.core.descriptors import compute_descriptors

        options = dict(config["descriptor"])
        arrays["descriptors"] = compute_descriptors(
            arrays["positions"],
            arrays["numbers"],
            arrays["n_atoms"],
            arrays["cells"],
            arrays["pbc"],
            **options,
        )
        results["descriptor"] = options
    results["n_frames"] = recorder.n_frames
    results["wall_time_s"] = round(time.perf_counter() - started, 3)
    if all(record["status"] == "unstable" for record in results["runs"]):
        results.update(status="all_unstable", message="every run became unstable; see runs[].message")
        return _finish(workdir, EXIT_ALL_UNSTABLE, results, arrays)
    return _finish(workdir, EXIT_OK, results, arrays)


def _finish(workdir: Path, code: int, results: dict, arrays: dict | None) -> tuple[int, dict]:
    if arrays is not None:
        np.savez(workdir / TRAJECTORY_FILE, **arrays)
    (workdir / RESULTS_FILE).write_text(json.dumps(results, indent=1))
    return code, results


def read_config(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autopipe-surrogate", description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", default="surrogate_input.yaml", help="YAML or JSON input file")
    arguments = parser.parse_args(argv)
    path = Path(arguments.input)
    try:
        config = read_config(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"autopipe-surrogate: cannot read {path}: {exc}", file=sys.stderr)
        _finish(
            path.parent,
            EXIT_INVALID_INPUT,
            {"status": "invalid_input", "message": str(exc), "runs": []},
            None,
        )
        return EXIT_INVALID_INPUT
    code, results = run(config, path.parent)
    print(f"autopipe-surrogate: {results['status']} {results.get('message', '')}".rstrip())
    for record in results["runs"]:
        print(
            f"  run {record['structure_label']} {record['kind']} {record.get('ensemble') or ''} "
            f"T={record['temperature']} P={record['pressure']}: {record['status']}, "
            f"{record['n_frames']} frames, {record['wall_time_s']} s"
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
