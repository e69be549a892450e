"""Off-lattice kMC with a reused atomistic event catalogue, and diffusion coefficients from trajectories.

When a defect's local environment repeats after every hop (a vacancy in a pure crystal, an adatom on a flat
terrace), the catalogue found by saddle searches once (barriers, prefactors of Tier 1 or Tier 2, hop vectors)
is the catalogue of every later state: the walk needs no further search, and its exact diffusion
coefficient D = sum_i k_i |d_i|^2 / (2 dim) checks the stepping.
"""

from dataclasses import dataclass

import numpy as np

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.kmc.bkl import catalogue_walk, seed_numba_rng
from aiida_autopipe.core.kmc.rates import arrhenius_rate


@dataclass
class EventWalk:
    """The defect's unwrapped displacement (Angstrom) on a time grid (s), and how often each event fired."""

    times: np.ndarray
    displacements: np.ndarray  # (n_records, 1, dim): one walker, same layout as the lattice-gas records
    event_counts: np.ndarray
    n_steps: int
    final_time: float


def event_rates(barriers, prefactors, temperature: float) -> np.ndarray:
    """k_i = nu_i exp(-Ea_i / kB T) (Hz), after checking the catalogue."""
    barriers = np.asarray(barriers, dtype=float)
    prefactors = np.asarray(prefactors, dtype=float)
    if barriers.ndim != 1 or barriers.size == 0 or prefactors.shape != barriers.shape:
        raise InputError("events", "need one barrier and one prefactor per event", "list both for each")
    if np.any(prefactors <= 0) or not np.all(np.isfinite(barriers)):
        raise InputError("events", "prefactors must be positive and barriers finite", "check the catalogue")
    return arrhenius_rate(barriers, temperature, prefactors)


def drift_velocity(rates, vectors) -> np.ndarray:
    """v = sum_i k_i d_i (Angstrom/s): zero for a symmetric state's catalogue (every hop has its reverse)."""
    return np.asarray(rates) @ np.asarray(vectors, dtype=float)


def exact_walk_diffusion(rates, vectors) -> float:
    """D = sum_i k_i |d_i|^2 / (2 dim) (Angstrom^2/s) of a walk with a fixed catalogue and no drift (with a
    drift v, the mean square displacement grows as 2 dim D t + |v t|^2 instead)."""
    vectors = np.asarray(vectors, dtype=float)
    return float(np.sum(np.asarray(rates) * np.sum(vectors**2, axis=1)) / (2 * vectors.shape[1]))


def run_event_walk(
    rates, vectors, n_steps: int, record_interval: float, n_records: int, seed: int = 0
) -> EventWalk:
    """n_steps BKL steps of one walker over the fixed catalogue (rates in Hz, vectors in Angstrom)."""
    rates = np.asarray(rates, dtype=float)
    vectors = np.ascontiguousarray(vectors, dtype=float)
    if vectors.ndim != 2 or vectors.shape[0] != rates.size:
        raise InputError("events", "need one hop vector per event", "give `displacement` for every event")
    seed_numba_rng(seed)
    np.random.seed(seed)  # the pure-Python path (NUMBA_DISABLE_JIT=1) draws from NumPy's generator
    record_times = record_interval * np.arange(n_records)
    record_displacements = np.zeros((n_records, vectors.shape[1]))
    counts = np.zeros(rates.size, dtype=np.int64)
    final_time, written = catalogue_walk(
        n_steps,
        0.0,
        np.cumsum(rates),
        vectors,
        np.zeros(vectors.shape[1]),
        record_times,
        record_displacements,
        counts,
    )
    return EventWalk(
        record_times[:written], record_displacements[:written, None, :], counts, n_steps, float(final_time)
    )


def diffusion_coefficient(times, displacements) -> tuple[float, float]:
    """Tracer D (Angstrom^2/s) and its standard error from unwrapped displacements on an even time grid:
    D = <|r(t + dt) - r(t)|^2> / (2 dim dt) over all particles and consecutive records. The error treats
    the increments as independent (exact for non-interacting walkers; an underestimate otherwise)."""
    times = np.asarray(times, dtype=float)
    displacements = np.asarray(displacements, dtype=float)
    if times.size < 3:
        raise InputError("record_interval", "fewer than 3 records", "record more often or run more steps")
    interval = times[1] - times[0]
    dim = displacements.shape[-1]
    samples = np.sum(np.diff(displacements, axis=0) ** 2, axis=-1).ravel() / (2 * dim * interval)
    return float(samples.mean()), float(samples.std(ddof=1) / np.sqrt(samples.size))
