"""kMC figures: BKL steps per second (Numba vs pure Python: a list-based BKL and the same kernel without JIT)
and what tiered rates save.

Reproduce: `uv run python bench/kmc.py` (several minutes on 2 cores; `--skip-tiering` for the first part).
"""

import argparse
import math
import os
import random
import subprocess
import sys
import time

import numpy as np

from aiida_autopipe.core.kmc.lattice import HopCatalogue, LatticeGasKMC, LatticeGasModel, square_lattice

SIZE = 100  # 10,000 sites


def lattice_gas(coverage: float, interaction: float, seed: int = 0) -> LatticeGasKMC:
    lattice = square_lattice(SIZE, 2.55)
    model = LatticeGasModel(barrier=0.4, interaction=interaction, temperature=500.0)
    catalogue = HopCatalogue.from_model(model, lattice.coordination)
    sites = np.random.default_rng(seed).choice(
        lattice.n_sites, int(coverage * lattice.n_sites), replace=False
    )
    return LatticeGasKMC(lattice, np.zeros(lattice.n_sites), catalogue, sites, 2 if interaction else 1, seed)


def steps_per_second(kmc: LatticeGasKMC, n_steps: int) -> tuple[float, float]:
    """(steps per CPU second of this process, steps per wall second): the machine is shared, so wall time
    also measures the neighbours."""
    wall, cpu = time.perf_counter(), time.process_time()
    done = kmc.run(n_steps).n_steps
    return done / (time.process_time() - cpu), done / (time.perf_counter() - wall)


def idiomatic_python_bkl(kmc: LatticeGasKMC, n_steps: int) -> tuple[float, float]:
    """The same n-fold-way BKL written as plain Python on lists (class blocks of one slot list, neighbour
    table, the kernel's re-classification of the hops out of and into the region around a hop with the same
    skips, per-site masks of occupied neighbours, rate class looked up by occupation code, `random` and
    `math`): the fair baseline, unlike the kernel run without JIT, which indexes NumPy arrays one scalar at a
    time. Returns the (CPU, wall) seconds of the steps alone: building the lists is set-up, as for Numba."""
    neighbours = kmc.lattice.neighbours.tolist()
    reverse = kmc.lattice.reverse.tolist()
    near = kmc.near.tolist()  # the sites a rate reads around each end of a hop
    class_of_code, class_rates = kmc.class_of_code.tolist(), kmc.class_rates.tolist()
    event_class, order, position = kmc.event_class.tolist(), kmc.order.tolist(), kmc.position.tolist()
    start = kmc.start.tolist()
    occupied = (kmc.occupation >= 0).tolist()
    types, n_types = kmc.site_types.tolist(), kmc.catalogue.n_types
    context, z, no_hop = kmc.context, len(reverse), kmc.no_hop  # no_hop: the block of impossible hops
    last_rate_class = max(c for c, rate in enumerate(class_rates) if rate > 0)  # where round-off lands
    mask = [sum(occupied[n] << (z - 1 - d) for d, n in enumerate(row)) for row in neighbours]

    def drop_bit(bits, position):
        return ((bits >> (position + 1)) << position) | (bits & ((1 << position) - 1))

    def hop_class(site, direction):
        target = neighbours[site][direction]
        code = types[site] * n_types + types[target]
        if context:
            code = (code << (z - 1)) | drop_bit(mask[site], z - 1 - direction)
            code = (code << (z - 1)) | drop_bit(mask[target], z - 1 - reverse[direction])
        return class_of_code[code]

    def move(slot, new):
        current = event_class[slot]
        while current != new:
            here = position[slot]
            if current < new:
                start[current + 1] -= 1
                edge = start[current + 1]
                current += 1
            else:
                edge = start[current]
                start[current] += 1
                current -= 1
            other = order[edge]
            order[edge], order[here] = slot, other
            position[slot], position[other] = edge, here
        event_class[slot] = new

    clock = 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n_steps):
        weights = [(start[c + 1] - start[c]) * rate for c, rate in enumerate(class_rates)]
        total = sum(weights)
        pick, chosen = random.random() * total, last_rate_class
        for c, weight in enumerate(weights):
            if pick < weight:
                chosen = c
                break
            pick -= weight
        count = start[chosen + 1] - start[chosen]
        slot = order[start[chosen] + min(int(pick / class_rates[chosen]), count - 1)]
        site, direction = divmod(slot, z)
        clock += -math.log(1.0 - random.random()) / total
        destination = neighbours[site][direction]
        occupied[site], occupied[destination] = False, True
        if context:
            for d in range(z):
                mask[neighbours[site][d]] &= ~(1 << (z - 1 - reverse[d]))
                mask[neighbours[destination][d]] |= 1 << (z - 1 - reverse[d])
        region = set(near[site]).union(near[destination])
        for centre in region:  # as `bkl.reclassify_around`
            if occupied[centre] or centre == site:  # hops out of centre
                for d, target in enumerate(neighbours[centre]):
                    if not occupied[centre] or target == destination:
                        new = no_hop
                    elif not occupied[target]:
                        new = hop_class(centre, d)
                    else:
                        continue
                    if new != event_class[centre * z + d]:
                        move(centre * z + d, new)
            if not occupied[centre] or centre == destination:  # hops into centre from outside the region
                for d, source in enumerate(neighbours[centre]):
                    if source in region or not occupied[source]:
                        continue
                    back = reverse[d]
                    new = hop_class(source, back) if not occupied[centre] else no_hop
                    if new != event_class[source * z + back]:
                        move(source * z + back, new)
    return time.process_time() - cpu, time.perf_counter() - wall


