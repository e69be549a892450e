"""`autopipe-otf-md`: on-the-fly ACE MD that halts when the extrapolation grade passes a threshold (no AiiDA).

Run by `OtfMdCalculation` on any Computer. Input: a YAML/JSON file

    structure: structure.extxyz          # starting frame
    potential: potential.yaml            # pacemaker B-basis .yaml (gamma needs it; .yace gives no gamma)
    active_set: potential.asi            # pace_activeset's output
    reference: reference.json            # optional: LJ + ZBL reference, total model = reference + ACE
    temperature: 600                     # K, Langevin NVT
    steps: 1000
    timestep: 1.0                        # fs
    friction: 0.01                       # 1/fs
    threshold: 3.0                       # halt when max per-atom gamma > threshold
    gamma_every: 1                       # evaluate gamma every N steps (the last step always)
    seed: 0
    timing_steps: 10                     # extra steps timed with and without gamma (0: skip)
    embedding:                           # optional: cut out the uncertain regions of the halting frame here
      r_cut: 5.0
      bonding: covalent                  # alloy, covalent, ionic, molecule
      buffer_width: null                 # Angstrom (default r_cut)
      vacuum: null                       # Angstrom (default r_cut)
      formal_charges: {}
      prefer_whole_frame: true           # label the whole frame when the cut-outs would not be smaller
      relax: {surrogate: {requested: chgnet, device: auto}, fmax: 0.05, steps: 200}   # buffer relaxation

Outputs: `results.json` (status, steps done, halted, the max-gamma trace, timings in microseconds per atom
per step), `final_frame.extxyz` (last frame, per-atom `gamma` array where evaluated), `halting_frame.extxyz`
(the frame that passed the threshold, with its per-atom `gamma`) and, with `embedding`, `clusters.extxyz`
(arrays `autopipe_region`, `autopipe_force_weight`, `autopipe_parent_index`; info: charge decision,
tot_charge, caps, relaxation). The buffer relaxation runs here rather than in a calcfunction: with a universal
surrogate on a few hundred atoms it takes minutes on a CPU, and this job can run where the surrogate is fast.
Exit status: 0 done (halted or not), 2 invalid input, 3 the MD became unstable, 4 the embedding failed.

An input with `task: held_out_gamma` runs the held-out extrapolation grades of a dataset instead
(`runners.held_out_gamma`, run in the pacemaker job for the dynamic threshold): same executable and
environment, no extra code to install.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from aiida_autopipe.runners.files import EXIT_INVALID_INPUT, command_line, finish

EXIT_OK = 0
EXIT_UNSTABLE = 3
EXIT_EMBEDDING_FAILED = 4

HALTING_FRAME_FILE = "halting_frame.extxyz"
FINAL_FRAME_FILE = "final_frame.extxyz"
CLUSTERS_FILE = "clusters.extxyz"
GAMMA_ARRAY = "gamma"

DEFAULTS = {
    "structure": "structure.extxyz",
    "potential": "potential.yaml",
    "active_set": "potential.asi",
    "reference": None,
    "temperature": 300.0,
    "steps": 1000,
    "timestep": 1.0,
    "friction": 0.01,
    "threshold": 5.0,
    "gamma_every": 1,
    "seed": 0,
    "timing_steps": 10,
    "max_force": 100.0,
    "embedding": None,
}
EMBEDDING_DEFAULTS = {
    "bonding": "alloy",
    "buffer_width": None,
    "vacuum": None,
    "formal_charges": None,
    "prefer_whole_frame": True,
    "relax": None,
}
RELAX_DEFAULTS = {"surrogate": {"requested": "chgnet", "device": "auto"}, "fmax": 0.05, "steps": 200}


class Unstable(RuntimeError):
    """Non-finite or absurd forces: the potential has left any sensible region."""


def validated_settings(config: dict, workdir: Path) -> dict:
    """Defaults filled in and checked; raises ValueError naming the key (and FileNotFoundError for files)."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **config}
    for key in ("structure", "potential", "active_set") + (("reference",) if settings["reference"] else ()):
        path = workdir / str(settings[key])
        if not path.is_file():
            raise FileNotFoundError(f"{key}: file {path.name} not found")
        settings[key] = path
    if settings["potential"].suffix != ".yaml":
        raise ValueError("potential: extrapolation grades need pacemaker's B-basis .yaml, not .yace")
    for key in ("temperature", "timestep", "friction", "threshold"):
        settings[key] = float(settings[key])
        if not settings[key] > 0:
            raise ValueError(f"{key}: {settings[key]} must be positive")
    for key in ("steps", "gamma_every", "seed", "timing_steps"):
        settings[key] = int(settings[key])
    if settings["steps"] < 1 or settings["gamma_every"] < 1 or settings["timing_steps"] < 0:
        raise ValueError("steps and gamma_every must be at least 1, timing_steps at least 0")
    if settings["embedding"] is not None:
        embedding = {**EMBEDDING_DEFAULTS, **settings["embedding"]}
        if "r_cut" not in embedding:
            raise ValueError("embedding.r_cut: required (the ACE cutoff, Angstrom)")
        if embedding["relax"] is not None:
            embedding["relax"] = {**RELAX_DEFAULTS, **embedding["relax"]}
        settings["embedding"] = embedding
    return settings


