"""Tiered rates, Vineyard prefactors and saddle searches on EMT copper (ASE's effective-medium potential)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.geometry import find_mic
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.embedding import embed_uncertain_regions
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.kmc.events import (
    SaddleEvent,
    deduplicate_events,
    dimer_saddle,
    neb_saddle,
    relax,
    uncertain_saddles,
)
from aiida_autopipe.core.kmc.rates import (
    ANGULAR_FREQUENCY_UNIT,
    arrhenius_rate,
    finite_difference_hessian,
    rate_errors,
    select_top_events,
    tiered_rates,
    vineyard_prefactor,
)
from aiida_autopipe.core.threshold import gamma_threshold


def translation_free_hessian(eigenvalues, n_atoms, rng):
    """A symmetric 3N x 3N Hessian: the 3 rigid translations as zero modes, the given other eigenvalues."""
    translations = np.kron(np.ones((n_atoms, 1)), np.eye(3)) / np.sqrt(n_atoms)
    basis, _ = np.linalg.qr(np.hstack([translations, rng.normal(size=(3 * n_atoms, 3 * n_atoms - 3))]))
    others = basis[:, 3:]
    return others @ np.diag(eigenvalues) @ others.T


def test_vineyard_prefactor_matches_the_formula():
    rng = np.random.default_rng(0)
    n_atoms, mass = 4, 63.546
    minimum_modes = rng.uniform(1.0, 5.0, 3 * n_atoms - 3)
    saddle_modes = np.concatenate([[-2.0], rng.uniform(1.0, 5.0, 3 * n_atoms - 4)])
    minimum = translation_free_hessian(minimum_modes, n_atoms, rng)
    saddle = translation_free_hessian(saddle_modes, n_atoms, rng)
    expected = (
        np.sqrt(np.prod(minimum_modes / mass) / np.prod(saddle_modes[1:] / mass))
        * ANGULAR_FREQUENCY_UNIT
        / (2 * np.pi)
    )
    assert vineyard_prefactor(minimum, saddle, [mass] * n_atoms) == pytest.approx(expected, rel=1e-9)
    # One harmonic oscillator of 1 eV/A^2 and 1 amu: omega = 9.82e13 rad/s.
    assert pytest.approx(9.8227e13, rel=1e-4) == ANGULAR_FREQUENCY_UNIT
    with pytest.raises(InputError, match="hessian_saddle"):
        vineyard_prefactor(minimum, minimum, [mass] * n_atoms)


def test_top_event_selection_follows_the_tier1_share():
    barriers = np.array([0.50, 0.50, 0.55, 0.70, 0.90, 1.20, 0.50])
    rates = arrhenius_rate(barriers, 300.0)
    chosen = select_top_events(rates, 0.99)
    assert chosen.tolist() == [0, 1, 2, 6]  # three degenerate fastest events and the next one
    assert rates[chosen].sum() / rates.sum() >= 0.99
    assert select_top_events(rates, 0.5).tolist() == [0, 1, 6]  # ties are taken together
    calls = []
    fixed = tiered_rates(barriers, 300.0, lambda i: calls.append(i) or 3e12, 0.99, calibrate_tier1=False)
    assert sorted(calls) == [0, 1, 2, 6] and fixed.n_hessians() == 5
    assert np.all(fixed.prefactors[[3, 4, 5]] == 1e12)
    # Calibrated: the rest take the Tier-2 mean (3e12 Hz); no spread, so no margin and no extra Hessian.
    calibrated = tiered_rates(barriers, 300.0, lambda i: 3e12, 0.99)
    assert calibrated.top_events.tolist() == [0, 1, 2, 6] and np.allclose(calibrated.prefactors, 3e12)


def test_adaptive_selection_widens_the_cut_by_the_prefactor_spread():
    """Tier 1 picks events 0 and 1 (80 % share); their Vineyard prefactors differ tenfold, so events 2
    and 3, within that spread of the new cut, get Tier 2 as well; without a margin they stay in Tier 1."""
    barriers = np.array([0.50, 0.53, 0.55, 0.57, 0.90])
    vineyard = np.array([1e11, 1e12, 2e12, 3e12, 1e12])
    calls = []
    tiered = tiered_rates(barriers, 300.0, lambda i: calls.append(i) or vineyard[i], 0.8)
    assert calls == [0, 1, 2, 3] and tiered.tier.tolist() == [2, 2, 2, 2, 1]
    assert tiered.prefactors[4] == pytest.approx(np.exp(np.log(vineyard[:4]).mean()))
    narrow = tiered_rates(barriers, 300.0, vineyard.__getitem__, 0.8, margin_sigmas=0.0)
    assert narrow.top_events.tolist() == [0, 1]
    full = arrhenius_rate(barriers, 300.0, vineyard)
    assert rate_errors(tiered, full, 0.95)["missed"] == 0 < rate_errors(narrow, full, 0.95)["missed"]


def test_event_without_a_saddle_is_left_out_of_the_calibration():
    """prefactor_of gives NaN when the Hessians show no saddle: the others calibrate Tier 1 without it."""
    barriers = np.array([0.50, 0.50, 0.60, 0.90])
    tiered = tiered_rates(barriers, 300.0, lambda i: np.nan if i == 1 else 2e12, 0.99)
    assert tiered.top_events.tolist() == [0, 1, 2] and np.isnan(tiered.rates[1])
    assert tiered.prefactors[3] == pytest.approx(2e12) and np.all(np.isfinite(tiered.rates[[0, 2, 3]]))


@pytest.fixture(scope="module")
def copper_vacancy():
    """Relaxed 2x2x2 fcc Cu cell (31 atoms) with a vacancy at the former atom 0, and its 12 neighbours."""
    perfect = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    vectors, distances = find_mic(perfect.positions - perfect.positions[0], perfect.cell)
    shell = np.flatnonzero((distances > 0.1) & (distances < 2.6))
    atoms = perfect.copy()
    del atoms[0]
    return relax(atoms, EMT(), fmax=0.005), shell - 1, -vectors[shell]


def hop_final_state(minimum, atom, vector):
    final = minimum.copy()
    final.positions[atom] += vector
    return relax(final, EMT(), fmax=0.005)


def test_dimer_saddle_matches_neb_reference(copper_vacancy):
    minimum, neighbours, vectors = copper_vacancy
    reference = neb_saddle(minimum, hop_final_state(minimum, neighbours[0], vectors[0]), EMT, n_images=5)
    assert reference.converged and 0.5 < reference.barrier < 1.0  # EMT Cu vacancy migration
    push = np.zeros((len(minimum), 3))
    push[neighbours[0]] = 0.4 * vectors[0]
    found = dimer_saddle(minimum, EMT(), push)
    assert found.converged
    assert found.barrier == pytest.approx(reference.barrier, abs=0.01)
    moved, _ = find_mic(
        found.saddle.positions[neighbours[0]] - minimum.positions[neighbours[0]], minimum.cell
    )
    assert np.linalg.norm(moved) == pytest.approx(0.5 * np.linalg.norm(vectors[0]), abs=0.15)  # halfway


def local_indices(atoms, centre, radius=2.7):
    _, distances = find_mic(atoms.positions - centre, atoms.cell)
    return np.flatnonzero(distances < radius)


def test_tiered_and_full_rates_agree_on_top_events(copper_vacancy):
    """A Au solute next to the vacancy splits the 12 hops into classes; Tier 2 only for the fastest."""
    minimum, neighbours, vectors = copper_vacancy
    alloy = minimum.copy()
    alloy.symbols[neighbours[0]] = "Au"
    alloy = relax(alloy, EMT(), fmax=0.005)
    rng = np.random.default_rng(4)
    events, hops = [], []
    for hop, (atom, vector) in enumerate(zip(neighbours, vectors, strict=True)):
        for _ in range(2 if hop < 2 else 1):  # a second noisy search for two hops: the duplicates must merge
            push = 0.02 * rng.normal(size=(len(alloy), 3))
            push[atom] += 0.4 * vector
            events.append(dimer_saddle(alloy, EMT(), push))
            hops.append(atom)
    unique = deduplicate_events(events)
    assert len(unique) == len(neighbours) and all(event.converged for event in unique)
    hop_of = [hops[events.index(event)] for event in unique]
    vacancy = minimum.positions[neighbours[0]] + vectors[0]
    region = local_indices(alloy, vacancy)  # atoms that share the vacancy's first shell (partial Hessian)
    alloy.calc = EMT()
    masses = alloy.get_masses()[region]
    hessian_minimum = finite_difference_hessian(alloy, region)

    computed = {}

    def prefactor_of(event_index):
        if event_index not in computed:
            saddle = unique[event_index].saddle.copy()
            saddle.calc = EMT()
            hessian_saddle = finite_difference_hessian(saddle, region)
            computed[event_index] = vineyard_prefactor(hessian_minimum, hessian_saddle, masses, 0)
        return computed[event_index]

    barriers = np.array([event.barrier for event in unique])
    tiered = tiered_rates(barriers, 500.0, prefactor_of, cumulative_share=0.95)
    full_prefactors = np.array(
        [tiered.prefactors[i] if tiered.tier[i] == 2 else prefactor_of(i) for i in range(12)]
    )
    full = arrhenius_rate(barriers, 500.0, full_prefactors)
    errors = rate_errors(tiered, full, top_share=0.95)  # on the events carrying 95 % of the full rate
    assert 1 <= tiered.n_tier2 < len(unique)
    assert np.all((full_prefactors > 1e11) & (full_prefactors < 1e14))
    assert errors["missed"] == 0 and errors["top_rate"] == 0.0  # every top event got its Vineyard rate
    assert errors["top_probability"] < 0.05 and errors["total_rate"] < 0.05
    fixed = rate_errors(tiered_rates(barriers, 500.0, prefactor_of, 0.95, calibrate_tier1=False), full)
    assert errors["total_rate"] <= fixed["total_rate"]
    assert len(set(np.round(barriers, 3))) > 1 and hop_of[int(np.argmax(tiered.rates))] in neighbours


def radial_fingerprints(atoms, cutoff=4.0):
    """Gaussian-smeared neighbour distances per atom: a simple descriptor of each local environment."""
    i, d = neighbor_list("id", atoms, cutoff)
    grid = np.linspace(1.5, cutoff, 51)
    fingerprints = np.zeros((len(atoms), grid.size))
    np.add.at(fingerprints, i, np.exp(-((grid[None] - d[:, None]) ** 2) / (2 * 0.1**2)))
    return fingerprints


def test_uncertain_saddle_goes_to_labelling(copper_vacancy):
    """Stand-in for ACE gamma (Module D): per-atom distance of the local environment to the nearest one in a
    'training set' (the relaxed minimum). The threshold comes from thermally rattled copies; the saddle's
    hopping atom is far outside, so the saddle is sent to labelling and cut out around that atom."""
    minimum, neighbours, vectors = copper_vacancy
    training = radial_fingerprints(minimum)

    def novelty(atoms):
        fingerprints = radial_fingerprints(atoms)
        return np.sqrt(((fingerprints[:, None, :] - training[None]) ** 2).sum(axis=-1)).min(axis=1)

    rattled = [minimum.copy() for _ in range(3)]
    for seed, atoms in enumerate(rattled):
        atoms.rattle(0.03, seed=seed)
    threshold = gamma_threshold([novelty(atoms) for atoms in rattled], 99, floor=0.1, ceiling=100.0)
    push = np.zeros((len(minimum), 3))
    push[neighbours[0]] = 0.4 * vectors[0]
    saddle = dimer_saddle(minimum, EMT(), push)
    near_minimum = minimum.copy()
    near_minimum.rattle(0.02, seed=9)
    calm = SaddleEvent(near_minimum, 0.0, 0.0, "test")  # an environment the training set knows
    trusted, to_label = uncertain_saddles([saddle, calm], novelty, threshold)
    assert trusted == [calm] and len(to_label) == 1
    event, gammas = to_label[0]
    assert np.argmax(gammas) == neighbours[0]
    (cluster,) = embed_uncertain_regions(event.saddle, gammas, threshold, r_cut=2.6)
    assert neighbours[0] in cluster.atoms.arrays["autopipe_parent_index"][cluster.regions == "core"]