def python_steps_per_second(kmc: LatticeGasKMC, n_steps: int) -> tuple[float, float]:
    """`idiomatic_python_bkl` from the current state of `kmc` (left unchanged): (per CPU s, per wall s)."""
    cpu, wall = idiomatic_python_bkl(kmc, n_steps)
    return n_steps / cpu, n_steps / wall


def pure_python(coverage: float, interaction: float, n_steps: int) -> tuple[float, float]:
    """The Numba kernel itself with NUMBA_DISABLE_JIT=1 (NumPy arrays indexed element by element), in a
    fresh interpreter: (steps per CPU second, per wall second)."""
    command = [sys.executable, __file__, "--pure-python", str(coverage), str(interaction), str(n_steps)]
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(output[-2]), float(output[-1])


def bench_kernel() -> None:
    print(f"BKL kMC on a {SIZE}x{SIZE} periodic square lattice ({SIZE * SIZE} sites), nearest-neighbour hops")
    print("steps/s per CPU second (per wall second in brackets; the host is shared)")
    print(f"{'case':36s} {'Numba':>22s} {'Python (lists)':>22s} {'kernel, no JIT':>22s} {'speed-up':>15s}")
    for coverage, interaction, label in [
        (0.05, 0.0, "dilute gas, no interaction"),
        (0.5, 0.0, "half filled, no interaction"),
        (0.5, -0.05, "half filled, NN attraction 0.05 eV"),
    ]:
        kmc = lattice_gas(coverage, interaction)
        kmc.run(10_000)  # JIT compilation (or cache load) happens here
        numba_cpu, numba_wall = max(steps_per_second(kmc, 2_000_000) for _ in range(3))
        # Best of three as for Numba, each from the state the Numba runs reached (same occupations).
        lists_cpu, lists_wall = max(python_steps_per_second(kmc, 20_000) for _ in range(3))
        nojit_cpu, nojit_wall = pure_python(coverage, interaction, 5_000)
        print(
            f"{label:36s} {numba_cpu:10.3e} ({numba_wall:9.3e}) {lists_cpu:10.3e} ({lists_wall:9.3e}) "
            f"{nojit_cpu:10.3e} ({nojit_wall:9.3e}) "
            f"{numba_cpu / lists_cpu:6.0f}x /{numba_cpu / nojit_cpu:5.0f}x"
        )
    print("  (speed-up per CPU second: over the list-based Python BKL / over the kernel run without JIT)")


