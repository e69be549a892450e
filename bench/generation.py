"""Time per generated structure for each seed-structure method and system size. Prints figures; asserts
nothing.

    uv run python bench/generation.py            # about 8-10 minutes on 2 shared cores
    uv run python bench/generation.py --quick    # smallest sizes only
    uv run python bench/generation.py --no-surrogate     # only the surrogate-free generators, core numerics
    uv run python bench/generation.py --surrogate-only   # only the runner (CHGNet) sections, about 4 minutes

The core sections use ASE's analytic calculators (LennardJones for argon-like clusters and melts), so the
timings separate the generator's own cost from the surrogate's. The surrogate sections run the
`autopipe-surrogate` runner (what SurrogateCalculation executes, without AiiDA's overhead) with CHGNet
0.3.0 on the CPU, one torch thread: melt-quench of diamond Si, normal modes of G2 molecules, relaxation of
random NaCl cells, as StructureGeneratorWorkChain submits them. The load average is printed with the figures.
"""

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.lj import LennardJones
from ase.io import write

from aiida_autopipe.core.structures.base import GeneratedStructure
from aiida_autopipe.core.structures.melt_quench import melt_quench
from aiida_autopipe.core.structures.normal_modes import (
    colour_atoms,
    finite_difference_hessian,
    normal_modes,
    thermal_displacements,
)
from aiida_autopipe.core.structures.random_search import random_search
from aiida_autopipe.core.structures.rattle import rattled_structures
from aiida_autopipe.core.structures.sanity import check_structure
from aiida_autopipe.core.structures.sqs import generate_sqs
from aiida_autopipe.runners import surrogate as runner

SURROGATE = {"requested": "chgnet", "device": "cpu"}


class CountingCalculator(LennardJones):
    """LennardJones that counts its force evaluations."""

    calls = 0

    def calculate(self, *args, **kwargs):
        CountingCalculator.calls += 1
        super().calculate(*args, **kwargs)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_sqs(sizes):
    print("\n## SQS (icet simulated annealing, 30 steps per atom), FePt 50/50 and CoCrFeNi on their lattice")
    print("composition             atoms  s/structure  max|dCV|  rms|dCV|")
    for composition in ({"Fe": 0.5, "Pt": 0.5}, {"Co": 0.25, "Cr": 0.25, "Fe": 0.25, "Ni": 0.25}):
        for size in sizes:
            sqs, seconds = timed(generate_sqs, composition, min_atoms=size, max_atoms=size + 8, seed=0)
            name = "".join(f"{symbol}{amount:g}" for symbol, amount in composition.items())
            largest = sqs.details["sqs_max_correlation_deviation"]
            rms = sqs.details["sqs_rms_correlation_deviation"]
            print(f"{name:22s}  {len(sqs.atoms):5d}  {seconds:11.2f}  {largest:8.3f}  {rms:8.3f}")


def bench_random_search(sizes):
    print("\n## Random ionic cells (unrelaxed), 8 candidates each")
    print("composition  max_atoms  s/structure")
    for composition in ({"Na": 1, "Cl": 1}, {"Fe": 2, "O": 3}):
        for size in sizes:
            _, seconds = timed(random_search, composition, 8, max_atoms=size, seed=0)
            name = "".join(f"{symbol}{amount:g}" for symbol, amount in composition.items())
            print(f"{name:11s}  {size:9d}  {seconds / 8:11.3f}")


def bench_rattle(sizes):
    print("\n## Deep rattling of diamond Si (0.2 Angstrom, guard 0.75 x covalent bond) + sanity check")
    print("atoms  s/structure")
    for repeat in sizes:
        parent = GeneratedStructure(bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat), "input", "si")
        start = time.perf_counter()
        structures = rattled_structures(parent, (0.2,), 4)
        for structure in structures:
            check_structure(structure.atoms)
        print(f"{len(parent.atoms):5d}  {(time.perf_counter() - start) / 4:11.3f}")


def bench_normal_modes(sizes):
    print("\n## Normal modes of argon-like simple-cubic clusters (LJ, rc 4.5 Angstrom, spacing 3.8 Angstrom)")
    print("atoms  colours  force_calls  hessian_s  diag_s  sample_s/structure")
    for edge in sizes:
        grid = np.array([[i, j, k] for i in range(edge) for j in range(edge) for k in range(edge)]) * 3.8
        cluster = Atoms(f"Ar{len(grid)}", positions=grid)
        calculator = CountingCalculator(sigma=3.4, epsilon=0.0104, rc=4.5, smooth=True)
        CountingCalculator.calls = 0
        hessian, hessian_seconds = timed(finite_difference_hessian, cluster, calculator, cutoff=4.5)
        calls = CountingCalculator.calls
        (omega_squared, modes, _), diagonal_seconds = timed(normal_modes, cluster, hessian)
        _, sample_seconds = timed(
            thermal_displacements, cluster, omega_squared, modes, 300.0, 100, np.random.default_rng(0)
        )
        colours = colour_atoms(cluster, 4.5).max() + 1
        print(
            f"{len(cluster):5d}  {colours:7d}  {calls:11d}  {hessian_seconds:9.1f}  {diagonal_seconds:6.1f}"
            f"  {sample_seconds / 100:18.5f}"
        )


