"""One vector per frame for DIRECT sampling: per-atom environment descriptors averaged per centre species.

Frames are passed as the flat arrays of a surrogate trajectory (see `aiida_autopipe.runners.surrogate`):
`positions` and `numbers` stacked over all frames, `n_atoms` per frame, `cells` (F, 3, 3) and `pbc` (F, 3).
Averaging per centre species (instead of over all atoms) keeps composition information and gives every frame,
whatever its size, a vector of the same length.

Two kinds:
- 'soap': dscribe's SOAP power spectrum, the default because it is the standard, well-tested descriptor.
- 'ace': an ACE-style rank-2 descriptor (radial x real spherical-harmonic moments of the neighbour density,
  contracted over m into rotation invariants), computed by a Numba kernel. dscribe's SOAP measured 130-300
  frames/s on 64-atom frames on 2 cores, far below what millions of frames need; this kernel is the fast path.
"""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np

from aiida_autopipe.core.errors import InputError

DESCRIPTOR_KINDS = ("soap", "ace")


def flat_arrays(frames) -> tuple[np.ndarray, ...]:
    """A list of ASE Atoms as the flat trajectory arrays the runners write and `compute_descriptors` reads:
    positions, numbers, atoms per frame, cells, pbc."""
    return (
        np.concatenate([atoms.positions for atoms in frames]),
        np.concatenate([atoms.numbers for atoms in frames]),
        np.array([len(atoms) for atoms in frames]),
        np.array([atoms.cell[:] for atoms in frames]),
        np.array([atoms.pbc for atoms in frames]),
    )


def frame_offsets(n_atoms: np.ndarray) -> np.ndarray:
    """Start index of each frame in the flat per-atom arrays, plus the total at the end."""
    return np.concatenate([[0], np.cumsum(n_atoms)]).astype(np.int64)


def compute_descriptors(
    positions: np.ndarray,
    numbers: np.ndarray,
    n_atoms: np.ndarray,
    cells: np.ndarray,
    pbc: np.ndarray,
    kind: str = "soap",
    species: list[int] | None = None,
    r_cut: float = 5.0,
    n_jobs: int = 1,
    **options,
) -> np.ndarray:
    """(F, D) descriptor matrix, one row per frame; `species` fixes the column layout (default: present)."""
    species = sorted(set(int(z) for z in np.unique(numbers))) if species is None else sorted(species)
    if kind == "soap":
        return soap_descriptors(positions, numbers, n_atoms, cells, pbc, species, r_cut, n_jobs, **options)
    if kind == "ace":
        return ace_descriptors(positions, numbers, n_atoms, cells, pbc, species, r_cut, n_jobs, **options)
    raise InputError("explorer.descriptor", f"unknown descriptor {kind!r}", f"use one of {DESCRIPTOR_KINDS}")


def soap_descriptors(
    positions, numbers, n_atoms, cells, pbc, species, r_cut=5.0, n_jobs=1, n_max=6, l_max=4, sigma=0.5
) -> np.ndarray:
    """dscribe SOAP per atom, averaged per centre species and concatenated (zeros for an absent species)."""
    from ase import Atoms
    from dscribe.descriptors import SOAP

    soap = SOAP(
        species=species, periodic=bool(np.any(pbc)), r_cut=r_cut, n_max=n_max, l_max=l_max, sigma=sigma
    )
    offsets = frame_offsets(n_atoms)
    frames = [
        Atoms(numbers=numbers[a:b], positions=positions[a:b], cell=cells[i], pbc=pbc[i])
        for i, (a, b) in enumerate(itertools.pairwise(offsets))
    ]
    per_atom = soap.create(frames, n_jobs=n_jobs)
    if len(frames) == 1:
        per_atom = [per_atom]
    dim = soap.get_number_of_features()
    out = np.zeros((len(frames), len(species) * dim))
    for i, (a, b) in enumerate(itertools.pairwise(offsets)):
        frame_numbers = numbers[a:b]
        for s, z in enumerate(species):
            mask = frame_numbers == z
            if mask.any():
                out[i, s * dim : (s + 1) * dim] = per_atom[i][mask].mean(axis=0)
    return out


