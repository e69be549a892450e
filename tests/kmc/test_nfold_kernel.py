"""The n-fold-way bookkeeping stays exact: after many hops the incrementally kept class blocks equal a
classification from scratch, and K equals the sum over all possible hops of their catalogue rates."""

import numpy as np
import pytest

from aiida_autopipe.core.kmc.bkl import classify_slots
from aiida_autopipe.core.kmc.lattice import (
    HopCatalogue,
    LatticeGasKMC,
    LatticeGasModel,
    checkerboard_types,
    slots_affected,
    square_lattice,
)


@pytest.mark.parametrize("interaction", [0.0, -0.08])
def test_class_blocks_match_a_fresh_classification(interaction):
    size = 12
    lattice = square_lattice(size)
    types = checkerboard_types(size)
    model = LatticeGasModel(
        site_energies=(0.0, 0.05), barrier=0.3, interaction=interaction, temperature=400.0
    )
    catalogue = HopCatalogue.from_model(model, 4)
    sites = np.random.default_rng(0).choice(lattice.n_sites, 60, replace=False)
    kmc = LatticeGasKMC(lattice, types, catalogue, sites, seed=2)
    assert kmc.context == bool(interaction)  # neighbour context read only when rates depend on it
    assert kmc.class_rates.size == np.unique(catalogue.rates).size <= 64  # one class per distinct rate
    kmc.run(20_000)
    fresh = [np.zeros_like(kmc.event_class), np.zeros_like(kmc.order), np.zeros_like(kmc.position)]
    fresh_start = np.zeros_like(kmc.start)
    classify_slots(
        kmc.occupation, lattice.neighbours, lattice.reverse, types, 2, kmc.context, kmc.class_of_code,
        *fresh, fresh_start,
    )  # fmt: skip
    assert np.array_equal(fresh[0], kmc.event_class) and np.array_equal(fresh_start, kmc.start)
    assert np.array_equal(kmc.order[kmc.position], np.arange(kmc.order.size))  # order and position agree
    for block in range(kmc.start.size - 1):  # every slot sits inside its own class block
        members = kmc.order[kmc.start[block] : kmc.start[block + 1]]
        assert np.all(kmc.event_class[members] == block)
    assert kmc.total_rate == pytest.approx(np.sum(kmc.hop_counts() * catalogue.rates), rel=1e-12)


def test_affected_slots_are_the_hops_that_read_the_two_ends():
    """Square lattice: a hop changes its two ends; without neighbour context the hops touching either end
    (their own 4 + 4 slots and the 3 + 3 pointing at them from outside) can change rate, 14 in all."""
    lattice = square_lattice(8)
    z = lattice.coordination
    rows = slots_affected(lattice, 1)
    site, direction = 10, 0
    destination = lattice.neighbours[site, direction]
    expected = {s * z + d for s in (site, destination) for d in range(z)}
    expected |= {
        n * z + d
        for end in (site, destination)
        for n in lattice.neighbours[end]
        for d in range(z)
        if lattice.neighbours[n, d] == end
    }
    assert set(rows[site * z + direction].tolist()) == expected and len(expected) == 14