def bench_melt_quench(sizes):
    print("\n## Melt-quench, LJ argon at crystal density, 200 MD steps (Langevin); time per step")
    print("atoms  ms/step")
    for repeat in sizes:
        crystal = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(repeat)
        parent = GeneratedStructure(crystal, "input", "ar")
        calculator = LennardJones(sigma=3.4, epsilon=0.0104, rc=7.0, smooth=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            _, seconds = timed(melt_quench, parent, calculator, 800.0, 10.0, 150, 50, 10.0)
        print(f"{len(crystal):5d}  {1000 * seconds / 200:7.1f}")


def run_surrogate_runner(structures, tasks) -> dict:
    """One `autopipe-surrogate` run in a scratch folder; its results.json (with the model load time)."""
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder) / "structures.extxyz", structures)
        config = {
            "surrogate": SURROGATE,
            "structures": "structures.extxyz",
            "tasks": tasks,
            "torch_threads": 1,
        }
        code, results = runner.run(config, Path(folder))
    if code != runner.EXIT_OK:
        raise RuntimeError(f"runner failed: {results['status']} {results['message']}")
    results["setup_s"] = results["wall_time_s"] - sum(record["wall_time_s"] for record in results["runs"])
    return results


def bench_runner_melt_quench(repeats):
    steps = 50
    print(
        f"\n## Melt-quench through the runner: diamond Si, CHGNet, 3500 K, {steps}+{steps} MD steps, 20 FIRE"
    )
    print("atoms  s/quench  ms/MD_step  structures  model_load_s")
    for repeat in repeats:
        crystal = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        task = {"kind": "melt_quench", "melt_temperature": 3500.0, "melt_steps": steps, "quench_steps": steps,
                "n_melt_snapshots": 1, "relax_steps": 20}  # fmt: skip
        results = run_surrogate_runner([crystal], [task])
        (record,) = results["runs"]
        seconds = record["wall_time_s"]
        print(
            f"{len(crystal):5d}  {seconds:8.1f}  {1000 * seconds / (2 * steps + 20):10.0f}"
            f"  {len(record['structures']):10d}  {results['setup_s']:12.1f}"
        )


def bench_runner_normal_modes(names):
    temperatures, n_samples = [100.0, 300.0], 8
    print(
        f"\n## Normal modes through the runner: G2 molecules, CHGNet, dense Hessian, {n_samples} samples x 2T"
    )
    print("molecule  atoms  relax_steps  hessian_s  s/structure  modes  highest_cm")
    for name in names:
        task = {"kind": "normal_modes", "temperatures": temperatures, "n_samples": n_samples}
        results = run_surrogate_runner([molecule(name)], [task])
        (record,) = results["runs"]
        per_structure = record["wall_time_s"] / len(record["structures"])
        wavenumbers = record["wavenumbers_cm"]
        print(
            f"{name:8s}  {len(molecule(name)):5d}  {record['relax_steps']:11d}"
            f"  {record['harmonic_analysis_s']:9.1f}  {per_structure:11.2f}  {len(wavenumbers):5d}"
            f"  {max(wavenumbers):10.0f}"
        )


def bench_runner_relax(sizes):
    print("\n## Random NaCl cells relaxed through the runner: CHGNet, FIRE with cell, fmax 0.1, <=100 steps")
    print("max_atoms  atoms  s/structure  steps/structure")
    for size in sizes:
        cells = random_search({"Na": 1, "Cl": 1}, 3, max_atoms=size, seed=0)
        task = {"kind": "relax", "fmax": 0.1, "steps": 100, "relax_cell": True, "save_every": 100}
        results = run_surrogate_runner([cell.atoms for cell in cells], [task])
        runs = results["runs"]
        atoms = "/".join(str(len(cell.atoms)) for cell in cells)
        seconds = np.mean([record["wall_time_s"] for record in runs])
        steps = np.mean([record["steps_done"] for record in runs])
        print(f"{size:9d}  {atoms:>5s}  {seconds:11.2f}  {steps:15.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes only")
    sections = parser.add_mutually_exclusive_group()
    sections.add_argument("--no-surrogate", action="store_true", help="skip the runner (CHGNet) sections")
    sections.add_argument("--surrogate-only", action="store_true", help="only the runner (CHGNet) sections")
    arguments = parser.parse_args()
    quick = arguments.quick
    print("# bench/generation.py" + (" --quick" if quick else ""))
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not arguments.surrogate_only:
        bench_sqs([32] if quick else [32, 64, 96])
        bench_random_search([8] if quick else [8, 16, 32])
        bench_rattle([2] if quick else [2, 3, 4])
        bench_normal_modes([4] if quick else [4, 7, 10, 13])
        bench_melt_quench([2] if quick else [2, 3])
    if not arguments.no_surrogate:
        os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        bench_runner_melt_quench([1] if quick else [1, (2, 1, 1), 2])
        bench_runner_normal_modes(["H2O"] if quick else ["H2O", "CH4", "C6H6"])
        bench_runner_relax([8] if quick else [8, 16])
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
