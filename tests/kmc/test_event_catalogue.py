"""Event catalogue on EMT copper with a gold solute beside the vacancy: searches, de-duplication, gamma
check, tiered rates, and the arrays the kMC CalcJob takes."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.geometry import find_mic
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.kmc.catalogue import search_event_catalogue, vacancy_hops
from aiida_autopipe.core.kmc.events import dimer_saddle, relax
from aiida_autopipe.core.kmc.rates import arrhenius_rate


def fingerprints(atoms, cutoff=4.0):
    """Gaussian-smeared neighbour distances per atom (a species-blind radial descriptor)."""
    i, d = neighbor_list("id", atoms, cutoff)
    grid = np.linspace(1.5, cutoff, 51)
    values = np.zeros((len(atoms), grid.size))
    np.add.at(values, i, np.exp(-((grid[None] - d[:, None]) ** 2) / (2 * 0.1**2)))
    return values


class NoveltyGamma:
    """Stand-in for ACE's gamma: per-atom distance of each environment to the nearest training environment
    centred on the same element (ACE's basis is per element too)."""

    def __init__(self, training_frames):
        self.training = {}
        for atoms in training_frames:
            for symbol, values in zip(atoms.get_chemical_symbols(), fingerprints(atoms), strict=True):
                self.training.setdefault(symbol, []).append(values)

    def __call__(self, atoms):
        values = fingerprints(atoms)
        gamma = np.empty(len(atoms))
        for index, symbol in enumerate(atoms.get_chemical_symbols()):
            known = np.array(self.training.get(symbol, [np.full(values.shape[1], 1e3)]))
            gamma[index] = np.sqrt(((known - values[index]) ** 2).sum(axis=1)).min()
        return gamma


@pytest.fixture(scope="module")
def copper_with_gold():
    """2x2x2 fcc Cu (31 atoms) with a vacancy at the former atom 0 and a Au atom beside it; the
    'training set' holds the relaxed pure and alloyed minima and a Cu-hop saddle of pure Cu."""
    perfect = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    vacancy = perfect.positions[0].copy()
    pure = perfect.copy()
    del pure[0]
    pure = relax(pure, EMT(), fmax=0.005)
    hops = vacancy_hops(pure, vacancy, 2.6)
    assert len(hops) == 12
    push = np.zeros((len(pure), 3))
    push[hops[0][0]] = 0.4 * hops[0][1]
    pure_saddle = dimer_saddle(pure, EMT(), push).saddle
    alloy = pure.copy()
    gold = hops[5][0]
    alloy.symbols[gold] = "Au"
    alloy = relax(alloy, EMT(), fmax=0.005)
    return alloy, vacancy, gold, NoveltyGamma([pure, alloy, pure_saddle])


def test_catalogue_trusts_known_saddles_and_sends_the_gold_hop_to_labelling(copper_with_gold):
    alloy, vacancy, gold, gamma_of = copper_with_gold
    hops = vacancy_hops(alloy, vacancy, 2.6)
    gold_hop = next(hop for hop in hops if hop[0] == gold)
    # Cu hops far from the Au (its neighbours excluded), one of them twice: the duplicate must merge.
    _, from_gold = find_mic(alloy.positions - alloy.positions[gold], alloy.cell)
    far = [hop for hop in hops if from_gold[hop[0]] > 3.0][:3]
    candidates = [far[0], far[0], *far[1:], gold_hop]
    # Threshold: three times the largest gamma of thermally rattled (0.03 Angstrom) copies of the minimum.
    rattled = [alloy.copy() for _ in range(3)]
    for seed, atoms in enumerate(rattled):
        atoms.rattle(0.03, seed=seed)
    threshold = 3 * max(gamma_of(atoms).max() for atoms in rattled)
    catalogue = search_event_catalogue(
        alloy, EMT, candidates, 500.0, gamma_of, gamma_threshold=threshold, cumulative_share=0.5
    )
    assert catalogue.n_searches == 5 and catalogue.n_unconverged == 0
    assert [atom for atom, _ in catalogue.hops] == [hop[0] for hop in far]  # duplicate merged
    ((saddle, gammas),) = catalogue.uncertain
    assert gammas.argmax() == gold and gammas.max() > threshold  # the Au at a saddle is new to the potential
    moved, _ = find_mic(saddle.saddle.positions[gold] - alloy.positions[gold], alloy.cell)
    assert 0.8 < np.linalg.norm(moved) < 1.8  # halfway into the vacancy: a real saddle, not the minimum
    barriers = np.array([event.barrier for event in catalogue.events])
    assert np.all((barriers > 0.4) & (barriers < 1.0))
    rates = catalogue.rates
    # Tier 2 for the top share only; its prefactors are physical (0.1-100 THz); Tier 1 keeps 1e12 Hz.
    assert 1 <= rates.n_tier2 < len(catalogue.events)
    assert catalogue.n_hessians == 2 * rates.n_tier2
    assert np.all((rates.prefactors[rates.tier == 2] > 1e11) & (rates.prefactors[rates.tier == 2] < 1e14))
    # Tier 1 keeps the 1e12 Hz rates for the selection, then takes the Tier-2 events' mean prefactor.
    assert np.allclose(rates.tier1_rates, arrhenius_rate(barriers, 500.0, 1e12))
    tier2_mean = np.exp(np.log(rates.prefactors[rates.tier == 2]).mean())
    assert np.allclose(rates.prefactors[rates.tier == 1], tier2_mean)
    assert np.allclose(rates.rates, arrhenius_rate(barriers, 500.0, rates.prefactors))
    arrays = catalogue.kmc_arrays()
    assert np.allclose(arrays["displacements"], -np.array([vector for _, vector in catalogue.hops]))
    assert np.allclose(np.linalg.norm(arrays["displacements"], axis=1), 3.6 / np.sqrt(2), atol=0.05)
