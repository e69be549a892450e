"""Plottable arrays from run data: parity of a model on labelled frames, a 2-D PCA of descriptors.

AiiDA-free: frames are ASE Atoms in the labelled-extxyz format (:mod:`aiida_autopipe.core.pacemaker_input`),
the model any ASE calculator.
"""

from __future__ import annotations

import numpy as np

from aiida_autopipe.core.pacemaker_input import energy_weights, force_weights


def parity_data(frames, calculator) -> dict[str, np.ndarray]:
    """Labelled and predicted energy per atom (eV/atom) and force components (eV/A).

    Frames with energy weight 0 (cut-out clusters, whose energy includes their buffer) give no energy
    point, and masked atoms (force weight 0) no force point: the same data the fit was judged on.
    """
    energy_label, energy_predicted, force_label, force_predicted = [], [], [], []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = calculator
        if energy_weights(atoms) > 0:
            energy_label.append(atoms.info["energy"] / len(atoms))
            energy_predicted.append(copy.get_potential_energy() / len(atoms))
        mask = force_weights(atoms) > 0
        force_label.append(np.asarray(atoms.arrays["forces"])[mask].ravel())
        force_predicted.append(np.asarray(copy.get_forces())[mask].ravel())
    return {
        "energy_label": np.asarray(energy_label, dtype=float),
        "energy_predicted": np.asarray(energy_predicted, dtype=float),
        "forces_label": np.concatenate(force_label) if force_label else np.zeros(0),
        "forces_predicted": np.concatenate(force_predicted) if force_predicted else np.zeros(0),
    }


def rmse(label, predicted) -> float:
    errors = np.asarray(predicted, dtype=float) - np.asarray(label, dtype=float)
    return float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan")


def pca_plane(features) -> np.ndarray:
    """(N, 2) coordinates on the first two principal components of standardised descriptors.

    Constant columns are dropped (they carry nothing); a single informative direction gives zeros for PC 2.
    """
    features = np.asarray(features, dtype=float)
    plane = np.zeros((len(features), 2))
    if len(features) < 2:
        return plane
    std = features.std(axis=0)
    informative = std > 1e-12 * max(float(std.max()), 1e-300)
    if not informative.any():
        return plane
    standardised = (features[:, informative] - features[:, informative].mean(axis=0)) / std[informative]
    left, singular, _ = np.linalg.svd(standardised, full_matrices=False)
    n_components = min(2, len(singular))
    plane[:, :n_components] = left[:, :n_components] * singular[:n_components]
    return plane
