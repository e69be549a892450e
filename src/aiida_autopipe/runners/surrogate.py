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
    descriptor: {kind: ace, r_cut: 5.0}                 # optional: per-frame descriptors for DIRECT
    torch_threads: 1                                    # optional: CPU threads for the surrogate

Units: K, GPa, fs, eV/Angstrom. Every (structure, task, temperature, pressure) is one run. Output:
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

    def record(self, atoms, run_index: int, step: int, max_force: float) -> None:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        if not np.isfinite(energy) or not np.all(np.isfinite(forces)):
            raise Unstable(f"non-finite energy or forces at step {step}")
        largest = float(np.max(np.linalg.norm(forces, axis=1))) if len(forces) else 0.0
        if largest > max_force:
            raise Unstable(f"force {largest:.1f} eV/Angstrom above max_force {max_force} at step {step}")
        stress = atoms.get_stress(voigt=True) if atoms.cell.rank == 3 else np.zeros(6)
        self.per_atom["positions"].append(atoms.get_positions())
        self.per_atom["numbers"].append(atoms.get_atomic_numbers())
        self.per_atom["forces"].append(forces)
        self.per_frame["n_atoms"].append(len(atoms))
        self.per_frame["cells"].append(np.array(atoms.cell))  # a copy: NPT changes the cell in place
        self.per_frame["pbc"].append(atoms.pbc.copy())
        self.per_frame["energies"].append(energy)
        self.per_frame["stress"].append(stress)
        self.per_frame["temperatures"].append(atoms.get_temperature())
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
    """One run per (structure, task, temperature, pressure), with defaults filled in; validates the tasks."""
    runs = []
    for task_index, task in enumerate(tasks):
        kind = task.get("kind")
        if kind == "md":
            settings = {**MD_DEFAULTS, **task}
            if settings["ensemble"] not in ("nvt", "npt"):
                raise ValueError(
                    f"tasks[{task_index}].ensemble: {settings['ensemble']!r} is not 'nvt' or 'npt'"
                )
            pressures = settings["pressures"] if settings["ensemble"] == "npt" else [None]
            combos = [(t, p) for t in settings["temperatures"] for p in pressures]
        elif kind == "relax":
            settings = {**RELAX_DEFAULTS, **task}
            combos = [(None, None)]
        else:
            raise ValueError(f"tasks[{task_index}].kind: {kind!r} is not 'md' or 'relax'")
        if int(settings["steps"]) < 1 or int(settings["save_every"]) < 1:
            raise ValueError(f"tasks[{task_index}]: steps and save_every must be at least 1")
        for structure_index in range(n_structures):
            for temperature, pressure in combos:
                runs.append(
                    {
                        **settings,
                        "task_index": task_index,
                        "structure_index": structure_index,
                        "temperature": temperature,
                        "pressure": pressure,
                    }
                )
    return runs


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
        if settings["kind"] == "md":
            record = run_md(atoms, settings, run_index, seed + run_index, recorder)
        else:
            record = run_relax(atoms, settings, run_index, recorder)
        keys = ("kind", "ensemble", "task_index", "structure_index", "temperature", "pressure", "steps")
        record.update({key: settings.get(key) for key in keys})
        record["structure_label"] = labels[settings["structure_index"]]
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
