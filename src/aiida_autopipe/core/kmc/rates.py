"""Tiered rate constants (REQ-E-03): a fixed prefactor for every candidate, harmonic TST for the top few.

Tier 1: k = nu exp(-Ea / kB T) with nu = 1e12 Hz for all candidate events.
Tier 2: Vineyard's harmonic transition-state theory prefactor

    nu* = (1 / 2 pi) prod_{i=1}^{3N-3} omega_i(minimum) / prod_{i=1}^{3N-4} omega_i(saddle, real),

from mass-weighted Hessians at the minimum and at the saddle, for the events that carry the largest Tier-1
share of the total rate only. Each Tier-2 event costs a saddle Hessian (6N force calls by central
differences); the minimum's Hessian is shared by all events out of one state.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.units import _amu, _e, kB

from aiida_autopipe.core.errors import InputError

TIER1_PREFACTOR = 1.0e12  # Hz

#: sqrt(eV / (Angstrom^2 amu)) in rad/s: the angular frequency unit of a Hessian in eV/A^2 and masses in amu.
ANGULAR_FREQUENCY_UNIT = np.sqrt(_e / (1e-20 * _amu))


def arrhenius_rate(barrier, temperature: float, prefactor=TIER1_PREFACTOR):
    """k = nu exp(-Ea / kB T) in Hz (barrier in eV, temperature in K)."""
    return np.asarray(prefactor) * np.exp(-np.asarray(barrier, dtype=float) / (kB * temperature))


def finite_difference_hessian(atoms: Atoms, indices=None, delta: float = 0.01) -> np.ndarray:
    """Hessian (eV/A^2) over the Cartesian coordinates of `indices` (all atoms by default) by central
    differences of the forces of the attached calculator; 6 len(indices) force calls, symmetrised."""
    indices = np.arange(len(atoms)) if indices is None else np.asarray(indices)
    work = atoms.copy()
    work.calc = atoms.calc
    reference = work.get_positions()
    hessian = np.empty((3 * indices.size, 3 * indices.size))
    for column, (atom, axis) in enumerate((a, x) for a in indices for x in range(3)):
        forces = []
        for sign in (1.0, -1.0):
            displaced = reference.copy()
            displaced[atom, axis] += sign * delta
            work.set_positions(displaced)
            forces.append(work.get_forces()[indices].ravel())
        hessian[:, column] = -(forces[0] - forces[1]) / (2 * delta)
    work.set_positions(reference)
    return 0.5 * (hessian + hessian.T)


def normal_mode_eigenvalues(hessian: np.ndarray, masses) -> np.ndarray:
    """Eigenvalues of M^-1/2 H M^-1/2 (eV / (A^2 amu)), ascending; masses per atom in amu."""
    inverse_sqrt = 1.0 / np.sqrt(np.repeat(np.asarray(masses, dtype=float), 3))
    if inverse_sqrt.size != hessian.shape[0]:
        raise InputError("hessian", "size does not match 3 x number of masses", "pass one mass per atom")
    return np.linalg.eigvalsh(hessian * np.outer(inverse_sqrt, inverse_sqrt))


def vineyard_prefactor(hessian_minimum, hessian_saddle, masses, n_zero_modes: int = 3) -> float:
    """Vineyard prefactor in Hz from the Hessians at the minimum and the saddle (same atoms, same order).

    The `n_zero_modes` eigenvalues closest to zero (3 translations of a periodic cell; 0 for a partial
    Hessian of a region embedded in fixed surroundings) are dropped from both; the minimum must then be
    positive definite and the saddle must have exactly one negative (imaginary) mode, which is dropped too.
    """
    modes = []
    for name, hessian in (("minimum", hessian_minimum), ("saddle", hessian_saddle)):
        eigenvalues = normal_mode_eigenvalues(np.asarray(hessian, dtype=float), masses)
        kept = np.sort(eigenvalues[np.argsort(np.abs(eigenvalues))[n_zero_modes:]])
        scale = max(np.abs(eigenvalues).max(), 1e-12)
        n_negative = int(np.sum(kept < -1e-6 * scale))
        expected = 1 if name == "saddle" else 0
        if n_negative != expected or np.any(np.abs(kept) < 1e-8 * scale):
            raise InputError(
                f"hessian_{name}",
                f"{n_negative} imaginary modes (expected {expected}) or an extra zero mode",
                "converge the stationary point tighter or set n_zero_modes to the free translations",
            )
        modes.append(kept[expected:])
    minimum, saddle = modes
    log_ratio = 0.5 * (np.sum(np.log(minimum)) - np.sum(np.log(saddle)))
    return float(np.exp(log_ratio) * ANGULAR_FREQUENCY_UNIT / (2 * np.pi))


@dataclass(frozen=True)
class TieredRates:
    """Rates of every candidate event out of one state, and which tier each one got."""

    rates: np.ndarray  # Hz
    prefactors: np.ndarray  # Hz
    tier: np.ndarray  # 1 or 2 per event
    tier1_rates: np.ndarray  # Hz, with the fixed prefactor

    @property
    def n_tier2(self) -> int:
        return int(np.sum(self.tier == 2))

    @property
    def top_events(self) -> np.ndarray:
        return np.flatnonzero(self.tier == 2)

    def n_hessians(self) -> int:
        """Hessian evaluations spent: one per Tier-2 saddle plus the shared minimum."""
        return self.n_tier2 + (1 if self.n_tier2 else 0)


def select_top_events(rates, cumulative_share: float = 0.99, tie_tolerance: float = 1e-3) -> np.ndarray:
    """Smallest set of events whose rates make up `cumulative_share` of the total, plus every event whose
    rate ties with the last one chosen (symmetry-equivalent events get the same treatment)."""
    if not 0.0 < cumulative_share <= 1.0:
        raise InputError("kmc.tier2_share", f"{cumulative_share} not in (0, 1]", "use e.g. 0.99")
    rates = np.asarray(rates, dtype=float)
    order = np.argsort(-rates, kind="stable")
    cumulative = np.cumsum(rates[order]) / rates.sum()
    n_chosen = int(np.searchsorted(cumulative, cumulative_share * (1 - 1e-12))) + 1
    last = rates[order[min(n_chosen, rates.size) - 1]]
    chosen = set(order[:n_chosen].tolist())
    chosen |= set(np.flatnonzero(np.abs(rates - last) <= tie_tolerance * last).tolist())
    return np.array(sorted(chosen), dtype=int)


def tiered_rates(
    barriers,
    temperature: float,
    prefactor_of: Callable[[int], float],
    cumulative_share: float = 0.95,
    tier1_prefactor: float = TIER1_PREFACTOR,
    calibrate_tier1: bool = True,
    margin_sigmas: float = 2.0,
) -> TieredRates:
    """Tier 1 for every event, `prefactor_of(i)` (a Vineyard calculation) for the top events only.

    The top events are chosen adaptively. First pass: the events carrying `cumulative_share` of the Tier-1
    total (fixed prefactor). Then, with `calibrate_tier1`, the events left in Tier 1 take the geometric mean
    nu_c of the Tier-2 prefactors computed so far (prefactors of one system scatter far less than 1e12 Hz
    is off), and the selection is redone on these better estimates, widened by a margin: an event outside the
    cut whose rate times exp(margin_sigmas x sigma) reaches the cut could belong inside it, sigma being the
    spread of ln(prefactor) among the Tier-2 events. New picks get Tier 2 and the loop repeats until the
    top set and its margin are all Tier 2. Without calibration there is one pass with the fixed prefactor.
    `prefactor_of` may return NaN for an event that turns out to be no saddle: it is left out of the
    calibration and the selection, and its rate is NaN for the caller to drop.
    """
    barriers = np.asarray(barriers, dtype=float)
    tier1 = arrhenius_rate(barriers, temperature, tier1_prefactor)
    prefactors = np.full(barriers.size, float(tier1_prefactor))
    tier = np.ones(barriers.size, dtype=int)
    pending = select_top_events(tier1, cumulative_share)
    while pending.size:
        for event in pending:
            prefactors[event] = prefactor_of(int(event))
            tier[event] = 2
        known = prefactors[(tier == 2) & np.isfinite(prefactors)]  # NaN: prefactor_of found no saddle
        if not calibrate_tier1 or known.size == 0:
            break
        logs = np.log(known)
        prefactors[tier == 1] = np.exp(logs.mean())
        estimates = np.nan_to_num(arrhenius_rate(barriers, temperature, prefactors))
        top = select_top_events(estimates, cumulative_share)
        spread = np.exp(margin_sigmas * logs.std()) if logs.size > 1 else 1.0
        near_cut = np.flatnonzero((tier == 1) & (estimates * spread >= estimates[top].min()))
        pending = np.union1d(top[tier[top] == 1], near_cut)
    return TieredRates(arrhenius_rate(barriers, temperature, prefactors), prefactors, tier, tier1)


def rate_errors(tiered: TieredRates, full_rates, top_share: float = 0.95) -> dict:
    """How far tiered rates are from Tier 2 everywhere, on the events that matter: the top events of the
    full (all Tier 2) catalogue carrying `top_share` of its total rate. Their rates and selection
    probabilities k_i / K, the total escape rate K (the kMC clock), and how many of them stayed in Tier 1."""
    full_rates = np.asarray(full_rates, dtype=float)
    top = select_top_events(full_rates, top_share)
    probability_tiered = tiered.rates / tiered.rates.sum()
    probability_full = full_rates / full_rates.sum()
    return {
        "n_top": int(top.size),
        "missed": int(np.sum(tiered.tier[top] != 2)),
        "top_rate": float(np.max(np.abs(tiered.rates[top] / full_rates[top] - 1))),
        "top_probability": float(np.max(np.abs(probability_tiered[top] / probability_full[top] - 1))),
        "total_rate": float(abs(tiered.rates.sum() / full_rates.sum() - 1)),
    }
