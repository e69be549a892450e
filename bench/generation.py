"""Time per generated structure for each seed-structure method and system size. Prints figures; asserts
nothing.

    uv run python bench/generation.py            # about 3-5 minutes on 2 shared cores
    uv run python bench/generation.py --quick    # smallest sizes only

Calculators for the calculator-driven methods are ASE's analytic ones (LennardJones for argon-like
clusters and melts), so the timings separate the generator's own cost from the surrogate's: with a real
surrogate multiply the force-call counts printed by its time per call.
"""

import argparse
import time
import warnings

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.lj import LennardJones

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes only")
    quick = parser.parse_args().quick
    print("# bench/generation.py" + (" --quick" if quick else ""))
    bench_sqs([32] if quick else [32, 64, 96])
    bench_random_search([8] if quick else [8, 16, 32])
    bench_rattle([2] if quick else [2, 3, 4])
    bench_normal_modes([4] if quick else [4, 7, 10, 13])
    bench_melt_quench([2] if quick else [2, 3])


if __name__ == "__main__":
    main()
