"""BKL lattice-gas kMC against analytic results: tracer diffusion, two-site occupation, pair statistics."""

import itertools

import numpy as np
import pytest
from ase.units import kB
from scipy.special import gammaln

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.kmc.bkl import hop_code
from aiida_autopipe.core.kmc.lattice import (
    HopCatalogue,
    LatticeGasKMC,
    LatticeGasModel,
    checkerboard_types,
    decode_pattern,
    square_lattice,
)


def test_pattern_code_round_trip():
    """The kernel's code of a hop decodes to the real occupations around the two sites."""
    lattice = square_lattice(6)
    types = checkerboard_types(6)
    rng = np.random.default_rng(3)
    occupation = np.where(rng.random(lattice.n_sites) < 0.5, 0, -1).astype(np.int32)
    for site, direction in itertools.product(range(lattice.n_sites), range(4)):
        target = lattice.neighbours[site, direction]
        pattern = decode_pattern(
            hop_code(site, direction, occupation, lattice.neighbours, lattice.reverse, types, 2), 4, 2
        )
        around_from = [occupation[n] >= 0 for d, n in enumerate(lattice.neighbours[site]) if d != direction]
        back = lattice.reverse[direction]
        around_to = [occupation[n] >= 0 for d, n in enumerate(lattice.neighbours[target]) if d != back]
        assert (pattern.type_from, pattern.type_to) == (types[site], types[target])
        assert list(pattern.occupied_around_from) == around_from
        assert list(pattern.occupied_around_to) == around_to


def test_catalogue_evaluates_each_environment_once():
    model = LatticeGasModel(site_energies=(0.0, 0.1), barrier=0.4, interaction=-0.05)
    catalogue = HopCatalogue.from_model(model, coordination=4)
    assert catalogue.rates.size == 256
    assert (
        catalogue.n_evaluations == 4 * 4 * 4
    )  # (type_from, type_to) x (0..3 neighbours) x (0..3 neighbours)


def test_dilute_tracer_diffusion_matches_analytic():
    """Dilute limit on a square lattice: each particle hops to each of 4 neighbours at rate k, so
    <r^2>(t) = 4 k a^2 t = 4 D t and D = k a^2 (the exclusion correction is O(c) = 0.2 % here)."""
    size, spacing, n_particles = 100, 2.5, 20
    lattice = square_lattice(size, spacing)
    model = LatticeGasModel(barrier=0.3, temperature=300.0)
    hop_rate = 1e12 * np.exp(-0.3 / (kB * 300.0))
    sites = np.random.default_rng(1).choice(lattice.n_sites, n_particles, replace=False)
    kmc = LatticeGasKMC(
        lattice, np.zeros(lattice.n_sites), HopCatalogue.from_model(model, 4), sites, 1, seed=7
    )
    assert kmc.total_rate == pytest.approx(4 * hop_rate * n_particles, rel=1e-6)  # nobody blocked at start
    interval = 8.0 / (4 * hop_rate)  # about 8 hops per particle between records
    trajectory = kmc.run(1_000_000, record_interval=interval, n_records=10_000)
    steps = np.diff(trajectory.displacements, axis=0)
    samples = np.sum(steps**2, axis=2).ravel() / (4 * interval)
    estimate, error = samples.mean(), samples.std() / np.sqrt(samples.size)
    exact = hop_rate * spacing**2
    assert abs(estimate - exact) < max(4 * error, 0.005 * exact)
    assert error < 0.01 * exact
    # Records sit on the time grid, and unwrapped displacements end on the recorded sites (modulo the box).
    assert np.allclose(trajectory.times, interval * np.arange(trajectory.times.size))
    box = size * spacing
    unwrapped = lattice.positions[trajectory.sites[0]][None] + trajectory.displacements
    assert np.allclose(np.mod(unwrapped, box), lattice.positions[trajectory.sites])
    # The clock: mean residence time 1/K for a constant total rate K (only exclusions change K).
    assert trajectory.final_time == pytest.approx(1_000_000 / (4 * hop_rate * n_particles), rel=0.01)


def canonical_occupation_of_high_sites(n_low, n_high, n_particles, delta, temperature):
    """Exact canonical <n_high> for non-interacting particles on two site energies (0 and delta)."""
    n_on_high = np.arange(max(0, n_particles - n_low), min(n_high, n_particles) + 1)
    log_weight = (
        gammaln(n_high + 1)
        - gammaln(n_on_high + 1)
        - gammaln(n_high - n_on_high + 1)
        + gammaln(n_low + 1)
        - gammaln(n_particles - n_on_high + 1)
        - gammaln(n_low - n_particles + n_on_high + 1)
        - n_on_high * delta / (kB * temperature)
    )
    weight = np.exp(log_weight - log_weight.max())
    return float(np.sum(n_on_high * weight) / weight.sum())