def ace_descriptors(
    positions, numbers, n_atoms, cells, pbc, species, r_cut=5.0, n_jobs=1, n_radial=6, l_max=3, r_min=1.0
) -> np.ndarray:
    """ACE-style invariants B[n, n', l] = sum_m A[n, lm] A[n', lm] per neighbour species, averaged per centre.

    A[n, lm] = sum_j R_n(r_ij) Y_lm(r_ij / |r_ij|) with Gaussian radial functions times a cosine cutoff, real
    orthonormal spherical harmonics up to l = 3. Rotation, translation and permutation invariant; smooth in
    positions. Frames run in parallel over `n_jobs` threads.
    """
    if not 0 <= l_max <= 3:
        raise InputError("explorer.descriptor_options.l_max", f"l_max={l_max} not supported", "use 0 to 3")
    species_index = np.full(120, -1, dtype=np.int64)
    species_index[np.asarray(species, dtype=np.int64)] = np.arange(len(species))
    kinds = species_index[np.asarray(numbers, dtype=np.int64)]
    if np.any(kinds < 0):
        missing = sorted(set(np.asarray(numbers)[kinds < 0].tolist()))
        raise InputError(
            "explorer.species", f"frames contain elements {missing} not in species", "list every element"
        )
    n_pairs = n_radial * (n_radial + 1) // 2
    n_features = len(species) * len(species) * n_pairs * (l_max + 1)
    out = np.zeros((len(n_atoms), n_features))
    previous_threads = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_jobs, numba.config.NUMBA_NUM_THREADS)))
    try:
        _ace_frames(
            np.ascontiguousarray(positions, dtype=np.float64),
            kinds,
            frame_offsets(np.asarray(n_atoms)),
            np.ascontiguousarray(cells, dtype=np.float64).reshape(-1, 3, 3),
            np.ascontiguousarray(pbc, dtype=np.bool_).reshape(-1, 3),
            len(species),
            float(r_cut),
            float(r_min),
            n_radial,
            l_max,
            out,
        )
    finally:
        numba.set_num_threads(previous_threads)
    return out


@numba.njit(cache=True, fastmath=True, inline="always")
def _real_spherical_harmonics(x, y, z, l_max, out):
    """Orthonormal real spherical harmonics Y_lm of a unit vector, l <= 3, in (l, m) order."""
    out[0] = 0.28209479177387814
    if l_max >= 1:
        c1 = 0.4886025119029199
        out[1] = c1 * y
        out[2] = c1 * z
        out[3] = c1 * x
    if l_max >= 2:
        out[4] = 1.0925484305920792 * x * y
        out[5] = 1.0925484305920792 * y * z
        out[6] = 0.31539156525252005 * (3.0 * z * z - 1.0)
        out[7] = 1.0925484305920792 * x * z
        out[8] = 0.5462742152960396 * (x * x - y * y)
    if l_max >= 3:
        out[9] = 0.5900435899266435 * y * (3.0 * x * x - y * y)
        out[10] = 2.890611442640554 * x * y * z
        out[11] = 0.4570457994644658 * y * (5.0 * z * z - 1.0)
        out[12] = 0.3731763325901154 * z * (5.0 * z * z - 3.0)
        out[13] = 0.4570457994644658 * x * (5.0 * z * z - 1.0)
        out[14] = 1.445305721320277 * z * (x * x - y * y)
        out[15] = 0.5900435899266435 * x * (x * x - 3.0 * y * y)


@numba.njit(cache=True, fastmath=True, inline="always")
def _add_neighbour(
    skip, a, b, c, cell, r_cut, r_min, width, n_radial, l_max, kind_j, radial, harmonics, density
):
    """Add one neighbour at fractional offset (a, b, c) to the neighbour density of the centre atom."""
    x = a * cell[0, 0] + b * cell[1, 0] + c * cell[2, 0]
    y = a * cell[0, 1] + b * cell[1, 1] + c * cell[2, 1]
    z = a * cell[0, 2] + b * cell[1, 2] + c * cell[2, 2]
    r2 = x * x + y * y + z * z
    if skip or r2 >= r_cut * r_cut or r2 < 1e-12:
        return
    r = math.sqrt(r2)
    cutoff = 0.5 * (math.cos(math.pi * r / r_cut) + 1.0)
    # Gaussians on an even grid: exp(-(t-n)^2/2) = exp(-(t-n+1)^2/2) exp(t) exp(1/2-n): two exp calls in all
    t = (r - r_min) / width
    growth = math.exp(t)
    value = cutoff * math.exp(-0.5 * t * t)
    shrink = math.exp(0.5)
    radial[0] = value
    for n in range(1, n_radial):
        shrink *= 0.36787944117144233  # exp(-1)
        value *= growth * shrink
        radial[n] = value
    _real_spherical_harmonics(x / r, y / r, z / r, l_max, harmonics)
    n_lm = (l_max + 1) * (l_max + 1)
    for n in range(n_radial):
        for lm in range(n_lm):
            density[kind_j, n, lm] += radial[n] * harmonics[lm]