def make_model(settings: dict):
    """Reference + ACE with the active set (plain ACE without a reference)."""
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator, ReferencePotential

    reference = None
    if settings["reference"]:
        reference = ReferencePotential.from_dict(json.loads(Path(settings["reference"]).read_text()))
    return ReferencePlusACECalculator(str(settings["potential"]), reference, str(settings["active_set"]))


def _evaluate(atoms, model, with_gamma: bool, max_force: float) -> np.ndarray | None:
    """Forces at the current positions (cached for the integrator) and, if asked, the per-atom gamma.

    pyace leaves the previous gamma in place when projections are off, so gamma is read only when computed.
    """
    model.ace.compute_projections = with_gamma
    forces = atoms.get_forces()
    if not np.all(np.isfinite(forces)) or np.abs(forces).max(initial=0.0) > max_force:
        raise Unstable(f"forces non-finite or above {max_force} eV/Angstrom")
    return np.array(model.results["gamma"]) if with_gamma else None


def _langevin(atoms, settings: dict, seed: int):
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, settings["temperature"], rng=rng)
    Stationary(atoms)
    return Langevin(
        atoms,
        settings["timestep"] * units.fs,
        temperature_K=settings["temperature"],
        friction=settings["friction"] / units.fs,
        fixcm=False,  # ASE's fixcm=True biases NVT sampling; the centre of mass drifting is harmless here
        rng=rng,
    )


def run_otf_md(atoms, model, settings: dict) -> dict:
    """Langevin NVT until `steps` or until max gamma > threshold (checked every `gamma_every` steps).

    Returns the record (steps done, halted, trace of max gamma) plus the last evaluated per-atom gamma.
    """
    atoms.calc = model
    dynamics = _langevin(atoms, settings, settings["seed"])
    threshold, every, steps = settings["threshold"], settings["gamma_every"], settings["steps"]
    trace_steps, trace_gamma = [], []
    gamma, step, halted, status, message = None, 0, False, "completed", ""
    started = time.perf_counter()
    try:
        gamma = _evaluate(atoms, model, True, settings["max_force"])
        trace_steps.append(0)
        trace_gamma.append(float(gamma.max()))
        halted = bool(gamma.max() > threshold)
        while not halted and step < steps:
            step += 1
            with_gamma = step % every == 0 or step == steps
            model.ace.compute_projections = with_gamma
            dynamics.step()
            step_gamma = _evaluate(atoms, model, with_gamma, settings["max_force"])
            if step_gamma is not None:
                gamma = step_gamma
                trace_steps.append(step)
                trace_gamma.append(float(gamma.max()))
                halted = bool(gamma.max() > threshold)
    except Unstable as exc:
        status, message = "unstable", f"step {step}: {exc}"
    elapsed = time.perf_counter() - started
    return {
        "status": "halted" if halted else status,
        "message": message,
        "halted": halted,
        "steps_done": step,
        "halt_step": step if halted else None,
        "max_gamma": max(trace_gamma, default=None),
        "final_max_gamma": trace_gamma[-1] if trace_gamma else None,
        "gamma_trace_steps": trace_steps,
        "gamma_trace_max": trace_gamma,
        "md_wall_time_s": round(elapsed, 4),
        "md_us_per_atom_step": 1e6 * elapsed / max(step, 1) / len(atoms),
        "gamma": gamma,
        "gamma_step": trace_steps[-1] if trace_steps else None,
    }


def time_steps(atoms, model, settings: dict) -> dict:
    """Microseconds per atom per MD step with and without gamma, on the same frames, `timing_steps` each."""
    timings = {}
    for with_gamma in (True, False):
        copy = atoms.copy()
        copy.calc = model
        dynamics = _langevin(copy, settings, settings["seed"] + 1)
        model.ace.compute_projections = with_gamma
        copy.get_forces()
        started = time.perf_counter()
        for _ in range(settings["timing_steps"]):
            dynamics.step()
        elapsed = time.perf_counter() - started
        key = "us_per_atom_step_with_gamma" if with_gamma else "us_per_atom_step_without_gamma"
        timings[key] = 1e6 * elapsed / settings["timing_steps"] / len(copy)
    return timings


