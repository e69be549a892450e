"""Residence-time (BKL, Bortz-Kalos-Lebowitz) kinetic Monte Carlo kernel for lattice hops, in Numba.

Every step picks one event with probability k_i / K (K = sum of all rates) and advances the clock by
-ln(u) / K, so time is physical (seconds when rates are in Hz). The original n-fold way: rates are never
computed in the loop but looked up by the code of the hop's local occupation pattern (`hop_code`), and
hops of equal rate form one class. Every possible hop lives in its class's block of one slot array, so a
class is drawn by a scan over the few classes, a hop uniformly inside it, K is an exact sum of integer
counts times class rates (no round-off drift, unlike a sum tree), and after a hop only the hops whose rate
reads one of the two changed sites are re-classified, O(1) each.
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
def drop_bit(bits, position):
    """`bits` with the bit at `position` removed and the higher bits shifted down one place."""
    return ((bits >> (position + 1)) << position) | (bits & ((1 << position) - 1))


@njit(cache=True)
def masked_hop_code(site, direction, neighbour_mask, neighbours, reverse, site_types, n_types):
    """`hop_code` read from per-site masks of occupied neighbours (bit z - 1 - d for direction d): two reads
    instead of 2 (z - 1), the same code."""
    z = neighbours.shape[1]
    target = neighbours[site, direction]
    code = site_types[site] * n_types + site_types[target]
    code = (code << (z - 1)) | drop_bit(neighbour_mask[site], z - 1 - direction)
    return (code << (z - 1)) | drop_bit(neighbour_mask[target], z - 1 - reverse[direction])


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
def move_event(slot, new_class, event_class, order, position, start):
    """Move one (site, direction) slot from its class block of `order` to block `new_class`.

    `order` holds every slot, grouped by class in contiguous blocks [start[c], start[c + 1]); one class, of
    rate 0, holds the slots with no possible hop. A slot moves one block at a time: it swaps to the edge of
    its block, the boundary shifts past it, and so on, so the cost is the number of classes in between
    (classes are few: one per distinct rate)."""
    current = event_class[slot]
    while current != new_class:
        here = position[slot]
        if current < new_class:
            edge = start[current + 1] - 1  # last slot of this block
            start[current + 1] -= 1
            current += 1
        else:
            edge = start[current]  # first slot of this block
            start[current] += 1
            current -= 1
        other = order[edge]
        order[edge], order[here] = slot, other
        position[slot], position[other] = edge, here
    event_class[slot] = new_class


@njit(cache=True)
def classify_slots(
    occupation,
    neighbours,
    reverse,
    site_types,
    n_types,
    context,
    class_of_code,
    no_hop,
    event_class,
    order,
    position,
    start,
):
    """Put every (site, direction) slot in its class block from scratch (a counting sort). `start` has one
    entry per class (the rate classes and the no-hop class `no_hop`) and the end."""
    z = neighbours.shape[1]
    n_blocks = start.shape[0] - 1
    for site in range(occupation.shape[0]):
        for direction in range(z):
            block = no_hop
            if occupation[site] >= 0 and occupation[neighbours[site, direction]] < 0:
                block = class_of_code[
                    hop_code(site, direction, occupation, neighbours, reverse, site_types, n_types, context)
                ]
            event_class[site * z + direction] = block
    counts = np.bincount(event_class, minlength=n_blocks)
    start[0] = 0
    for block in range(n_blocks):
        start[block + 1] = start[block] + counts[block]
    fill = start[:-1].copy()
    for slot in range(event_class.shape[0]):
        block = event_class[slot]
        position[slot] = fill[block]
        order[fill[block]] = slot
        fill[block] += 1


@njit(cache=True)
def total_rate(class_rates, start):
    """K = sum over classes of (number of hops in the class) x (its rate): exact at every step, no drift."""
    total = 0.0
    for c in range(class_rates.shape[0]):
        total += (start[c + 1] - start[c]) * class_rates[c]
    return total


@njit(cache=True)
def reclassify(slot, new_class, event_class, order, position, start):
    """Move the slot to block `new_class` unless it is there already."""
    if new_class != event_class[slot]:
        move_event(slot, new_class, event_class, order, position, start)


@njit(cache=True)
def hop_class(
    site, direction, neighbour_mask, neighbours, reverse, site_types, n_types, context, class_of_code
):
    """Rate class of a possible hop, by the code of its neighbourhood or of its two site types alone."""
    if context:
        code = masked_hop_code(site, direction, neighbour_mask, neighbours, reverse, site_types, n_types)
    else:
        code = site_types[site] * n_types + site_types[neighbours[site, direction]]
    return class_of_code[code]


@njit(cache=True, inline="always")
def reclassify_around(
    vacated,
    filled,
    step,
    near,
    in_region,
    region,
    occupation,
    neighbour_mask,
    neighbours,
    reverse,
    site_types,
    n_types,
    context,
    class_of_code,
    no_hop,
    event_class,
    order,
    position,
    start,
):
    """After a hop vacated -> filled, re-classify every slot whose rate can read either site: the slots out of
    and into the region R = near[vacated] | near[filled] (a hop's rate reads the sites `near` its two ends).

    A hop k -> m is possible when k is occupied and m empty, and only the two ends of the hop changed, so
    most slots are skipped unread: those out of an empty site other than `vacated`, those into an occupied
    site other than `filled`, and those from or to an occupied site that did not change, which were impossible
    before the hop and still are. `in_region[site] == step` marks R (each slot is visited once)."""
    z = neighbours.shape[1]
    size = 0
    for end in range(2):
        centre = vacated if end == 0 else filled
        for j in range(near.shape[1]):
            site = near[centre, j]
            if in_region[site] != step:
                in_region[site] = step
                region[size] = site
                size += 1
    for j in range(size):
        site = region[j]
        occupied = occupation[site] >= 0
        if occupied or site == vacated:  # hops out of site
            for d in range(z):
                target = neighbours[site, d]
                if not occupied:
                    new_class = no_hop
                elif occupation[target] < 0:
                    new_class = hop_class(
                        site,
                        d,
                        neighbour_mask,
                        neighbours,
                        reverse,
                        site_types,
                        n_types,
                        context,
                        class_of_code,
                    )
                elif target == filled:
                    new_class = no_hop
                else:
                    continue
                reclassify(site * z + d, new_class, event_class, order, position, start)
        if not occupied or site == filled:  # hops into site from outside R
            for d in range(z):
                source = neighbours[site, d]
                if in_region[source] == step or occupation[source] < 0:
                    continue
                back = reverse[d]
                new_class = no_hop
                if not occupied:
                    new_class = hop_class(
                        source,
                        back,
                        neighbour_mask,
                        neighbours,
                        reverse,
                        site_types,
                        n_types,
                        context,
                        class_of_code,
                    )
                reclassify(source * z + back, new_class, event_class, order, position, start)


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
    near,
    context,
    class_of_code,
    class_rates,
    no_hop,
    event_class,
    order,
    position,
    start,
    record_times,
    record_sites,
    record_displacements,
    occupied_time_by_type,
):
    """Run up to n_steps BKL steps in place (n-fold way); returns (steps done, clock, records written).

    Hops are grouped in classes of equal rate: a class is drawn with probability count_c k_c / K, then a hop
    uniformly inside it, with no sum tree to update. `class_rates[no_hop]` is 0: the block of impossible hops.
    After a hop only the hops whose rate can depend on its two ends are re-classified (`reclassify_around`;
    `near[site]`: the sites a rate reads around an end). The state at each of the sorted `record_times` is
    written to the record arrays (the state between two events is constant, so sampling on a fixed time grid
    is exact). `occupied_time_by_type[t]` accumulates the time integral of the particles on sites of type t.
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
    n_classes = class_rates.shape[0]
    neighbour_mask = np.zeros(occupation.shape[0], dtype=np.int64)  # kept only when rates read context
    if context:
        for site in range(occupation.shape[0]):
            for direction in range(z):
                if occupation[neighbours[site, direction]] >= 0:
                    neighbour_mask[site] |= 1 << (z - 1 - direction)
    in_region = np.zeros(occupation.shape[0], dtype=np.int64)  # == step + 1: in the region of this hop
    region = np.empty(2 * near.shape[1], dtype=np.int64)
    step = 0
    while step < n_steps:
        total = total_rate(class_rates, start)
        if total <= 0.0:
            break
        pick = np.random.random() * total
        chosen = -1
        for c in range(n_classes):
            weight = (start[c + 1] - start[c]) * class_rates[c]
            if pick < weight:
                chosen = c
                break
            pick -= weight
        if chosen < 0:  # round-off ran past the last class: draw again
            continue
        count = start[chosen + 1] - start[chosen]
        index = min(int(pick / class_rates[chosen]), count - 1)
        slot = order[start[chosen] + index]
        site = slot // z
        direction = slot - site * z
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
        if context:
            for d in range(z):  # neighbour n = neighbours[site, d] sees site in direction reverse[d]
                neighbour_mask[neighbours[site, d]] &= ~(1 << (z - 1 - reverse[d]))
                neighbour_mask[neighbours[destination, d]] |= 1 << (z - 1 - reverse[d])
        reclassify_around(
            site,
            destination,
            step + 1,
            near,
            in_region,
            region,
            occupation,
            neighbour_mask,
            neighbours,
            reverse,
            site_types,
            n_types,
            context,
            class_of_code,
            no_hop,
            event_class,
            order,
            position,
            start,
        )
        step += 1
    return step, time, record


@njit(cache=True)
def catalogue_walk(
    n_steps, time, cumulative_rates, vectors, displacement, record_times, record_displacements, counts
):
    """BKL steps of one defect whose event catalogue repeats in every state (same local environment after
    each hop, e.g. a vacancy in a pure crystal): pick event i with probability k_i / K, advance the clock by
    -ln(u) / K, add vectors[i] to the unwrapped displacement. Returns (clock, records written)."""
    total = cumulative_rates[-1]
    n_records = record_times.shape[0]
    record = 0
    while record < n_records and record_times[record] < time:
        record += 1
    for _ in range(n_steps):
        event = np.searchsorted(cumulative_rates, np.random.random() * total, side="right")
        dt = -np.log(1.0 - np.random.random()) / total
        while record < n_records and record_times[record] < time + dt:
            for k in range(displacement.shape[0]):
                record_displacements[record, k] = displacement[k]
            record += 1
        time += dt
        counts[event] += 1
        for k in range(displacement.shape[0]):
            displacement[k] += vectors[event, k]
    return time, record
