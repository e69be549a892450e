"""`autopipe-kmc`: residence-time (BKL) kinetic Monte Carlo in Numba, on a lattice gas or a reused atomistic
event catalogue (no AiiDA).

Run by `KmcCalculation` on any Computer. Input: a YAML/JSON file. Lattice gas (the default):

    lattice_size: 50                   # L x L periodic square lattice
    spacing: 2.55                      # Angstrom
    site_energies: [0.0]               # eV per site type: one type, or two on a checkerboard
    barrier: 0.4                       # eV, bare hop barrier E0 (see core.kmc.lattice)
    interaction: 0.0                   # eV, nearest-neighbour pair energy (< 0 attracts)
    temperature: 500                   # K
    prefactor: 1.0e12                  # Hz (Tier 1)
    coverage: 0.05                     # fraction of sites occupied (or n_particles: 125)
    steps: 100000
    equilibration_steps: 0             # run (and discard) before recording
    record_interval: null              # s; default: the expected run time / n_records
    n_records: 200
    seed: 0

Atomistic event catalogue (off-lattice; the same events out of every state, see core.kmc.walk): give
`events` and `temperature`, `steps`, `record_interval`, `n_records`, `seed` as above:

    events:
      - {barrier: 0.70, prefactor: 4.1e12, displacement: [1.8, 1.8, 0.0], tier: 2}   # eV, Hz, Angstrom

Saddle search with the trained potential (what `SimulationWorkChain` runs): give `structure` and the runner
makes a vacancy, searches the hops into it by the dimer method with reference + ACE, checks gamma at every
saddle, gives the trusted events tiered rates and walks them as the catalogue above:

    structure: structure.extxyz        # perfect crystal (extxyz)
    potential: potential.yaml          # pacemaker B-basis .yaml (gamma needs it)
    active_set: potential.asi          # pace_activeset's output
    reference: reference.json          # optional: LJ + ZBL reference, model = reference + ACE
    threshold: 5.0                     # gamma above which a saddle is sent to labelling, not trusted
    vacancy_atom: 0                    # atom removed to make the vacancy
    hop_cutoff: null                   # Angstrom; default 1.2 x the removed atom's nearest-neighbour distance
    tier2_share: 0.95                  # Tier-1 share of the total rate whose events get Vineyard prefactors
    hessian_radius: null               # Angstrom around each hop's midpoint; default hop_cutoff
    fmax: 0.02                         # eV/Angstrom, relaxation and dimer convergence

Outputs: `results.json` (status, steps, simulated time, diffusion coefficient with its standard error and the
exact or dilute-limit value where one exists, the catalogue's drift velocity, mean occupation per site type,
steps per second of wall and CPU time) and `trajectory.npz` (`times` in s, unwrapped `displacements`
(n_records, n_particles, dim) in Angstrom, and `sites` per record on the lattice or `event_counts` for a
catalogue); with `structure` also `uncertain_saddles.extxyz` (each uncertain saddle with its per-atom `gamma`
array and its barrier in the info).
Exit status: 0 done, 2 invalid input, 3 stalled (no possible hop left before the last step).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from aiida_autopipe.runners.files import EXIT_INVALID_INPUT, command_line, finish

EXIT_OK = 0
EXIT_STALLED = 3

TRAJECTORY_FILE = "trajectory.npz"
UNCERTAIN_SADDLES_FILE = "uncertain_saddles.extxyz"
GAMMA_ARRAY = "gamma"
#: Largest trajectory written (numbers): a CalcJob output, not a dump of every step.
MAX_TRAJECTORY_VALUES = 20_000_000

DEFAULTS = {
    "lattice_size": 50,
    "spacing": 1.0,
    "site_energies": [0.0],
    "barrier": 0.4,
    "interaction": 0.0,
    "temperature": 300.0,
    "prefactor": 1.0e12,
    "coverage": None,
    "n_particles": None,
    "steps": 100_000,
    "equilibration_steps": 0,
    "record_interval": None,
    "n_records": 200,
    "seed": 0,
    "events": None,
    "structure": None,
    "potential": "potential.yaml",
    "active_set": "potential.asi",
    "reference": None,
    "threshold": 5.0,
    "vacancy_atom": 0,
    "hop_cutoff": None,
    "tier2_share": 0.95,
    "hessian_radius": None,
    "fmax": 0.02,
}


def _check(config: dict) -> dict:
    from aiida_autopipe.core.errors import InputError

    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise InputError(unknown[0], "is not a kMC input", f"use only {', '.join(DEFAULTS)}")
    config = {**DEFAULTS, **config}
    for name in ("steps", "equilibration_steps", "n_records", "seed", "lattice_size"):
        if int(config[name]) != config[name] or config[name] < 0:
            raise InputError(name, f"{config[name]!r} is not a non-negative integer", "give a whole number")
    if config["n_records"] < 3:
        raise InputError("n_records", "fewer than 3 records give no diffusion coefficient", "use 3 or more")
    if config["temperature"] <= 0:
        raise InputError("temperature", f"{config['temperature']} K", "give a positive temperature in K")
    if config["record_interval"] is not None and config["record_interval"] <= 0:
        raise InputError("record_interval", "must be positive (s)", "leave it out for the default")
    return config


def _record_interval(config: dict, total_rate: float) -> float:
    """The given interval, or the expected run time (steps / K at the start) spread over n_records."""
    if config["record_interval"] is not None:
        return float(config["record_interval"])
    return config["steps"] / total_rate / config["n_records"]


def _timed(run):
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _speed(steps: int, wall: float, cpu: float) -> dict:
    return {
        "steps_per_second": steps / wall if wall > 0 else None,
        "cpu_seconds_per_step": cpu / steps if steps else None,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }


def run_lattice_gas(config: dict, workdir: Path) -> tuple[int, dict]:
    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.core.kmc.lattice import (
        HopCatalogue,
        LatticeGasKMC,
        LatticeGasModel,
        checkerboard_types,
        square_lattice,
    )
    from aiida_autopipe.core.kmc.walk import diffusion_coefficient

    size = int(config["lattice_size"])
    site_energies = tuple(float(e) for e in config["site_energies"])
    if len(site_energies) not in (1, 2):
        raise InputError("site_energies", "one or two site types", "give [eps] or [eps_a, eps_b]")
    if len(site_energies) == 2 and size % 2:
        raise InputError("lattice_size", "odd: a checkerboard of two site types needs it even", "use L even")
    lattice = square_lattice(size, float(config["spacing"]))
    types = checkerboard_types(size) if len(site_energies) == 2 else np.zeros(lattice.n_sites, np.int32)
    if (config["coverage"] is None) == (config["n_particles"] is None):
        raise InputError("coverage", "give exactly one of coverage and n_particles", "e.g. coverage: 0.05")
    n_particles = (
        round(config["coverage"] * lattice.n_sites)
        if config["n_particles"] is None
        else int(config["n_particles"])
    )
    if not 0 < n_particles < lattice.n_sites:
        raise InputError("coverage", f"{n_particles} particles on {lattice.n_sites} sites", "need 0 < c < 1")
    if config["n_records"] * n_particles * lattice.vectors.shape[1] > MAX_TRAJECTORY_VALUES:
        raise InputError("n_records", "the trajectory would be too large", "record less often or fewer")
    model = LatticeGasModel(
        site_energies,
        float(config["barrier"]),
        float(config["interaction"]),
        float(config["temperature"]),
        float(config["prefactor"]),
    )
    catalogue = HopCatalogue.from_model(model, lattice.coordination)
    rng = np.random.default_rng(config["seed"])
    sites = rng.choice(lattice.n_sites, n_particles, replace=False)
    influence = 2 if model.interaction else 1
    setup = time.perf_counter()
    kmc = LatticeGasKMC(lattice, types, catalogue, sites, influence, config["seed"])
    kmc.run(0)  # compiles the kernel (or loads it from Numba's cache) outside the timing
    setup = time.perf_counter() - setup
    if config["equilibration_steps"]:
        kmc.run(config["equilibration_steps"])
    if kmc.total_rate <= 0:
        raise InputError("barrier", "no particle can hop (every rate underflows)", "lower it or heat up")
    interval = _record_interval(config, kmc.total_rate)
    trajectory, wall, cpu = _timed(lambda: kmc.run(config["steps"], interval, config["n_records"]))
    times = trajectory.times - trajectory.times[0] if trajectory.times.size else trajectory.times
    np.savez_compressed(
        workdir / TRAJECTORY_FILE,
        times=times,
        displacements=trajectory.displacements,
        sites=trajectory.sites,
    )
    n_per_type = np.bincount(types, minlength=len(site_energies))
    results = {
        "model": "lattice_gas",
        "steps": trajectory.n_steps,
        "simulated_time": trajectory.elapsed,
        "record_interval": interval,
        "n_records": int(times.size),
        "n_sites": lattice.n_sites,
        "n_particles": n_particles,
        "coverage": n_particles / lattice.n_sites,
        "mean_occupation_by_site_type": trajectory.mean_occupation_by_type(n_per_type).tolist()
        if trajectory.elapsed > 0
        else None,
        "hop_rate_isolated": float(catalogue.rates.max()) if len(site_energies) == 1 else None,
        "setup_seconds": setup,
        **_speed(trajectory.n_steps, wall, cpu),
    }
    if len(site_energies) == 1 and model.interaction == 0:
        # Tracer D = k a^2 (1 - O(c)) on the square lattice: exact in the dilute limit only.
        results["diffusion_coefficient_dilute_limit"] = float(catalogue.rates[0] * config["spacing"] ** 2)
    if times.size >= 3:
        results["diffusion_coefficient"], results["diffusion_coefficient_error"] = diffusion_coefficient(
            times, trajectory.displacements
        )
    if trajectory.n_steps < config["steps"]:
        return EXIT_STALLED, {
            **results,
            "status": "stalled",
            "message": f"no possible hop after {trajectory.n_steps} steps",
        }
    return EXIT_OK, {**results, "status": "completed"}


def _walk(rates, vectors, config: dict) -> tuple[dict, dict]:
    """BKL walk over a fixed catalogue: (arrays for trajectory.npz, results)."""
    from aiida_autopipe.core.kmc.walk import (
        diffusion_coefficient,
        drift_velocity,
        exact_walk_diffusion,
        run_event_walk,
    )

    interval = _record_interval(config, float(rates.sum()))
    setup = time.perf_counter()
    run_event_walk(rates, vectors, 0, interval, 0)  # compile (or load) the kernel outside the timing
    setup = time.perf_counter() - setup
    walk, wall, cpu = _timed(
        lambda: run_event_walk(rates, vectors, config["steps"], interval, config["n_records"], config["seed"])
    )
    arrays = {"times": walk.times, "displacements": walk.displacements, "event_counts": walk.event_counts}
    results = {
        "steps": walk.n_steps,
        "simulated_time": walk.final_time,
        "record_interval": interval,
        "n_records": int(walk.times.size),
        "event_rates": rates.tolist(),
        "total_rate": float(rates.sum()),
        "diffusion_coefficient_exact": exact_walk_diffusion(rates, vectors),
        "drift_velocity": drift_velocity(rates, vectors).tolist(),
        "setup_seconds": setup,
        **_speed(walk.n_steps, wall, cpu),
    }
    if walk.times.size >= 3:
        results["diffusion_coefficient"], results["diffusion_coefficient_error"] = diffusion_coefficient(
            walk.times, walk.displacements
        )
    return arrays, results


def run_event_catalogue(config: dict, workdir: Path) -> tuple[int, dict]:
    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.core.kmc.walk import event_rates

    events = config["events"]
    try:
        barriers = [float(event["barrier"]) for event in events]
        prefactors = [float(event.get("prefactor", config["prefactor"])) for event in events]
        vectors = np.array([event["displacement"] for event in events], dtype=float)
        tiers = [int(event.get("tier", 1)) for event in events]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            "events", f"each event needs barrier and displacement ({exc})", "see the runner's doc"
        ) from exc
    rates = event_rates(barriers, prefactors, float(config["temperature"]))
    trajectory, walk = _walk(rates, vectors, config)
    np.savez_compressed(workdir / TRAJECTORY_FILE, **trajectory)
    results = {
        "model": "event_catalogue",
        "status": "completed",
        "n_events": len(events),
        "n_tier2_events": int(sum(tier == 2 for tier in tiers)),
        **walk,
    }
    return EXIT_OK, results


def _saddle_search_model(config: dict, workdir: Path):
    """Reference + ACE (the MD runner's model) and a per-atom gamma function that leaves projections off for
    the many force calls of the searches."""
    from aiida_autopipe.runners.otf_md import make_model

    paths = {}
    for key in ("potential", "active_set") + (("reference",) if config["reference"] else ()):
        path = workdir / str(config[key])
        if not path.is_file():
            raise FileNotFoundError(f"{key}: file {path.name} not found")
        paths[key] = path
    model = make_model({"reference": None, **paths})

    def gamma_of(atoms) -> np.ndarray:
        probe = atoms.copy()
        probe.calc = model
        model.reset()
        model.ace.compute_projections = True
        try:
            probe.get_forces()
            return np.array(model.results["gamma"])
        finally:
            model.ace.compute_projections = False
            model.reset()

    return model, gamma_of


def run_saddle_search(config: dict, workdir: Path) -> tuple[int, dict]:
    """Vacancy in `structure`, dimer saddles of the hops into it with the trained potential, gamma at every
    saddle (uncertain ones written for labelling), tiered rates for the trusted ones, then their walk."""
    from ase.io import read, write

    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.core.kmc.catalogue import search_event_catalogue, vacancy_hops
    from aiida_autopipe.core.kmc.events import relax

    try:
        crystal = read(workdir / str(config["structure"]), format="extxyz")
        model, gamma_of = _saddle_search_model(config, workdir)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # pyace raises RuntimeError on bad files
        raise InputError("structure", f"{type(exc).__name__}: {exc}", "check the input files") from exc
    atom = int(config["vacancy_atom"])
    if not 0 <= atom < len(crystal):
        raise InputError("vacancy_atom", f"{atom} is not an atom", f"use 0..{len(crystal) - 1}")
    crystal_gamma = gamma_of(crystal)  # also primes pyace, which fails without projections on its first call
    vacancy = crystal.positions[atom].copy()
    nearest = float(np.min(np.delete(crystal.get_distances(atom, range(len(crystal)), mic=True), atom)))
    cutoff = float(config["hop_cutoff"] or 1.2 * nearest)
    del crystal[atom]
    search_start = time.perf_counter()
    minimum = relax(crystal, model, fmax=float(config["fmax"]))
    hops = vacancy_hops(minimum, vacancy, cutoff)
    if not hops:
        raise InputError("hop_cutoff", f"no atom within {cutoff:.2f} Angstrom of the vacancy", "raise it")
    catalogue = search_event_catalogue(
        minimum,
        lambda: model,
        hops,
        float(config["temperature"]),
        gamma_of,
        float(config["threshold"]),
        cumulative_share=float(config["tier2_share"]),
        hessian_radius=float(config["hessian_radius"] or cutoff),
        fmax=float(config["fmax"]),
    )
    saddles = []
    for index, (event, gamma) in enumerate(catalogue.uncertain):
        saddle = event.saddle.copy()
        saddle.set_array(GAMMA_ARRAY, np.asarray(gamma, dtype=float))
        saddle.info.update(barrier=float(event.barrier), saddle_index=index)
        saddles.append(saddle)
    write(workdir / UNCERTAIN_SADDLES_FILE, saddles, format="extxyz")
    results = {
        "model": "saddle_search",
        "status": "completed",
        "n_atoms": len(minimum),
        "hop_cutoff": cutoff,
        "threshold": float(config["threshold"]),
        "crystal_max_gamma": float(crystal_gamma.max()),
        "n_candidates": catalogue.n_searches,
        "n_unconverged": catalogue.n_unconverged,
        "n_events": len(catalogue.events),
        "n_not_saddles": catalogue.n_not_saddles,
        "n_uncertain_saddles": len(saddles),
        "uncertain_barriers": [float(s.info["barrier"]) for s in saddles],
        "uncertain_max_gamma": [float(s.arrays[GAMMA_ARRAY].max()) for s in saddles],
        "n_hessians": catalogue.n_hessians,
        "n_hessians_all_tier2": 2 * len(catalogue.events),
        "search_seconds": time.perf_counter() - search_start,
    }
    if not catalogue.events:  # nothing to walk: the labels of the uncertain saddles come first
        np.savez_compressed(workdir / TRAJECTORY_FILE, times=np.zeros(0), displacements=np.zeros((0, 1, 3)))
        message = (
            f"no trusted event: {len(saddles)} uncertain, {catalogue.n_not_saddles} not saddles, "
            f"{catalogue.n_unconverged} unconverged"
        )
        return EXIT_OK, {**results, "steps": 0, "message": message}
    arrays = catalogue.kmc_arrays("vacancy")
    results.update(
        barriers=arrays["barriers"].tolist(),
        prefactors=arrays["prefactors"].tolist(),
        tiers=arrays["tiers"].tolist(),
        n_tier2_events=int(np.sum(arrays["tiers"] == 2)),
    )
    rates = catalogue.rates.rates
    trajectory, walk = _walk(rates, np.ascontiguousarray(arrays["displacements"]), config)
    np.savez_compressed(workdir / TRAJECTORY_FILE, **trajectory)
    return EXIT_OK, {**results, **walk}


def run(config: dict, workdir: Path) -> tuple[int, dict]:
    """Check the input, run the lattice gas, the catalogue walk or the saddle search, write results.json."""
    from aiida_autopipe.core.errors import InputError

    try:
        config = _check(config)
        if config["structure"]:
            runner = run_saddle_search
        else:
            runner = run_event_catalogue if config["events"] else run_lattice_gas
        code, results = runner(config, workdir)
    except InputError as exc:
        code, results = EXIT_INVALID_INPUT, {"status": "invalid_input", "message": str(exc)}
    return finish(workdir, code, results)


def main(argv: list[str] | None = None) -> int:
    return command_line(
        "autopipe-kmc",
        __doc__.splitlines()[0],
        "kmc_input.yaml",
        run,
        lambda results: (
            f"{results['status']} after {results.get('steps', 0)} steps, "
            f"{results.get('steps_per_second') or 0:.3g} steps/s {results.get('message', '')}"
        ),
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