def test_two_site_energy_occupation_matches_canonical_ensemble():
    size, n_particles, delta, temperature = 20, 100, 0.04, 300.0
    lattice = square_lattice(size)
    types = checkerboard_types(size)
    model = LatticeGasModel(site_energies=(0.0, delta), barrier=0.25, temperature=temperature)
    sites = np.random.default_rng(2).choice(lattice.n_sites, n_particles, replace=False)
    kmc = LatticeGasKMC(lattice, types, HopCatalogue.from_model(model, 4), sites, 1, seed=11)
    kmc.run(100_000)  # equilibrate
    n_per_type = np.bincount(types)
    segments = [kmc.run(100_000).mean_occupation_by_type(n_per_type)[1] for _ in range(20)]
    estimate, error = np.mean(segments), np.std(segments) / np.sqrt(len(segments))
    exact = canonical_occupation_of_high_sites(200, 200, n_particles, delta, temperature) / 200
    assert abs(estimate - exact) < max(4 * error, 0.002)
    assert error < 0.02 * exact
    # Fermi-Dirac with equal site counts differs from 0.25 by more than the error bar: the test can fail.
    assert abs(exact - 0.25) > 10 * error


def test_pair_interaction_reaches_boltzmann_statistics():
    """4 x 4 periodic lattice, 4 attracting particles: <number of NN pairs> from exact enumeration."""
    size, n_particles, temperature, pair_energy = 4, 4, 300.0, -0.04
    lattice = square_lattice(size)
    types = np.zeros(lattice.n_sites, dtype=np.int32)
    model = LatticeGasModel(barrier=0.2, interaction=pair_energy, temperature=temperature)

    def n_pairs(occupied_sites):
        occupied = np.zeros(lattice.n_sites, bool)
        occupied[list(occupied_sites)] = True
        return 0.5 * np.sum(occupied[:, None] & occupied[lattice.neighbours])

    pairs = np.array([n_pairs(c) for c in itertools.combinations(range(lattice.n_sites), n_particles)])
    weight = np.exp(-pair_energy * pairs / (kB * temperature))
    exact = np.sum(pairs * weight) / weight.sum()
    kmc = LatticeGasKMC(lattice, types, HopCatalogue.from_model(model, 4), [0, 5, 10, 15], 2, seed=5)
    kmc.run(20_000)
    interval = 20 / kmc.total_rate
    trajectory = kmc.run(400_000, record_interval=interval, n_records=100_000)
    sampled = np.array([n_pairs(s) for s in trajectory.sites[::5]])
    blocks = np.array_split(sampled, 20)
    estimate = np.mean(sampled)
    error = np.std([b.mean() for b in blocks]) / np.sqrt(len(blocks))
    assert abs(estimate - exact) < max(4 * error, 0.02 * exact)
    assert exact > 1.3 * np.sum(pairs) / pairs.size  # attraction matters: the test can tell


def test_bad_occupation_is_an_input_error():
    lattice = square_lattice(4)
    catalogue = HopCatalogue.from_model(LatticeGasModel(), 4)
    with pytest.raises(InputError, match="occupied_sites"):
        LatticeGasKMC(lattice, np.zeros(16), catalogue, [1, 1])
    with pytest.raises(InputError, match="site_types"):
        LatticeGasKMC(lattice, np.ones(16), catalogue, [1, 2])


def test_tier2_upgrades_only_the_environments_that_carry_the_rate():
    """Half-filled attracting gas: the hop out of a lone particle dominates the Tier-1 rate. An
    environment-dependent prefactor (a stand-in for the Vineyard value of each environment) is computed for
    the top environments only, and the total rate stays within the untreated share of the full-Tier-2 one."""
    lattice = square_lattice(30)
    model = LatticeGasModel(barrier=0.3, interaction=-0.1, temperature=400.0)
    catalogue = HopCatalogue.from_model(model, 4)
    sites = np.random.default_rng(0).choice(lattice.n_sites, 450, replace=False)
    kmc = LatticeGasKMC(lattice, np.zeros(lattice.n_sites), catalogue, sites, 2, seed=1)
    kmc.run(50_000)
    counts = kmc.hop_counts()
    assert np.sum(counts * catalogue.rates) == pytest.approx(kmc.total_rate, rel=1e-9)

    def prefactor_of(pattern):  # stiffer, more crowded environments: larger prefactor (0.5-3.3 THz)
        return 1e12 * (0.5 + 0.7 * pattern.key[2])

    tiered, upgraded = catalogue.with_tier2(counts, prefactor_of, cumulative_share=0.9)
    full, everything = catalogue.with_tier2(counts, prefactor_of, cumulative_share=1.0)
    present = np.unique(catalogue.key_of_code[counts > 0])
    assert 0 < upgraded.size < present.size == everything.size
    key_rates = np.bincount(catalogue.key_of_code, counts * catalogue.rates, len(catalogue.patterns))
    assert key_rates[upgraded].sum() >= 0.9 * key_rates.sum()
    for key in upgraded:
        codes = catalogue.key_of_code == key
        assert np.allclose(tiered.rates[codes], full.rates[codes])  # top environments agree exactly
    total_tiered, total_full = np.sum(counts * tiered.rates), np.sum(counts * full.rates)
    assert abs(total_tiered / total_full - 1) < 0.1 * 2.3  # untreated share x largest prefactor error
    resumed = LatticeGasKMC(lattice, np.zeros(lattice.n_sites), tiered, kmc.particle_site, 2)
    assert resumed.total_rate == pytest.approx(total_tiered, rel=1e-9)