def bench_tiering() -> None:
    """Vacancy hops in EMT Cu-Au (10 % Au, eight vacancies with 1-4 Au neighbours, 248 atoms, 96 hops):
    every hop's saddle by the dimer method, Vineyard prefactors from partial Hessians (the hopping atom and
    its four window atoms) for all events (full) or for the top events by Tier-1 share only (tiered), at
    three temperatures: the colder, the fewer events matter and the more tiering saves."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.geometry import find_mic

    from aiida_autopipe.core.kmc.events import dimer_saddle, relax
    from aiida_autopipe.core.kmc.rates import (
        arrhenius_rate,
        finite_difference_hessian,
        rate_errors,
        select_top_events,
        tiered_rates,
        vineyard_prefactor,
    )

    rng = np.random.default_rng(1)
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(4)
    crystal.symbols[rng.choice(len(crystal), 26, replace=False)] = "Au"
    vacancies = []  # eight vacancies at least two neighbour shells apart: no hop joins two of them
    for site in rng.permutation(len(crystal)):
        _, apart = find_mic(crystal.positions[vacancies] - crystal.positions[site], crystal.cell)
        if len(vacancies) < 8 and np.all(apart > 5.0):
            vacancies.append(int(site))
    hops = []  # (atom index after deletion, hop vector)
    keep = np.setdiff1d(np.arange(len(crystal)), vacancies)
    for vacancy in vacancies:
        vectors, distances = find_mic(crystal.positions - crystal.positions[vacancy], crystal.cell)
        for atom in np.flatnonzero((distances > 0.1) & (distances < 2.6)):
            if atom in keep:
                hops.append((int(np.searchsorted(keep, atom)), -vectors[atom]))
    start = time.perf_counter()
    minimum = relax(crystal[keep], EMT(), fmax=0.005)
    events = []
    for atom, vector in hops:
        push = np.zeros((len(minimum), 3))
        push[atom] = 0.4 * vector
        events.append(dimer_saddle(minimum, EMT(), push))
    search_time = time.perf_counter() - start
    barriers = np.array([event.barrier for event in events])
    hessian_calls = {"count": 0}

    def prefactor_of(index):
        atom, vector = hops[index]
        middle = minimum.positions[atom] + 0.5 * vector
        _, distances = find_mic(minimum.positions - middle, minimum.cell)
        region = np.flatnonzero(distances < 2.1)
        at_minimum, at_saddle = minimum.copy(), events[index].saddle.copy()
        at_minimum.calc, at_saddle.calc = EMT(), EMT()
        hessian_calls["count"] += 2
        return vineyard_prefactor(
            finite_difference_hessian(at_minimum, region),
            finite_difference_hessian(at_saddle, region),
            minimum.get_masses()[region],
            n_zero_modes=0,
        )

    start = time.perf_counter()
    full_prefactors = np.array([prefactor_of(i) for i in range(len(events))])
    full_time, full_hessians = time.perf_counter() - start, hessian_calls["count"]
    print(f"\nTiered rates: {len(events)} vacancy-hop events in EMT Cu-Au (prefactors do not depend on T)")
    print(
        f"  saddle searches (dimer): {search_time:.1f} s; "
        f"barriers {barriers.min():.3f}-{barriers.max():.3f} eV"
    )
    print(f"  Vineyard prefactors: {full_prefactors.min():.2e}-{full_prefactors.max():.2e} Hz")
    print(f"  full Tier 2: {full_hessians} Hessians (2 partial ones per event), {full_time:.1f} s")
    print(
        "  errors on the top events of the full catalogue (those carrying 95 % of its total rate K): "
        "largest relative error of a rate and of a selection probability k_i/K; error of K"
    )
    print(
        f"  {'T (K)':>5s} {'top':>4s} {'bound':>6s} {'scheme':>9s} {'share':>5s} {'Tier 2':>6s} "
        f"{'Hessians':>8s} {'saved':>6s} {'missed':>6s} {'top k':>7s} {'top p':>7s} {'K':>7s}"
    )
    for temperature in (300.0, 400.0, 500.0):
        full_rates = arrhenius_rate(barriers, temperature, full_prefactors)
        n_top = select_top_events(full_rates, 0.95).size
        for calibrate, scheme in ((False, "fixed"), (True, "adaptive")):
            for share in (0.9, 0.95, 0.99):
                # The Tier-2 values are the ones computed above: the same numbers tiering would compute.
                tiered = tiered_rates(
                    barriers, temperature, full_prefactors.__getitem__, share, calibrate_tier1=calibrate
                )
                errors = rate_errors(tiered, full_rates, top_share=0.95)
                hessians = 2 * tiered.n_tier2
                print(
                    f"  {temperature:5.0f} {n_top:4d} {len(events) / n_top:5.1f}x {scheme:>9s} {share:5.2f} "
                    f"{tiered.n_tier2:6d} {hessians:8d} {full_hessians / hessians:5.1f}x "
                    f"{errors['missed']:6d} {errors['top_rate']:7.2%} {errors['top_probability']:7.2%} "
                    f"{errors['total_rate']:7.2%}"
                )
    print(
        "  (top: events carrying 95 % of the full rate; bound: the largest saving that keeps all of them in "
        "Tier 2;\n   fixed: one Tier-1 pass at 1e12 Hz; adaptive: Tier 1 recalibrated to the Tier-2 mean "
        "prefactor, reselected\n   with a margin of 2 standard deviations of ln(prefactor), until the top "
        "set is all Tier 2)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-tiering", action="store_true")
    parser.add_argument("--pure-python", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pure_python:
        coverage, interaction, n_steps = (
            float(args.pure_python[0]),
            float(args.pure_python[1]),
            int(args.pure_python[2]),
        )
        print(*steps_per_second(lattice_gas(coverage, interaction), n_steps))
        return
    print(
        "reproduce: uv run python bench/kmc.py   "
        f"(host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
    )
    bench_kernel()
    if not args.skip_tiering:
        bench_tiering()


if __name__ == "__main__":
    main()