@numba.njit(cache=True, fastmath=True, parallel=True)
def _ace_frames(positions, kinds, offsets, cells, pbc, n_species, r_cut, r_min, n_radial, l_max, out):
    n_lm = (l_max + 1) * (l_max + 1)
    n_pairs = n_radial * (n_radial + 1) // 2
    width = (r_cut - r_min) / max(n_radial - 1, 1)
    for f in numba.prange(len(offsets) - 1):
        start = offsets[f]
        count = offsets[f + 1] - start
        cell = cells[f]
        inverse = np.linalg.inv(cell)
        # perpendicular width of the cell along each lattice vector bounds the periodic images to visit
        reach = np.zeros(3)
        for k in range(3):
            norm = math.sqrt(inverse[0, k] ** 2 + inverse[1, k] ** 2 + inverse[2, k] ** 2)
            reach[k] = r_cut * norm if pbc[f, k] else 0.0
        fractional = positions[start : start + count] @ inverse
        # a cell at least 2 r_cut wide in every periodic direction needs only the nearest image of each atom
        minimum_image = reach[0] < 0.5 and reach[1] < 0.5 and reach[2] < 0.5
        density = np.zeros((n_species, n_radial, n_lm))
        radial = np.zeros(n_radial)
        harmonics = np.zeros(16)
        centre_count = np.zeros(n_species)
        accumulated = np.zeros((n_species, n_species, n_pairs, l_max + 1))
        base = np.empty(3)
        low = np.empty(3, dtype=np.int64)
        high = np.empty(3, dtype=np.int64)
        for i in range(count):
            density[:] = 0.0
            for j in range(count):
                for k in range(3):
                    d = fractional[j, k] - fractional[i, k]
                    if pbc[f, k]:
                        d -= math.floor(d + 0.5)
                    base[k] = d
                if minimum_image:
                    _add_neighbour(
                        i == j,
                        base[0],
                        base[1],
                        base[2],
                        cell,
                        r_cut,
                        r_min,
                        width,
                        n_radial,
                        l_max,
                        kinds[start + j],
                        radial,
                        harmonics,
                        density,
                    )
                    continue
                for k in range(3):
                    low[k] = math.ceil(-reach[k] - base[k])
                    high[k] = math.floor(reach[k] - base[k])
                for s0 in range(low[0], high[0] + 1):
                    for s1 in range(low[1], high[1] + 1):
                        for s2 in range(low[2], high[2] + 1):
                            self_image = i == j and s0 == 0 and s1 == 0 and s2 == 0
                            _add_neighbour(
                                self_image,
                                base[0] + s0,
                                base[1] + s1,
                                base[2] + s2,
                                cell,
                                r_cut,
                                r_min,
                                width,
                                n_radial,
                                l_max,
                                kinds[start + j],
                                radial,
                                harmonics,
                                density,
                            )
            kind_i = kinds[start + i]
            centre_count[kind_i] += 1.0
            for s in range(n_species):
                p = 0
                for n in range(n_radial):
                    for m in range(n, n_radial):
                        for degree in range(l_max + 1):
                            total = 0.0
                            for lm in range(degree * degree, (degree + 1) * (degree + 1)):
                                total += density[s, n, lm] * density[s, m, lm]
                            accumulated[kind_i, s, p, degree] += total
                        p += 1
        block = n_species * n_pairs * (l_max + 1)
        for s in range(n_species):
            if centre_count[s] > 0:
                flat = accumulated[s].ravel() / centre_count[s]
                out[f, s * block : (s + 1) * block] = flat
