"""Extrapolation grade of labelled frames the active set has not seen: the sample a dynamic threshold needs.

The active set that on-the-fly MD uses is built (MaxVol) from every atom of the training set, so by
construction every training environment has gamma <= ~1 and any percentile of training-set gamma is ~1
whatever the dataset's maturity. What a threshold needs is how extrapolative *new* configurations from the
labelled distribution look to an active set of the current dataset. K-fold: the frames are split into folds;
for each fold an active set is built from the other folds' atoms (same fitted basis, same MaxVol as
pace_activeset) and the held-out fold's atoms are graded against it. Every frame is held out exactly once.
A young, varied dataset gives held-out grades well above 1 (new frames leave its span); as the dataset
covers its configuration space they fall towards 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aiida_autopipe.core.errors import InputError

DEFAULT_FOLDS = 5
#: pace_activeset's defaults: MaxVol tolerance and iteration cap.
MAXVOL_TOLERANCE = 1.001
MAXVOL_ITERATIONS = 300


@dataclass
class HeldOutGammas:
    """Per-atom held-out gamma of every frame, in frame and atom order (NaN where it could not be graded)."""

    gamma: np.ndarray  # (n_atoms_total,)
    frame_index: np.ndarray  # (n_atoms_total,) frame of each atom
    fold: np.ndarray  # (n_frames,) fold each frame was held out in
    n_folds: int
    #: Atoms not graded: their species had fewer training-fold environments than basis functions.
    n_ungraded: int

    def per_frame(self) -> list[np.ndarray]:
        """Graded per-atom gammas of each frame (frames with no graded atom left out)."""
        frames = [self.gamma[self.frame_index == i] for i in range(self.fold.size)]
        return [g[np.isfinite(g)] for g in frames if np.isfinite(g).any()]


def fold_of_frames(n_frames: int, n_folds: int, seed: int) -> np.ndarray:
    """Random, balanced fold label of each frame (fold sizes differ by at most one)."""
    if n_frames < 2:
        raise InputError("dataset", f"{n_frames} frame(s)", "held-out grades need at least two frames")
    if n_folds < 2:
        raise InputError("held_out_folds", f"{n_folds} < 2", "use at least 2 folds (default 5)")
    folds = np.arange(n_frames) % min(n_folds, n_frames)
    return np.random.default_rng(seed).permutation(folds)


def _pyace_activelearning():
    """pyace's active-learning helpers, leaving the root logger as it was (``import pyace`` sets INFO)."""
    import logging

    root = logging.getLogger()
    level = root.level
    try:
        from pyace import ACEBBasisSet, BBasisConfiguration, activelearning
    finally:
        root.setLevel(level)
    return ACEBBasisSet, BBasisConfiguration, activelearning


def held_out_gammas(
    potential_path: str, frames: list, n_folds: int = DEFAULT_FOLDS, seed: int = 0
) -> HeldOutGammas:
    """K-fold held-out per-atom gamma of `frames` for the pacemaker B-basis potential at `potential_path`."""
    ACEBBasisSet, BBasisConfiguration, al = _pyace_activelearning()
    fold = fold_of_frames(len(frames), n_folds, seed)
    basis = ACEBBasisSet(BBasisConfiguration(str(potential_path)))
    species_index = basis.elements_to_index_map
    unknown = {s for atoms in frames for s in atoms.get_chemical_symbols()} - set(species_index)
    if unknown:
        raise InputError("dataset", f"elements {sorted(unknown)} not in the potential", "refit on them")
    projections, frame_of_row = al.compute_B_projections(
        basis, frames, structure_ind_list=list(range(len(frames)))
    )
    # compute_B_projections fills each species' rows in frame order, then atom order: rebuild that map.
    species = np.concatenate([[species_index[s] for s in atoms.get_chemical_symbols()] for atoms in frames])
    frame_index = np.repeat(np.arange(len(frames)), [len(atoms) for atoms in frames])

    gamma = np.full(species.size, np.nan)
    for k in range(int(fold.max()) + 1):
        for st, matrix in projections.items():
            held = fold[frame_of_row[st]] == k
            if not held.any():
                continue
            training = matrix[~held]
            if training.shape[0] < training.shape[1]:
                continue  # under-determined: MaxVol has no square active set to invert
            active = al.compute_active_set(
                {st: training.copy()}, tol=MAXVOL_TOLERANCE, max_iters=MAXVOL_ITERATIONS
            )
            inverse = al.compute_A_active_inverse(active)
            grades = al.compute_extrapolation_grade({st: matrix[held]}, inverse)[st]
            gamma[np.flatnonzero(species == st)[held]] = grades  # row r of species st is its r-th atom
    return HeldOutGammas(gamma, frame_index, fold, int(fold.max()) + 1, int(np.sum(~np.isfinite(gamma))))