def embed_frame(frame, gamma, threshold: float, embedding: dict, calculator=None) -> list:
    """Embedded clusters of a halted frame as ASE Atoms ready to label (info records every decision).

    Shared by this runner and the `embed_halting_frame` calcfunction, so both paths give the same clusters.
    With `calculator` the buffer (non-core atoms) is relaxed with it, the core held fixed.
    """
    from aiida_autopipe.core.embedding import embed_uncertain_regions, relax_buffer

    clusters = embed_uncertain_regions(
        frame,
        gamma,
        threshold,
        float(embedding["r_cut"]),
        bonding=embedding.get("bonding") or "alloy",
        buffer_width=embedding.get("buffer_width"),
        vacuum=embedding.get("vacuum"),
        formal_charge_overrides=embedding.get("formal_charges") or None,
        prefer_whole_frame=bool(embedding.get("prefer_whole_frame", True)),
    )
    frames = []
    for cluster in clusters:
        atoms = cluster.atoms
        atoms.info.update(
            autopipe_seeds=[int(s) for s in cluster.seeds],
            autopipe_n_caps=cluster.n_caps,
            autopipe_counter_ions_added=cluster.counter_ions_added,
            autopipe_ions_removed=cluster.ions_removed,
            autopipe_buffer_relaxed=False,
        )
        if calculator is not None and not atoms.info["autopipe_whole_frame"]:  # a whole frame has no buffer
            relax = embedding.get("relax") or RELAX_DEFAULTS
            relaxation = relax_buffer(atoms, calculator, float(relax["fmax"]), int(relax["steps"]))
            relaxed = relaxation.atoms
            relaxed.set_constraint()
            relaxed.calc = None
            relaxed.info.update(
                autopipe_buffer_relaxed=True,
                autopipe_relax_converged=relaxation.converged,
                autopipe_relax_max_displacement=relaxation.max_displacement,
                autopipe_relax_energy_change=relaxation.energy_change,
            )
            atoms = relaxed
        frames.append(atoms)
    return frames


def _surrogate_calculator(relax: dict):
    from aiida_autopipe.core.surrogate import make_calculator, resolve_surrogate

    surrogate = relax.get("surrogate") or {}
    choice = resolve_surrogate(surrogate.get("requested", "chgnet"), surrogate.get("device", "auto"))
    return make_calculator(choice), choice.as_dict()


def run(config: dict, workdir: Path) -> tuple[int, dict]:
    """Execute the OTF MD (and the embedding, if asked); returns (exit status, results), files written."""
    from ase.io import read, write

    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.runners import held_out_gamma

    if config.get("task") == held_out_gamma.TASK:
        return held_out_gamma.run(config, workdir)

    results: dict = {"status": "invalid_input", "message": ""}
    try:
        settings = validated_settings(config, workdir)
        atoms = read(settings["structure"], format="extxyz")
        model = make_model(settings)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:  # pyace raises RuntimeError on bad files
        results["message"] = f"{type(exc).__name__}: {exc}"
        return finish(workdir, EXIT_INVALID_INPUT, results)
    results.update(
        n_atoms=len(atoms),
        temperature=settings["temperature"],
        steps=settings["steps"],
        threshold=settings["threshold"],
        gamma_every=settings["gamma_every"],
        delta_learning=bool(settings["reference"]),
    )
    start = atoms.copy()
    record = run_otf_md(atoms, model, settings)
    gamma, gamma_step = record.pop("gamma"), record.pop("gamma_step")
    results.update(record)
    final = atoms.copy()
    final.calc = None
    if gamma_step == record["steps_done"]:
        final.set_array(GAMMA_ARRAY, gamma)
    write(workdir / FINAL_FRAME_FILE, final, format="extxyz")
    if record["status"] == "unstable":
        return finish(workdir, EXIT_UNSTABLE, results)
    if record["halted"]:
        write(workdir / HALTING_FRAME_FILE, final, format="extxyz")
    if settings["timing_steps"]:
        results["timing"] = time_steps(start, model, settings)

    if record["halted"] and settings["embedding"] is not None:
        embedding = settings["embedding"]
        try:
            calculator = None
            if embedding["relax"] is not None:
                calculator, results["surrogate"] = _surrogate_calculator(embedding["relax"])
            started = time.perf_counter()
            clusters = embed_frame(final, gamma, settings["threshold"], embedding, calculator)
            results["embedding_wall_time_s"] = round(time.perf_counter() - started, 3)
        except (InputError, RuntimeError, ValueError) as exc:
            results.update(status="embedding_failed", message=f"{type(exc).__name__}: {exc}")
            return finish(workdir, EXIT_EMBEDDING_FAILED, results)
        write(workdir / CLUSTERS_FILE, clusters, format="extxyz")
        results["n_clusters"] = len(clusters)
    return finish(workdir, EXIT_OK, results)


def main(argv: list[str] | None = None) -> int:
    return command_line(
        "autopipe-otf-md",
        __doc__.splitlines()[0],
        "otf_md_input.yaml",
        run,
        lambda results: (
            f"{results['status']} after {results.get('steps_done', 0)} steps, "
            f"max gamma {results.get('max_gamma')} {results.get('message', '')}"
            if "task" not in results
            else f"{results['task']}: {results['status']} {results.get('message', '')}"
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
