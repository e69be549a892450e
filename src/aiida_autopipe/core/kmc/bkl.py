"""Residence-time (BKL, Bortz-Kalos-Lebowitz) kinetic Monte Carlo kernel for lattice hops, in Numba.

Every step picks one event with probability k_i / K (K = sum of all rates) and advances the clock by
-ln(u) / K, so time is physical (seconds when rates are in Hz). Site rates live in a binary sum tree:
selection and update are O(log N), and after a hop only the rates of sites within the influence radius of
the two changed sites are recomputed. Rates are never computed in the loop: they are looked up in a
catalogue indexed by the code of the local occupation pattern (see `lattice.pattern_code`).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def seed_numba_rng(seed):
    """Numba keeps its own random state: seed it for reproducible trajectories."""
    np.random.seed(seed)


@njit(cache=True)
def hop_code(site, direction, occupation, neighbours, reverse, site_types, n_types, context=True):
    """Catalogue index of the hop site -> neighbours[site, direction] (see `lattice.decode_pattern`); without
    `context` only the two site types count (a catalogue whose rates ignore the neighbours)."""
    target = neighbours[site, direction]
    code = site_types[site] * n_types + site_types[target]
    if not context:
        return code
    z = neighbours.shape[1]
    back = reverse[direction]
    for other in range(z):
        if other != direction:
            code = code * 2 + (1 if occupation[neighbours[site, other]] >= 0 else 0)
    for other in range(z):
        if other != back:
            code = code * 2 + (1 if occupation[neighbours[target, other]] >= 0 else 0)
    return code


@njit(cache=True)
def count_hop_codes(occupation, neighbours, reverse, site_types, n_types, counts):
    """Add to counts[code] every possible hop (particle next to an empty site) of the state."""
    for site in range(occupation.shape[0]):
        if occupation[site] >= 0:
            for direction in range(neighbours.shape[1]):
                if occupation[neighbours[site, direction]] < 0:
                    counts[
                        hop_code(site, direction, occupation, neighbours, reverse, site_types, n_types)
                    ] += 1


@njit(cache=True)
def refresh_site(
    site, occupation, neighbours, reverse, site_types, n_types, rate_table, hop_rates, tree, n_leaves
):
    """Recompute the hop rates out of one site and push its total up the sum tree.

    A rate table with one entry per pair of site types is read without neighbour context."""
    context = rate_table.shape[0] > n_types * n_types
    z = neighbours.shape[1]
    total = 0.0
    if occupation[site] >= 0:
        for direction in range(z):
            rate = 0.0
            if occupation[neighbours[site, direction]] < 0:
                code = hop_code(
                    site, direction, occupation, neighbours, reverse, site_types, n_types, context
                )
                rate = rate_table[code]
            hop_rates[site, direction] = rate
            total += rate
    else:
        for direction in range(z):
            hop_rates[site, direction] = 0.0
    node = n_leaves + site
    change = total - tree[node]
    if change == 0.0:
        return
    tree[node] = total
    node //= 2
    while node >= 1:  # incremental; `resum_tree` removes the round-off drift now and then
        tree[node] += change
        node //= 2


@njit(cache=True)
def resum_tree(tree, n_leaves):
    """Exact inner sums from the leaves."""
    for node in range(n_leaves - 1, 0, -1):
        tree[node] = tree[2 * node] + tree[2 * node + 1]


@njit(cache=True)
def build_tree(occupation, neighbours, reverse, site_types, n_types, rate_table, hop_rates, tree, n_leaves):
    """Fill all hop rates and the whole sum tree from scratch."""
    tree[:] = 0.0
    for site in range(occupation.shape[0]):
        refresh_site(
            site, occupation, neighbours, reverse, site_types, n_types, rate_table, hop_rates, tree, n_leaves
        )
    resum_tree(tree, n_leaves)


@njit(cache=True)
def bkl_steps(
    n_steps,
    time,
    occupation,
    particle_site,
    displacement,
    neighbours,
    reverse,
    vectors,
    site_types,
    n_types,
    affected,
    rate_table,
    hop_rates,
    tree,
    n_leaves,
    record_times,
    record_sites,
    record_displacements,
    occupied_time_by_type,
):
    """Run up to n_steps BKL steps in place; returns (steps done, clock, records written).

    The state at each of the sorted `record_times` is written to the record arrays (the state between
    two events is constant, so sampling on a fixed time grid is exact). `occupied_time_by_type[t]`
    accumulates the time integral of the number of particles on sites of type t.
    """
    n_records = record_times.shape[0]
    record = 0
    while record < n_records and record_times[record] < time:
        record += 1
    occupied_by_type = np.zeros(n_types)
    for site in range(occupation.shape[0]):
        if occupation[site] >= 0:
            occupied_by_type[site_types[site]] += 1.0
    z = neighbours.shape[1]
    refreshed_at = np.full(occupation.shape[0], -1, dtype=np.int64)  # refresh each affected site once a step
    step = 0
    while step < n_steps:
        if step % 65536 == 0:
            resum_tree(tree, n_leaves)
        total = tree[1]
        if total <= 0.0:
            break
        # Pick a site from the tree, then a direction within it.
        target = np.random.random() * total
        node = 1
        while node < n_leaves:
            left = 2 * node
            if target < tree[left]:
                node = left
            else:
                target -= tree[left]
                node = left + 1
        site = node - n_leaves
        if occupation[site] < 0 or tree[node] <= 0.0:
            resum_tree(tree, n_leaves)  # round-off landed on an empty leaf: clean the sums, draw again
            continue
        pick = np.random.random() * tree[node]
        direction = -1
        for candidate in range(z):
            if hop_rates[site, candidate] > 0.0:
                direction = candidate
                pick -= hop_rates[site, candidate]
                if pick < 0.0:
                    break
        dt = -np.log(1.0 - np.random.random()) / total
        while record < n_records and record_times[record] < time + dt:
            for particle in range(particle_site.shape[0]):
                record_sites[record, particle] = particle_site[particle]
                for k in range(displacement.shape[1]):
                    record_displacements[record, particle, k] = displacement[particle, k]
            record += 1
        for t in range(n_types):
            occupied_time_by_type[t] += occupied_by_type[t] * dt
        time += dt
        destination = neighbours[site, direction]
        particle = occupation[site]
        occupation[destination] = particle
        occupation[site] = -1
        particle_site[particle] = destination
        for k in range(displacement.shape[1]):
            displacement[particle, k] += vectors[direction, k]
        occupied_by_type[site_types[site]] -= 1.0
        occupied_by_type[site_types[destination]] += 1.0
        for side in range(2):
            changed = site if side == 0 else destination
            for j in range(affected.shape[1]):
                other = affected[changed, j]
                if refreshed_at[other] != step:
                    refreshed_at[other] = step
                    refresh_site(
                        other,
                        occupation,
                        neighbours,
                        reverse,
                        site_types,
                        n_types,
                        rate_table,
                        hop_rates,
                        tree,
                        n_leaves,
                    )
        step += 1
    return step, time, record
