"""Cut an uncertain region out of a periodic structure: core, buffer shell, and the atoms just outside.

Atoms of the cut-out are periodic images of the parent's atoms, keyed by (parent index, cell shift), so a
cluster larger than a small parent cell is still a piece of the infinite crystal without overlaps.
"""

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from aiida_autopipe.core.errors import InputError


@dataclass
class ImagePool:
    """Periodic images of parent atoms near a group of seeds: parent index, cell shift, Cartesian position."""

    parent: np.ndarray  # (n,) int
    shift: np.ndarray  # (n, 3) int
    positions: np.ndarray  # (n, 3)
    seed_positions: np.ndarray  # (n_seeds, 3)


def seed_groups(atoms: Atoms, seeds: np.ndarray, r_cut: float) -> list[np.ndarray]:
    """Group uncertain atoms whose cores would touch (closer than 2 r_cut): one cut-out per group."""
    if seeds.size == 1:
        return [seeds]
    pairs = atoms.positions[seeds][:, None, :] - atoms.positions[seeds][None, :, :]
    _, lengths = find_mic(pairs.reshape(-1, 3), atoms.cell, atoms.pbc)
    distances = lengths.reshape(seeds.size, seeds.size)
    _, labels = connected_components(distances <= 2 * r_cut, directed=False)
    return [seeds[labels == label] for label in np.unique(labels)]


def place_seeds(atoms: Atoms, group: np.ndarray, gammas: np.ndarray) -> np.ndarray:
    """Unwrapped seed positions: from the most uncertain seed, each next seed goes at the image nearest to a
    seed already placed (chaining short minimum-image hops: one hop of half a cell would be ambiguous)."""
    order = [int(np.argmax(gammas[group]))]
    positions = np.zeros((group.size, 3))
    positions[order[0]] = atoms.positions[group[order[0]]]
    while len(order) < group.size:
        left = np.setdiff1d(np.arange(group.size), order)
        vectors = atoms.positions[group[left]][:, None, :] - positions[order][None, :, :]
        vectors, lengths = find_mic(vectors.reshape(-1, 3), atoms.cell, atoms.pbc)
        best = int(np.argmin(lengths))
        new, old = left[best // len(order)], order[best % len(order)]
        positions[new] = positions[old] + vectors[best]
        order.append(int(new))
    return positions


def image_pool(atoms: Atoms, group: np.ndarray, gammas: np.ndarray, radius: float) -> ImagePool:
    """All images of parent atoms within `radius` of a seed of the group, seeds placed around the most
    uncertain one by the minimum-image convention."""
    seed_positions = place_seeds(atoms, group, gammas)
    cell = atoms.cell.array
    ranges = []
    for axis in range(3):
        if atoms.pbc[axis]:
            spacing = atoms.cell.volume / np.linalg.norm(np.cross(cell[(axis + 1) % 3], cell[(axis + 2) % 3]))
            reach = int(np.ceil((radius + np.ptp(seed_positions, axis=0).max()) / spacing)) + 1
            ranges.append(np.arange(-reach, reach + 1))
        else:
            ranges.append(np.array([0]))
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    positions = (atoms.positions[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    parent = np.tile(np.arange(len(atoms)), shifts.shape[0])
    shift = np.repeat(shifts, len(atoms), axis=0)
    near = cdist(positions, seed_positions).min(axis=1) <= radius
    return ImagePool(parent[near], shift[near], positions[near], seed_positions)


def core_and_buffer(pool: ImagePool, r_cut: float, buffer_width: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks over the pool: core (within r_cut of a seed), buffer (within buffer_width of the core)."""
    core = cdist(pool.positions, pool.seed_positions).min(axis=1) <= r_cut + 1e-8
    to_core = cdist(pool.positions, pool.positions[core]).min(axis=1)
    buffer = ~core & (to_core <= buffer_width + 1e-8)
    return core, buffer


def check_inputs(atoms: Atoms, gammas, threshold: float, r_cut: float) -> np.ndarray:
    gammas = np.asarray(gammas, dtype=float)
    if gammas.shape != (len(atoms),):
        raise InputError("gammas", f"shape {gammas.shape} != ({len(atoms)},)", "give one gamma per atom")
    if not r_cut > 0:
        raise InputError("r_cut", f"{r_cut} must be positive", "use the ACE cutoff in Angstrom")
    if not np.any(gammas > threshold):
        raise InputError("gammas", f"no atom above the threshold {threshold}", "embed only halted frames")
    return gammas
