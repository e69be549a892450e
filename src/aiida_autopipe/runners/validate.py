"""`autopipe-validate`: a fitted potential's EOS, elastic constants, hot RDF, phases and parity (no AiiDA).

Run by `ValidationCalculation` on any Computer. Input: a YAML/JSON file

    potential: potential.yaml            # pacemaker .yaml or .yace
    reference: reference.json            # optional: LJ + ZBL reference, total model = reference + ACE
    atomic_energies: {Si: -107.2}        # plain ACE only: per-element constants the model adds (eV)
    structure: structure.extxyz          # optional reference crystal (default: the model's lowest phase)
    structure_origin: the input structure  # optional: which crystal `structure` is and why (for the report)
    phases: phases.extxyz                # optional: one frame per phase, name in info['phase']
    dataset: dataset.extxyz              # optional: labelled frames (parity, DFT side of the ranking)
    relax: {fmax: 0.001, steps: 200}     # ionic relaxation inside EOS and elastic strains
    eos: {max_linear_strain: 0.02, points: 9}
    elastic: {strain: 0.005}
    rdf: {temperatures: [1500], steps: 400, timestep: 1.0, friction: 0.02, equilibration: 100,
          sample_every: 10, r_max: 6.0, n_bins: 120, min_atoms: 64, seed: 0}
    phase_relax: {fmax: 0.01, steps: 300}   # relaxation (cell too) of each phase and of the crystal

Outputs: `results.json` (status, message, `report`: every number with its unit in the key), `rdf.npz` (`r`,
`g_T<K>` and `g_<A>_<B>_T<K>` per temperature) and `parity.npz` (per frame `energy_dft`, `energy_model` in
eV/atom, `frame_group`; per force component `force_dft`, `force_model` in eV/Angstrom, `force_frame`).
EOS and elastic constants need a 3D-periodic crystal: for a molecule or cluster they are skipped and the
report says so. Exit status: 0 done, 2 invalid input, 3 a section failed (the others are still reported).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from aiida_autopipe.runners.files import EXIT_INVALID_INPUT, command_line, finish

EXIT_OK = 0
EXIT_SECTION_FAILED = 3

RDF_FILE = "rdf.npz"
PARITY_FILE = "parity.npz"
PHASE_KEY = "phase"

SECTIONS = {
    "relax": {"fmax": 1e-3, "steps": 200},
    "eos": {"max_linear_strain": 0.02, "points": 9},
    "elastic": {"strain": 0.005},
    "rdf": {
        "temperatures": [1500.0],
        "steps": 400,
        "timestep": 1.0,
        "friction": 0.02,
        "equilibration": 100,
        "sample_every": 10,
        "r_max": 6.0,
        "n_bins": 120,
        "min_atoms": 64,
        "seed": 0,
    },
    "phase_relax": {"fmax": 0.01, "steps": 300},
}
FILES = ("potential", "reference", "structure", "phases", "dataset")
DEFAULTS = {
    **dict.fromkeys(FILES),
    "atomic_energies": None,
    "structure_origin": None,
    **{key: None for key in SECTIONS},
}


def validated_settings(config: dict, workdir: Path) -> dict:
    """Defaults filled in and checked; raises ValueError naming the key (FileNotFoundError for files)."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    settings = {**DEFAULTS, **config}
    if not settings["potential"]:
        raise ValueError("potential: required (pacemaker .yaml or .yace)")
    if settings["structure_origin"] and not settings["structure"]:
        raise ValueError("structure_origin: says why a structure was chosen, but no structure is given")
    for key in FILES:
        if settings[key]:
            path = workdir / str(settings[key])
            if not path.is_file():
                raise FileNotFoundError(f"{key}: file {path.name} not found")
            settings[key] = path
    for section, defaults in SECTIONS.items():
        given = settings[section] or {}
        unknown = set(given) - set(defaults)
        if unknown:
            raise ValueError(f"{section}: unknown keys {sorted(unknown)}; known: {sorted(defaults)}")
        settings[section] = {**defaults, **given}
    rdf = settings["rdf"]
    rdf["temperatures"] = [float(t) for t in np.atleast_1d(rdf["temperatures"])]
    if any(t <= 0 for t in rdf["temperatures"]):
        raise ValueError(f"rdf.temperatures: {rdf['temperatures']} must be positive (K)")
    if rdf["steps"] <= rdf["equilibration"]:
        raise ValueError("rdf.steps must exceed rdf.equilibration (nothing would be sampled)")
    if not 0 < float(settings["eos"]["max_linear_strain"]) <= 0.1:
        raise ValueError("eos.max_linear_strain: must lie in (0, 0.1]; about 0.02 samples the minimum well")
    if int(settings["eos"]["points"]) < 5:
        raise ValueError("eos.points: at least 5 volumes for a 4-parameter Birch-Murnaghan fit")
    if not 0 < float(settings["elastic"]["strain"]) < 0.05:
        raise ValueError("elastic.strain: must lie in (0, 0.05); about 0.005 is linear and above noise")
    return settings


