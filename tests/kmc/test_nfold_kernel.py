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
    no_hop_position,
    square_lattice,
)


@pytest.mark.parametrize(("interaction", "influence_hops"), [(0.0, None), (-0.08, None), (-0.08, 3)])
def test_class_blocks_match_a_fresh_classification(interaction, influence_hops):
    size = 12
    lattice = square_lattice(size)
    types = checkerboard_types(size)
    model = LatticeGasModel(
        site_energies=(0.0, 0.05), barrier=0.3, interaction=interaction, temperature=400.0
    )
    catalogue = HopCatalogue.from_model(model, 4)
    sites = np.random.default_rng(0).choice(lattice.n_sites, 60, replace=False)
    kmc = LatticeGasKMC(lattice, types, catalogue, sites, influence_hops, seed=2)
    assert kmc.context == bool(interaction)  # neighbour context read only when rates depend on it
    # One class per distinct rate, and the no-hop class (rate 0) among them.
    assert kmc.class_rates.size == np.unique(catalogue.rates).size + 1 <= 65
    assert kmc.class_rates[kmc.no_hop] == 0 and np.all(np.delete(kmc.class_rates, kmc.no_hop) > 0)
    kmc.run(20_000)
    fresh = [np.zeros_like(kmc.event_class), np.zeros_like(kmc.order), np.zeros_like(kmc.position)]
    fresh_start = np.zeros_like(kmc.start)
    classify_slots(
        kmc.occupation, lattice.neighbours, lattice.reverse, types, 2, kmc.context, kmc.class_of_code,
        kmc.no_hop, *fresh, fresh_start,
    )  # fmt: skip
    assert np.array_equal(fresh[0], kmc.event_class) and np.array_equal(fresh_start, kmc.start)
    assert np.array_equal(kmc.order[kmc.position], np.arange(kmc.order.size))  # order and position agree
    for block in range(kmc.start.size - 1):  # every slot sits inside its own class block
        members = kmc.order[kmc.start[block] : kmc.start[block + 1]]
        assert np.all(kmc.event_class[members] == block)
    assert kmc.total_rate == pytest.approx(np.sum(kmc.hop_counts() * catalogue.rates), rel=1e-12)


def test_no_hop_block_sits_next_to_the_most_populated_class():
    """Slots that become possible or impossible cross every block between theirs and the no-hop block."""
    assert no_hop_position(np.array([1, 2, 50, 3, 1])) in (2, 3)
    assert no_hop_position(np.array([40, 1, 1, 1])) in (0, 1)
    assert no_hop_position(np.array([1, 1, 1, 40])) in (3, 4)
