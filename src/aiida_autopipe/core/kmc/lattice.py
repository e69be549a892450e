"""Lattice-gas kinetic Monte Carlo: lattices, hop catalogue keyed by local occupation, and the driver.

Energy model (eV): E = sum_i eps[type_i] n_i + V * sum_<ij> n_i n_j, with n_i in {0, 1}, eps a site
energy per site type and V a nearest-neighbour pair interaction (V < 0 attracts). A particle hops to an
empty nearest-neighbour site with rate k = nu exp(-Ea / kB T), where

    Ea = max(E0 + dE / 2, dE, 0),   dE = E_final - E_initial,

so k_forward / k_backward = exp(-dE / kB T) (detailed balance) for any E0, and the kinetics tend to the
stationary Boltzmann distribution of E. nu is the Tier-1 prefactor (1e12 Hz) unless a Tier-2 value is
set on the catalogue.

The catalogue: the rate of a hop depends only on the types of the two sites and on which of their other
neighbours are occupied. That local pattern is coded as an integer (`pattern_code`); the catalogue holds
one rate per code and the kernel looks rates up instead of computing them. Codes that describe the same
physical environment share one evaluation (`HopCatalogue.n_evaluations`), which is what makes an
expensive rate model (saddle searches on an atomistic potential) affordable.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase.units import kB

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.kmc.bkl import bkl_steps, classify_slots, count_hop_codes, seed_numba_rng, total_rate
from aiida_autopipe.core.kmc.rates import TIER1_PREFACTOR, select_top_events


@dataclass(frozen=True)
class Lattice:
    """A periodic lattice: neighbour table, reverse direction of each direction, hop vectors (Angstrom)."""

    neighbours: np.ndarray  # (n_sites, z) int32
    reverse: np.ndarray  # (z,) int32: hop d from i to j is undone by hop reverse[d] from j to i
    vectors: np.ndarray  # (z, dim) float64
    positions: np.ndarray  # (n_sites, dim) float64

    @property
    def n_sites(self) -> int:
        return self.neighbours.shape[0]

    @property
    def coordination(self) -> int:
        return self.neighbours.shape[1]


def square_lattice(size: int, spacing: float = 1.0) -> Lattice:
    """A size x size periodic square lattice; directions +x, -x, +y, -y."""
    if size < 3:
        raise InputError("kmc.lattice_size", f"{size} is too small for a periodic lattice", "use 3 or more")
    ix, iy = np.divmod(np.arange(size * size), size)
    index = lambda x, y: (x % size) * size + (y % size)  # noqa: E731
    neighbours = np.stack(
        [index(ix + 1, iy), index(ix - 1, iy), index(ix, iy + 1), index(ix, iy - 1)], axis=1
    )
    vectors = spacing * np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    positions = spacing * np.stack([ix, iy], axis=1).astype(float)
    return Lattice(neighbours.astype(np.int32), np.array([1, 0, 3, 2], dtype=np.int32), vectors, positions)


def checkerboard_types(size: int) -> np.ndarray:
    """Site types 0 and 1 alternating on a square lattice (every hop goes from one type to the other)."""
    ix, iy = np.divmod(np.arange(size * size), size)
    return ((ix + iy) % 2).astype(np.int32)


def sites_within(lattice: Lattice, hops: int) -> np.ndarray:
    """For each site, the sites reachable in at most `hops` hops (itself included), padded by repetition."""
    groups = []
    for site in range(lattice.n_sites):
        shell = {site}
        frontier = {site}
        for _ in range(hops):
            frontier = {int(n) for s in frontier for n in lattice.neighbours[s]} - shell
            shell |= frontier
        groups.append(sorted(shell))
    width = max(len(g) for g in groups)
    return np.array([g + [g[0]] * (width - len(g)) for g in groups], dtype=np.int32)


@dataclass(frozen=True)
class HopPattern:
    """The local environment of one hop, decoded from its catalogue code."""

    type_from: int
    type_to: int
    occupied_around_from: tuple  # occupations of the other neighbours of the departure site
    occupied_around_to: tuple  # occupations of the other neighbours of the arrival site

    @property
    def key(self) -> tuple:
        """What the pair energy model depends on: the two site types and the two neighbour counts."""
        return (self.type_from, self.type_to, sum(self.occupied_around_from), sum(self.occupied_around_to))


def n_pattern_codes(coordination: int, n_types: int) -> int:
    return n_types * n_types * 2 ** (2 * coordination - 2)


def decode_pattern(code: int, coordination: int, n_types: int) -> HopPattern:
    """Invert `bkl.hop_code`: bits of the arrival side are the lowest, departure side above, types on top."""
    n_bits = coordination - 1
    to_bits = [(code >> (n_bits - 1 - b)) & 1 for b in range(n_bits)]
    code >>= n_bits
    from_bits = [(code >> (n_bits - 1 - b)) & 1 for b in range(n_bits)]
    code >>= n_bits
    type_from, type_to = divmod(code, n_types)
    return HopPattern(type_from, type_to, tuple(from_bits), tuple(to_bits))


@dataclass(frozen=True)
class LatticeGasModel:
    """Site energies per type, pair interaction, bare barrier and temperature (eV, K, Hz)."""

    site_energies: tuple = (0.0,)
    barrier: float = 0.5
    interaction: float = 0.0
    temperature: float = 300.0
    prefactor: float = TIER1_PREFACTOR

    def energy_change(self, pattern: HopPattern) -> float:
        _, _, n_from, n_to = pattern.key
        eps = self.site_energies
        return eps[pattern.type_to] - eps[pattern.type_from] + self.interaction * (n_to - n_from)

    def activation_energy(self, pattern: HopPattern) -> float:
        delta = self.energy_change(pattern)
        return max(self.barrier + 0.5 * delta, delta, 0.0)

    def rate(self, pattern: HopPattern) -> float:
        return self.prefactor * np.exp(-self.activation_energy(pattern) / (kB * self.temperature))

    def total_energy(self, lattice: Lattice, site_types: np.ndarray, occupied: np.ndarray) -> float:
        """E of a configuration (occupied: boolean per site); each pair counted once."""
        occupied = occupied.astype(float)
        pairs = 0.5 * np.sum(occupied[:, None] * occupied[lattice.neighbours])
        return float(np.sum(np.asarray(self.site_energies)[site_types] * occupied) + self.interaction * pairs)


@dataclass
class HopCatalogue:
    """Rates indexed by pattern code, filled once per distinct environment key."""

    rates: np.ndarray
    coordination: int
    n_types: int
    n_evaluations: int  # how many times the (possibly expensive) rate function ran
    key_of_code: np.ndarray = field(repr=False)  # index of each code's environment in `patterns`
    patterns: list = field(repr=False)  # one representative HopPattern per environment

    @classmethod
    def build(
        cls,
        coordination: int,
        n_types: int,
        rate_of: Callable[[HopPattern], float],
        key_of: Callable[[HopPattern], tuple] = lambda pattern: pattern.key,
    ) -> "HopCatalogue":
        index: dict[tuple, int] = {}
        patterns, key_rates = [], []
        n_codes = n_pattern_codes(coordination, n_types)
        key_of_code = np.empty(n_codes, dtype=int)
        for code in range(n_codes):
            pattern = decode_pattern(code, coordination, n_types)
            key = key_of(pattern)
            if key not in index:
                index[key] = len(patterns)
                patterns.append(pattern)
                key_rates.append(float(rate_of(pattern)))
            key_of_code[code] = index[key]
        rates = np.asarray(key_rates)[key_of_code]
        return cls(rates, coordination, n_types, len(patterns), key_of_code, patterns)

    def with_tier2(
        self,
        hop_counts: np.ndarray,
        prefactor_of: Callable[[HopPattern], float],
        cumulative_share: float = 0.99,
        tier1_prefactor: float = TIER1_PREFACTOR,
    ) -> tuple["HopCatalogue", np.ndarray]:
        """Tier 2 for the environments carrying `cumulative_share` of the current state's Tier-1 total rate.

        `hop_counts[code]`: how many possible hops of each code the state has (`LatticeGasKMC.hop_counts`).
        The rates of the chosen environments are rescaled by prefactor_of(pattern) / tier1_prefactor (one
        Vineyard calculation per environment). Returns the new catalogue and the environments upgraded.
        """
        key_rates = np.bincount(
            self.key_of_code, weights=hop_counts * self.rates, minlength=len(self.patterns)
        )
        present = np.flatnonzero(key_rates > 0)
        upgraded = present[select_top_events(key_rates[present], cumulative_share)]
        scale = np.ones(len(self.patterns))
        for key in upgraded:
            scale[key] = prefactor_of(self.patterns[key]) / tier1_prefactor
        tiered = HopCatalogue(
            self.rates * scale[self.key_of_code],
            self.coordination,
            self.n_types,
            upgraded.size,
            self.key_of_code,
            self.patterns,
        )
        return tiered, upgraded

    @classmethod
    def from_model(cls, model: LatticeGasModel, coordination: int) -> "HopCatalogue":
        return cls.build(coordination, len(model.site_energies), model.rate)

    def kernel_classes(self) -> tuple[bool, np.ndarray, np.ndarray]:
        """What the kernel reads: whether rates depend on the neighbours (otherwise the code is the pair of
        site types alone and the kernel skips reading them), the rate class of each code, and one rate per
        class (distinct positive rates, fastest first; zero-rate codes go to the no-hop class)."""
        by_types = self.rates.reshape(self.n_types * self.n_types, -1)
        context = not np.all(by_types == by_types[:, :1])
        table = self.rates if context else np.ascontiguousarray(by_types[:, 0])
        class_rates = np.unique(table[table > 0])[::-1].copy()
        class_of_code = np.full(table.size, class_rates.size, dtype=np.int32)
        for index, rate in enumerate(class_rates):
            class_of_code[table == rate] = index
        return context, class_of_code, class_rates


def no_hop_position(populations: np.ndarray) -> int:
    """Where to insert the no-hop block among the rate-class blocks (index of the class it goes before) so
    that the slots of the populated classes are the fewest blocks away from it (a weighted median)."""
    positions = np.arange(populations.size + 1)[:, None]
    classes = np.arange(populations.size)[None, :]
    crossings = np.where(classes < positions, positions - classes, classes - positions + 1)
    return int(np.argmin(crossings @ populations))


@dataclass
class KMCTrajectory:
    """States on a fixed time grid: particle sites and unwrapped displacements (Angstrom) at `times` (s)."""

    times: np.ndarray
    sites: np.ndarray  # (n_records, n_particles)
    displacements: np.ndarray  # (n_records, n_particles, dim)
    n_steps: int
    final_time: float
    occupied_time_by_type: np.ndarray = field(repr=False)  # time integral of particles on each site type
    elapsed: float = 0.0  # clock advance of this run (s)

    def mean_occupation_by_type(self, n_sites_by_type: np.ndarray) -> np.ndarray:
        """Time-averaged fraction of occupied sites of each type over the run."""
        return self.occupied_time_by_type / (self.elapsed * np.asarray(n_sites_by_type))

    def save(self, path) -> None:
        np.savez_compressed(
            path,
            times=self.times,
            sites=self.sites,
            displacements=self.displacements,
            n_steps=self.n_steps,
            final_time=self.final_time,
        )


class LatticeGasKMC:
    """A lattice gas evolved with BKL steps; state and clock persist between `run` calls."""

    def __init__(
        self,
        lattice: Lattice,
        site_types: np.ndarray,
        catalogue: HopCatalogue,
        occupied_sites,
        influence_hops: int | None = None,
        seed: int = 0,
    ):
        occupied_sites = np.asarray(occupied_sites, dtype=np.int32)
        if occupied_sites.size != np.unique(occupied_sites).size or np.any(occupied_sites >= lattice.n_sites):
            raise InputError(
                "kmc.occupied_sites", "sites repeat or lie outside the lattice", "give unique indices"
            )
        site_types = np.asarray(site_types, dtype=np.int32)
        if (
            site_types.shape != (lattice.n_sites,)
            or site_types.min() < 0
            or site_types.max() >= catalogue.n_types
        ):
            raise InputError(
                "kmc.site_types", "one type per site, below the catalogue's n_types", "check them"
            )
        if catalogue.coordination != lattice.coordination:
            raise InputError("kmc.catalogue", "built for another coordination", "rebuild it for this lattice")
        self.lattice = lattice
        self.site_types = site_types
        self.catalogue = catalogue
        self.context, class_of_code, rates = catalogue.kernel_classes()
        # Hop k -> m depends on the sites within one hop of k or m (on k and m alone without context).
        needed = 2 if self.context else 1
        if influence_hops is not None and influence_hops < needed:
            raise InputError(
                "kmc.influence_hops",
                f"{influence_hops} misses rates that read the neighbours",
                f"use {needed}",
            )
        self.near = sites_within(lattice, (influence_hops or needed) - 1)  # what a rate reads around an end
        self.occupation = np.full(lattice.n_sites, -1, dtype=np.int32)
        self.occupation[occupied_sites] = np.arange(occupied_sites.size, dtype=np.int32)
        self.particle_site = occupied_sites.copy()
        self.displacement = np.zeros((occupied_sites.size, lattice.vectors.shape[1]))
        n_slots = lattice.neighbours.size
        self.event_class = np.zeros(n_slots, dtype=np.int32)
        self.order = np.zeros(n_slots, dtype=np.int32)
        self.position = np.zeros(n_slots, dtype=np.int32)
        self.start = np.zeros(rates.size + 2, dtype=np.int64)
        self.time = 0.0
        self.n_steps = 0
        seed_numba_rng(seed)
        np.random.seed(seed)  # with NUMBA_DISABLE_JIT=1 the kernel runs as pure Python on NumPy's generator
        # A hop that becomes possible or impossible moves its slot between the no-hop block and its class
        # block, crossing the blocks in between: put the no-hop block among the populated classes.
        self.class_of_code, self.class_rates, self.no_hop = class_of_code, np.append(rates, 0.0), rates.size
        self._classify_slots()
        self.no_hop = no_hop_position(np.diff(self.start)[: rates.size])
        self.class_of_code = np.where(
            class_of_code == rates.size, self.no_hop, class_of_code + (class_of_code >= self.no_hop)
        ).astype(np.int32)
        self.class_rates = np.insert(rates, self.no_hop, 0.0)
        self._classify_slots()

    def _classify_slots(self) -> None:
        classify_slots(
            self.occupation,
            self.lattice.neighbours,
            self.lattice.reverse,
            self.site_types,
            self.catalogue.n_types,
            self.context,
            self.class_of_code,
            self.no_hop,
            self.event_class,
            self.order,
            self.position,
            self.start,
        )

    @property
    def total_rate(self) -> float:
        return float(total_rate(self.class_rates, self.start))

    def hop_counts(self) -> np.ndarray:
        """Number of possible hops of each catalogue code in the current state."""
        counts = np.zeros(self.catalogue.rates.size, dtype=np.int64)
        count_hop_codes(
            self.occupation,
            self.lattice.neighbours,
            self.lattice.reverse,
            self.site_types,
            self.catalogue.n_types,
            counts,
        )
        return counts

    def run(self, n_steps: int, record_interval: float | None = None, n_records: int = 0) -> KMCTrajectory:
        """Advance n_steps events; record the state every `record_interval` seconds (at most n_records)."""
        if record_interval is not None and n_records > 0:
            record_times = self.time + record_interval * np.arange(n_records)
        else:
            record_times = np.zeros(0)
        n_particles, dim = self.displacement.shape
        record_sites = np.zeros((record_times.size, n_particles), dtype=np.int32)
        record_displacements = np.zeros((record_times.size, n_particles, dim))
        occupied_time = np.zeros(self.catalogue.n_types)
        start = self.time
        steps, self.time, written = bkl_steps(
            n_steps,
            self.time,
            self.occupation,
            self.particle_site,
            self.displacement,
            self.lattice.neighbours,
            self.lattice.reverse,
            self.lattice.vectors,
            self.site_types,
            self.catalogue.n_types,
            self.near,
            self.context,
            self.class_of_code,
            self.class_rates,
            self.no_hop,
            self.event_class,
            self.order,
            self.position,
            self.start,
            record_times,
            record_sites,
            record_displacements,
            occupied_time,
        )
        self.n_steps += steps
        return KMCTrajectory(
            record_times[:written],
            record_sites[:written],
            record_displacements[:written],
            int(steps),
            float(self.time),
            occupied_time,
            elapsed=float(self.time - start),
        )