def make_model(settings: dict):
    """Reference + ACE (or plain ACE plus its per-element constants): the exported model, as MD runs it."""
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator, ReferencePotential

    reference = None
    if settings["reference"]:
        reference = ReferencePotential.from_dict(json.loads(Path(settings["reference"]).read_text()))
    return ReferencePlusACECalculator(
        str(settings["potential"]), reference, atomic_energies=settings["atomic_energies"]
    )


def read_inputs(settings: dict) -> tuple:
    """(reference structure or None, {phase name: Atoms}, labelled frames)."""
    from ase.io import read

    from aiida_autopipe.core.pacemaker_input import read_labelled_frames

    structure = read(settings["structure"], format="extxyz") if settings["structure"] else None
    phases = {}
    if settings["phases"]:
        for index, atoms in enumerate(read(settings["phases"], index=":", format="extxyz")):
            atoms.calc = None
            phases[str(atoms.info.get(PHASE_KEY, f"phase_{index}"))] = atoms
    frames = read_labelled_frames(settings["dataset"]) if settings["dataset"] else []
    return structure, phases, frames


def lowest_periodic_phase(ranking: dict, phases: dict):
    """The periodic phase with the lowest relaxed model energy per atom (the model's ground state)."""
    periodic = [name for name, record in ranking["phases"].items() if record["periodic"]]
    if not periodic:
        return None, None
    name = min(periodic, key=lambda n: ranking["phases"][n]["model_energy_per_atom_relaxed_eV"])
    return name, phases[name]


def crystal_properties(structure, model, settings: dict) -> dict:
    """The crystal relaxed by the model (cell and ions), its EOS around that minimum, then elastic constants
    at the EOS volume; skipped (and said so) for a non-periodic structure.

    Relaxing first keeps the +-2% EOS scan around the model's own minimum, which may lie far from the input's
    (DFT or experimental) volume when the potential is poor; the volume change is reported.
    """
    from aiida_autopipe.core.validation import (
        elastic_constants,
        equation_of_state,
        is_periodic,
        relax_structure,
    )

    if structure is None:
        skipped = {"skipped": "no reference crystal: neither a structure nor a periodic phase was given"}
        return {"eos": skipped, "elastic": skipped}
    if not is_periodic(structure):
        skipped = {"skipped": "the structure is not 3D periodic (molecule or cluster): no EOS or C_ij"}
        return {"eos": skipped, "elastic": skipped}
    relax = settings["relax"]
    relaxed = structure.copy()
    relaxed.calc = model
    converged = relax_structure(
        relaxed, float(settings["phase_relax"]["fmax"]), int(settings["phase_relax"]["steps"])
    )
    relaxed.calc = None
    prerelaxation = {
        "converged": converged,
        "volume_per_atom_input_angstrom3": structure.get_volume() / len(structure),
        "volume_per_atom_relaxed_angstrom3": relaxed.get_volume() / len(relaxed),
    }
    eos, at_minimum = equation_of_state(
        relaxed,
        model,
        max_linear_strain=float(settings["eos"]["max_linear_strain"]),
        points=int(settings["eos"]["points"]),
        fmax=float(relax["fmax"]),
        steps=int(relax["steps"]),
    )
    elastic = elastic_constants(
        at_minimum,
        model,
        strain=float(settings["elastic"]["strain"]),
        fmax=relax["fmax"],
        steps=relax["steps"],
    )
    return {"eos": {**eos.as_dict(), "prerelaxation": prerelaxation}, "elastic": elastic.as_dict()}


def hot_rdf(structure, model, settings: dict) -> tuple[dict, dict]:
    """Langevin NVT at each RDF temperature, at the given cell's density (not the model's): the run summaries
    (report) and the curves (arrays)."""
    from aiida_autopipe.core.validation import (
        is_periodic,
        langevin_frames,
        radial_distribution,
        supercell_with_at_least,
    )

    rdf = settings["rdf"]
    system = supercell_with_at_least(structure, int(rdf["min_atoms"]))
    runs, arrays = [], {}
    for temperature in rdf["temperatures"]:
        started = time.perf_counter()
        frames, summary = langevin_frames(
            system,
            model,
            temperature,
            int(rdf["steps"]),
            timestep=float(rdf["timestep"]),
            friction=float(rdf["friction"]),
            equilibration=int(rdf["equilibration"]),
            sample_every=int(rdf["sample_every"]),
            seed=int(rdf["seed"]),
        )
        summary.update(
            n_atoms=len(system),
            volume_per_atom_angstrom3=system.get_volume() / len(system) if is_periodic(system) else None,
            wall_time_s=round(time.perf_counter() - started, 3),
        )
        if frames:
            curve = radial_distribution(frames, float(rdf["r_max"]), int(rdf["n_bins"]))
            arrays["r"] = curve.r_angstrom
            tag = f"T{round(temperature)}"
            arrays[f"g_{tag}"] = curve.total
            for pair, values in curve.partials.items():
                arrays[f"g_{pair.replace('-', '_')}_{tag}"] = values
            summary.update(
                normalisation=curve.normalisation,
                first_peak_angstrom=float(curve.r_angstrom[np.argmax(curve.total)]),
                array=f"g_{tag}",
            )
        runs.append(summary)
    return {"r_max_angstrom": float(rdf["r_max"]), "runs": runs}, arrays


