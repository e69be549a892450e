"""Atomistic event catalogue of one relaxed state: saddle searches, de-duplication, gamma check, tiered rates.

For each candidate hop (an atom and the vector it would travel, e.g. into a neighbouring vacancy) a dimer
search starts from the minimum pushed along the hop. Duplicate saddles merge; every saddle's per-atom
extrapolation grade is checked, and uncertain saddles are returned for labelling instead of being given a
rate. The trusted events get Tier-1 rates, and Vineyard prefactors (Tier 2) from partial Hessians of the atoms
around each hop only for the events that carry the largest share of the Tier-1 rate.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.kmc.events import deduplicate_events, dimer_saddle, uncertain_saddles
from aiida_autopipe.core.kmc.rates import (
    TIER1_PREFACTOR,
    TieredRates,
    finite_difference_hessian,
    tiered_rates,
    vineyard_prefactor,
)


@dataclass
class EventCatalogue:
    """Trusted events with rates, and the saddles that must be labelled before anyone trusts them."""

    events: list  # SaddleEvent, trusted and converged
    hops: list  # (atom, hop vector in Angstrom) of each trusted event
    rates: TieredRates
    uncertain: list  # (SaddleEvent, per-atom gamma) pairs for labelling
    n_searches: int
    n_unconverged: int
    n_hessians: int  # partial Hessians computed (Tier 2 only)
    n_not_saddles: int = 0  # dimer end points whose Hessians show no single imaginary mode (dropped)

    def kmc_arrays(self, carrier: str = "vacancy") -> dict:
        """Arrays for `KmcCalculation.event_catalogue`: the carrier moves against the atom for a vacancy and
        with it for an interstitial or adatom."""
        if carrier not in ("vacancy", "atom"):
            raise InputError("carrier", f"{carrier!r} is unknown", "use 'vacancy' or 'atom'")
        sign = -1.0 if carrier == "vacancy" else 1.0
        return {
            "barriers": np.array([event.barrier for event in self.events]),
            "prefactors": self.rates.prefactors.copy(),
            "displacements": sign * np.array([vector for _, vector in self.hops], dtype=float),
            "tiers": self.rates.tier.copy(),
        }


def vacancy_hops(atoms: Atoms, vacancy_position, cutoff: float) -> list:
    """Candidate hops into a vacancy: every atom within `cutoff` (Angstrom) of it, with its hop vector."""
    vectors, distances = find_mic(np.asarray(vacancy_position) - atoms.positions, atoms.cell, atoms.pbc)
    return [(int(atom), vectors[atom]) for atom in np.flatnonzero(distances < cutoff)]


def hop_region(minimum: Atoms, atom: int, vector, radius: float) -> np.ndarray:
    """Atoms within `radius` of the hop's midpoint, the hopping atom always included: the block of the
    Hessian that changes between minimum and saddle."""
    _, distances = find_mic(
        minimum.positions - (minimum.positions[atom] + 0.5 * np.asarray(vector)), minimum.cell, minimum.pbc
    )
    return np.union1d(np.flatnonzero(distances < radius), [atom])


def search_event_catalogue(
    minimum: Atoms,
    calculator_factory: Callable[[], object],
    candidate_hops,
    temperature: float,
    gamma_of: Callable[[Atoms], np.ndarray],
    gamma_threshold: float,
    cumulative_share: float = 0.95,
    calibrate_tier1: bool = True,
    push_fraction: float = 0.4,
    hessian_radius: float = 2.2,
    fmax: float = 0.01,
) -> EventCatalogue:
    """Events out of the relaxed `minimum` for the candidate (atom, hop vector) pairs.

    The Hessians are partial (atoms within `hessian_radius` of each hop's midpoint, surroundings fixed), so
    no translation modes are dropped; each Tier-2 event costs two of them, which tiering saves on the rest.
    A Tier-2 event whose Hessians show no single imaginary mode is not a first-order saddle (the dimer
    stopped on a flat or wrong region of the potential): it is dropped from the catalogue and counted.
    """
    if not candidate_hops:
        raise InputError("candidate_hops", "empty", "give at least one (atom, hop vector) pair")
    found, hop_of_event, n_unconverged = [], {}, 0
    initial_energy = None
    for atom, vector in candidate_hops:
        push = np.zeros((len(minimum), 3))
        push[atom] = push_fraction * np.asarray(vector, dtype=float)
        event = dimer_saddle(minimum, calculator_factory(), push, fmax=fmax, initial_energy=initial_energy)
        initial_energy = event.initial_energy
        if not event.converged:
            n_unconverged += 1
            continue
        found.append(event)
        hop_of_event[id(event)] = (int(atom), np.asarray(vector, dtype=float))
    trusted, uncertain = uncertain_saddles(deduplicate_events(found), gamma_of, gamma_threshold)
    hops = [hop_of_event[id(event)] for event in trusted]
    n_hessians = 0
    not_saddles = set()

    def prefactor_of(index: int) -> float:
        nonlocal n_hessians
        region = hop_region(minimum, *hops[index], hessian_radius)
        hessians = []
        for state in (minimum, trusted[index].saddle):
            at_state = state.copy()
            at_state.calc = calculator_factory()
            hessians.append(finite_difference_hessian(at_state, region))
        n_hessians += 2
        try:
            return vineyard_prefactor(*hessians, minimum.get_masses()[region], n_zero_modes=0)
        except InputError:
            not_saddles.add(index)
            return np.nan  # no rate: tiering skips it, and the event is dropped below

    if trusted:
        barriers = np.array([event.barrier for event in trusted])
        rates = tiered_rates(
            barriers, temperature, prefactor_of, cumulative_share, TIER1_PREFACTOR, calibrate_tier1
        )
        if not_saddles:
            keep = np.array([i not in not_saddles for i in range(len(trusted))])
            trusted = [event for event, kept in zip(trusted, keep, strict=True) if kept]
            hops = [hop for hop, kept in zip(hops, keep, strict=True) if kept]
            rates = TieredRates(*(getattr(rates, name)[keep] for name in TieredRates.__dataclass_fields__))
    else:
        empty = np.zeros(0)
        rates = TieredRates(empty, empty, np.zeros(0, dtype=int), empty)
    return EventCatalogue(
        trusted, hops, rates, uncertain, len(candidate_hops), n_unconverged, n_hessians, len(not_saddles)
    )
