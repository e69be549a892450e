"""Time per periodic embedding (cut-out, buffer, H caps or counter-ions, box) and per EMT buffer relaxation.

Reproduce: `uv run python bench/embedding.py` (under a minute on 2 cores).
"""

import os
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_autopipe.core.embedding import embed_uncertain_regions, relax_buffer

R_CUT = 5.0  # a typical ACE cutoff (Angstrom); the buffer is as thick


def vacancy_parent(symbol, structure, a, repeat):
    """Parent with atom 0 removed, gamma 5 on the vacancy's first shell and 0.5 elsewhere."""
    atoms = bulk(symbol, structure, a=a, cubic=True).repeat(repeat)
    distances = atoms.get_distances(0, range(len(atoms)), mic=True)
    shell = np.flatnonzero((distances > 0.1) & (distances < distances[distances > 0.1].min() + 0.1))
    del atoms[0]
    gammas = np.full(len(atoms), 0.5)
    gammas[shell - 1] = 5.0
    return atoms, gammas


def timed(function, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.process_time()
        result = function()
        times.append(time.process_time() - start)
    return result, float(np.median(times))


def main() -> None:
    print(
        "reproduce: uv run python bench/embedding.py   "
        f"(host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    print(f"r_cut = buffer = {R_CUT} A; CPU time per call, median of 5")
    header = f"{'parent':28s} {'bonding':9s} {'atoms':>6s} {'core':>5s} {'buffer':>6s} {'caps':>5s}"
    header += f" {'charge':>13s} {'ms':>7s}"
    print(header)
    cases = [
        ("Si diamond 64, vacancy", ("Si", "diamond", 5.43, 2), "covalent"),
        ("Si diamond 512, vacancy", ("Si", "diamond", 5.43, 4), "covalent"),
        ("NaCl rocksalt 64, vacancy", ("NaCl", "rocksalt", 5.64, 2), "ionic"),
        ("NaCl rocksalt 512, vacancy", ("NaCl", "rocksalt", 5.64, 4), "ionic"),
        ("Cu fcc 108, vacancy", ("Cu", "fcc", 3.61, 3), "alloy"),
        ("Cu fcc 864, vacancy", ("Cu", "fcc", 3.61, 6), "alloy"),
    ]
    for label, parent_args, bonding in cases:
        parent, gammas = vacancy_parent(*parent_args)
        (cluster,), seconds = timed(lambda: embed_uncertain_regions(parent, gammas, 2.0, R_CUT, bonding))  # noqa: B023
        region = cluster.regions
        print(
            f"{label:28s} {bonding:9s} {len(cluster.atoms):6d} {np.sum(region == 'core'):5d} "
            f"{np.sum(region == 'buffer'):6d} {cluster.n_caps:5d} {cluster.charge_method:>13s} "
            f"{1e3 * seconds:7.1f}"
        )
    parent, gammas = vacancy_parent("Cu", "fcc", 3.61, 3)
    (cluster,) = embed_uncertain_regions(parent, gammas, 2.0, R_CUT, "alloy")
    start = time.process_time()
    relaxed = relax_buffer(cluster.atoms, EMT(), fmax=0.05, steps=300)
    print(
        f"buffer relaxation, EMT, {len(cluster.atoms)} Cu atoms: {time.process_time() - start:.2f} s CPU, "
        f"converged {relaxed.converged}, largest buffer move {relaxed.max_displacement:.3f} A, "
        f"energy change {relaxed.energy_change:.3f} eV"
    )


if __name__ == "__main__":
    main()