def parity_report(frames, model, phases) -> tuple[dict, dict]:
    """The error table per group of frames (report) and the per-frame values (arrays)."""
    from aiida_autopipe.core.validation import frame_groups, parity

    groups = frame_groups(frames, phases or None)
    data = parity(frames, model, groups)
    names = sorted(set(groups))
    arrays = {
        "energy_dft": data.energy_dft,
        "energy_model": data.energy_model,
        "frame_group": np.array([names.index(g) for g in groups], dtype=int),
        "force_dft": data.force_dft,
        "force_model": data.force_model,
        "force_frame": data.force_group_index,
    }
    return {"group_names": names, "table": data.table()}, arrays


def _section(report: dict, failures: list, name: str, compute):
    """Run one section; a failure is recorded in the report and does not stop the others."""
    started = time.perf_counter()
    try:
        value = compute()
    except Exception as exc:  # one broken section (a bad fit, a diverging MD) must not hide the rest
        failures.append(name)
        report[name] = {"failed": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=3)}
        return None
    report.setdefault("wall_time_s", {})[name] = round(time.perf_counter() - started, 3)
    return value


def run(config: dict, workdir: Path) -> tuple[int, dict]:
    """Every validation section that its inputs allow; returns (exit status, results), files written."""
    results: dict = {"status": "invalid_input", "message": ""}
    try:
        settings = validated_settings(config, workdir)
        structure, phases, frames = read_inputs(settings)
        model = make_model(settings)
    except (ValueError, OSError, KeyError, RuntimeError) as exc:  # pyace raises RuntimeError on bad files
        results["message"] = f"{type(exc).__name__}: {exc}"
        return finish(workdir, EXIT_INVALID_INPUT, results)

    report: dict = {
        "delta_learning": bool(settings["reference"]),
        "n_phases": len(phases),
        "n_labelled_frames": len(frames),
    }
    failures: list[str] = []
    if phases:
        from aiida_autopipe.core.validation import phase_ranking

        relax = settings["phase_relax"]
        ranking = _section(
            report,
            failures,
            "phases",
            lambda: phase_ranking(
                phases, model, frames, fmax=float(relax["fmax"]), steps=int(relax["steps"])
            ),
        )
        if ranking is not None:
            report["phases"] = ranking
            if structure is None:
                name, structure = lowest_periodic_phase(ranking, phases)
                report["reference_structure"] = (
                    f"phase '{name}', the model's lowest periodic phase (fallback: no crystal given)"
                    if name
                    else None
                )
    else:
        report["phases"] = {"skipped": "no phases given"}
    if "reference_structure" not in report:
        given = settings["structure_origin"] or "given"
        report["reference_structure"] = given if settings["structure"] else None
    if structure is not None:
        report["reference_formula"] = structure.get_chemical_formula()

    crystal = _section(report, failures, "crystal", lambda: crystal_properties(structure, model, settings))
    if crystal is not None:
        report.update(crystal)
        report.pop("crystal", None)

    rdf_source = structure if structure is not None else next(iter(phases.values()), None)
    if rdf_source is None:
        report["rdf"] = {"skipped": "no structure to run MD from"}
    else:
        rdf = _section(report, failures, "rdf", lambda: hot_rdf(rdf_source, model, settings))
        if rdf is not None:
            report["rdf"], curves = rdf
            np.savez(workdir / RDF_FILE, **curves)

    if frames:
        table = _section(report, failures, "parity", lambda: parity_report(frames, model, phases))
        if table is not None:
            report["parity"], arrays = table
            np.savez(workdir / PARITY_FILE, **arrays)
    else:
        report["parity"] = {"skipped": "no labelled dataset given"}

    results["report"] = report
    if failures:
        results.update(status="section_failed", message=f"failed sections: {', '.join(failures)}")
        return finish(workdir, EXIT_SECTION_FAILED, results)
    results["status"] = "completed"
    return finish(workdir, EXIT_OK, results)


def summary_line(results: dict) -> str:
    report = results.get("report", {})
    eos = report.get("eos", {})
    parts = [results["status"]]
    if "bulk_modulus_gpa" in eos:
        parts.append(f"V0 {eos['volume_per_atom']:.3f} A^3/atom, B {eos['bulk_modulus_gpa']:.1f} GPa")
    energy = report.get("parity", {}).get("table", {}).get("all", {}).get("energy_meV_per_atom", {})
    if energy.get("rmse") is not None:
        parts.append(f"energy RMSE {energy['rmse']:.2f} meV/atom")
    return ", ".join(parts) + (f" {results['message']}" if results.get("message") else "")


def main(argv: list[str] | None = None) -> int:
    return command_line(
        "autopipe-validate", __doc__.splitlines()[0], "validation_input.yaml", run, summary_line, argv
    )


if __name__ == "__main__":
    sys.exit(main())
