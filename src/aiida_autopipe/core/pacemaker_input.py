"""pacemaker's inputs from labelled structures: the dataset dataframe and ``input.yaml``.

Labelled dataset format (what Module C emits and ``PacemakerCalculation`` takes as ``dataset``): one extended
XYZ file (a ``SinglefileData``), one frame per labelled structure, with

- ``info['energy']``: total energy, eV;
- ``arrays['forces']``: forces, eV/Angstrom;
- ``info['stress']`` (optional): stress, eV/Angstrom^3, 3x3 or Voigt (xx, yy, zz, yz, xz, xy), ASE sign;
- ``arrays['force_weight']`` (optional, default 1): per-atom force weight; 0 masks an atom (buffer atoms of
  embedded clusters), values in between down-weight it;
- ``info['energy_weight']`` (optional, default 1): 0 leaves the frame's energy out of the fit (a cluster's
  energy includes its buffer).

ASE's extxyz reader moves energy, forces and stress into a SinglePointCalculator; :func:`read_labelled_frames`
puts them back where the format says, so both ways of writing the file work.

Loss weights. pacemaker's pyace evaluator minimises
``(1 - kappa) * sum_s w_energy[s] * dE_s^2 + kappa * sum_i w_forces[i] * |dF_i|^2`` with ``dE`` per atom,
``sum_s w_energy[s] = 1`` and ``sum_i w_forces[i] = 1`` (``pyace/pyacefit.py``). With uniform weights that is
``(1 - kappa) * mean(dE^2) + kappa * mean_atoms(|dF|^2)``, so energy:force weights ``a:b`` map exactly to
``kappa = b / (a + b)``: 1:100 gives kappa = 100/101. Masking multiplies ``w_forces`` per atom (before
pacemaker renormalises).

Per-element energies. pyace's B-basis has no constant term (every basis function vanishes with its neighbours
and the embeddings are zero at zero density), so a constant energy per atom of each element is a parameter of
the model that pacemaker cannot fit: forces do not see it, and with the energy weight at 1/101 the BFGS fit
lets ACE's energy drift by hundreds of meV/atom while it fits forces. The constants are therefore ours: the
targets have them removed before the fit (the reference's ``e0``, or :func:`composition_energies` for plain
ACE, so pacemaker never applies its own ``reference_energy`` shift, which no exported model would add back),
and after the fit :func:`atomic_energy_shifts` refits them in closed form against ACE's predictions, which is
the exact minimum of the loss over the constants. The exported model adds them back.

The pyace evaluator has no stress term: the stress weight is kept in the input's metadata and stress errors
are still reported, but stress is not fitted (TensorFlow's tensorpot evaluator, absent here, would be needed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.io import read, write

from aiida_autopipe.core.baseline import ReferencePotential, stress_matrix, subtract_reference
from aiida_autopipe.core.hyperparameters import basis_functions

DATASET_FILENAME = "dataset.pckl.gzip"
TEST_DATASET_FILENAME = "test_dataset.pckl.gzip"
DEFAULT_LOSS_WEIGHTS = {"energy": 1.0, "force": 100.0, "stress": 10.0}
#: Tiny L1/L2 penalties on basis coefficients (pacemaker's own defaults), which keep BFGS well conditioned.
COEFFICIENT_REGULARISATION = 1e-8
#: Embeddings F(rho) = sum_k c_k * rho_k ** p_k: linear, or pacemaker's default linear plus square-root term.
EMBEDDINGS = {
    1: {"fs_parameters": [1, 1], "ndensity": 1},
    2: {"fs_parameters": [1, 1, 1, 0.5], "ndensity": 2},
}


def read_labelled_frames(source) -> list[Atoms]:
    """Frames of a labelled extxyz file (path or open handle) in the format of the module docstring."""
    frames = read(source, index=":", format="extxyz")
    for atoms in frames:
        calc = atoms.calc
        if calc is not None:
            results = calc.results
            if "energy" in results:
                atoms.info["energy"] = float(results["energy"])
            if "forces" in results:
                atoms.arrays["forces"] = np.array(results["forces"])
            if "stress" in results:
                atoms.info["stress"] = stress_matrix(results["stress"])
            atoms.calc = None
        if "energy" not in atoms.info or "forces" not in atoms.arrays:
            raise ValueError("every labelled frame needs info['energy'] and arrays['forces']")
        if "stress" in atoms.info:
            atoms.info["stress"] = stress_matrix(atoms.info["stress"])
    return frames


def write_labelled_frames(frames: list[Atoms], target) -> None:
    """Write frames in the labelled extxyz format (labels as plain info/arrays keys)."""
    clean = []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = None
        if "stress" in copy.info:
            copy.info["stress"] = stress_matrix(copy.info["stress"])
        clean.append(copy)
    write(target, clean, format="extxyz")


def force_weights(atoms: Atoms) -> np.ndarray:
    """Per-atom force weights of a frame (1 where not given)."""
    return np.asarray(atoms.arrays.get("force_weight", np.ones(len(atoms))), dtype=float)


def pacemaker_dataframe(
    frames: list[Atoms],
    reference: ReferencePotential | None = None,
    atomic_energies: dict[str, float] | None = None,
) -> pd.DataFrame:
    """pacemaker's dataset: targets are labels minus ``reference`` (delta learning) or minus constants.

    Without a reference the constants are ``atomic_energies`` (default: :func:`composition_energies` of the
    frames; give a test set the training set's), which the exported plain model adds back; either way the
    targets are centred near zero and pacemaker applies no shift of its own.

    Columns: ``name`` (frame index), ``ase_atoms``, ``energy_corrected`` and ``forces`` (the targets),
    ``w_energy`` and ``w_forces`` (present both, so pacemaker applies no weighting policy of its own).
    """
    if reference is not None:
        targets = subtract_reference(frames, reference)
    else:
        targets = subtract_atomic_energies(frames, atomic_energies or composition_energies(frames))
    rows = []
    for index, (atoms, target) in enumerate(zip(frames, targets, strict=True)):
        bare = atoms.copy()
        bare.calc = None
        bare.info = {}
        for key in list(bare.arrays):
            if key not in ("numbers", "positions"):
                del bare.arrays[key]
        rows.append(
            {
                "name": str(index),
                "ase_atoms": bare,
                "energy": float(atoms.info["energy"]),
                "energy_corrected": float(target.info["energy"]),
                "forces": np.array(target.arrays["forces"], dtype=float),
                "w_energy": float(atoms.info.get("energy_weight", 1.0)),
                "w_forces": force_weights(atoms),
            }
        )
    dataframe = pd.DataFrame(rows)
    if dataframe["w_energy"].sum() <= 0 or dataframe["w_forces"].map(np.sum).sum() <= 0:
        raise ValueError("every energy weight or every force weight is zero: nothing to fit")
    return dataframe


def energy_weights(atoms: Atoms) -> float:
    """Energy weight of a frame (1 where not given, 0 leaves its energy out)."""
    return float(atoms.info.get("energy_weight", 1.0))


def fit_atomic_energies(frames: list[Atoms], energies, weights=None) -> dict[str, float]:
    """Per-element constants ``c`` minimising ``sum_s w_s (E_s / N_s - sum_e n_se c_e / N_s)^2``.

    The energy-per-atom least squares of the loss; an element absent from every weighted frame gets 0.
    """
    elements = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
    weights = np.array([energy_weights(a) for a in frames] if weights is None else weights, dtype=float)
    n_atoms = np.array([len(atoms) for atoms in frames], dtype=float)
    fractions = (
        np.array([[atoms.get_chemical_symbols().count(e) for e in elements] for atoms in frames], dtype=float)
        / n_atoms[:, None]
    )
    root = np.sqrt(np.clip(weights, 0.0, None))
    solution, *_ = np.linalg.lstsq(
        root[:, None] * fractions, root * np.asarray(energies, dtype=float) / n_atoms, rcond=None
    )
    return {element: float(value) for element, value in zip(elements, solution, strict=True)}


def composition_energies(frames: list[Atoms]) -> dict[str, float]:
    """Per-element energies that best explain the labels on their own (plain ACE's constants)."""
    return fit_atomic_energies(frames, [atoms.info["energy"] for atoms in frames])


def subtract_atomic_energies(frames: list[Atoms], atomic_energies: dict[str, float]) -> list[Atoms]:
    """Copies of labelled frames with the per-element constants taken off their energies."""
    shifted = []
    for atoms in frames:
        copy = atoms.copy()
        copy.info["energy"] = atoms.info["energy"] - atomic_energy_sum(atoms, atomic_energies)
        shifted.append(copy)
    return shifted


def atomic_energy_sum(atoms: Atoms, atomic_energies: dict[str, float]) -> float:
    """Sum of the per-element constants over the atoms of a frame."""
    return float(sum(atomic_energies.get(symbol, 0.0) for symbol in atoms.get_chemical_symbols()))


def atomic_energy_shifts(predictions: pd.DataFrame, frames: list[Atoms]) -> dict[str, float]:
    """Per-element constants to add to a fitted model: the closed-form optimum of the loss over them.

    ``predictions`` is pacemaker's ``train_pred`` dataframe, ``frames`` the labelled frames its ``name``
    column indexes. Forces do not depend on the constants, so this is exact whatever the force weight.
    """
    fitted = [frames[int(name)] for name in predictions["name"]]
    residual = (predictions["energy_corrected"] - predictions["energy_pred"]).to_numpy(dtype=float)
    weights = predictions["w_energy"].to_numpy(dtype=float) if "w_energy" in predictions else None
    return fit_atomic_energies(fitted, residual, weights)


def write_pacemaker_dataframe(dataframe: pd.DataFrame, path: str | Path) -> None:
    dataframe.to_pickle(path, compression="gzip", protocol=4)


def kappa_from_loss_weights(loss_weights: dict) -> float:
    """pacemaker's ``kappa`` for energy:force weights (exact mapping, see the module docstring)."""
    energy, force = float(loss_weights["energy"]), float(loss_weights["force"])
    if energy < 0 or force < 0 or energy + force == 0:
        raise ValueError(f"loss weights must be non-negative and not both zero: {loss_weights}")
    return force / (energy + force)


def held_out_fraction(test_fraction: float, n_frames: int) -> float:
    """The test fraction to hand pacemaker: none when it would hold out less than one whole frame.

    pacemaker's random split of a tiny dataset (the first generation of a small run) can otherwise leave an
    empty training set, and the fit then writes no potential at all.
    """
    return test_fraction if test_fraction * n_frames >= 1 and n_frames >= 4 else 0.0


def pacemaker_input(
    elements: list[str],
    r_cut: float,
    body_order: int,
    polynomial_degree: int,
    radial_basis_size: int,
    max_iterations: int,
    loss_weights: dict | None = None,
    test_fraction: float = 0.0,
    has_test_file: bool = False,
    initial_potential: str | None = None,
    seed: int = 42,
    densities: int = 2,
) -> dict:
    """pacemaker's ``input.yaml`` as a dict, with the pyace evaluator (no TensorFlow).

    The test set is either a separate file (``has_test_file``, used for cross-validation folds) or a random
    ``test_fraction`` of the dataset. ``initial_potential`` (a previous ``.yaml``) warm-starts: pacemaker
    takes basis and coefficients from that file and continues the fit, so the basis knobs are then ignored.
    ``densities`` is the number of Finnis-Sinclair-like embedding densities (1: linear embedding, cheapest).
    """
    loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
    potential = {
        "deltaSplineBins": 0.001,
        "elements": sorted(elements),
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", **EMBEDDINGS[densities]}},
        "bonds": {
            "ALL": {
                "radbase": "SBessel",
                "radparameters": [5.25],
                "rcut": float(r_cut),
                "dcut": 0.01,
                "NameOfCutoffFunction": "cos",
            }
        },
        "functions": {"ALL": basis_functions(body_order, polynomial_degree, radial_basis_size)},
    }
    if initial_potential:
        potential = initial_potential
    data = {"filename": DATASET_FILENAME}
    if has_test_file:
        data["test_filename"] = TEST_DATASET_FILENAME
    elif test_fraction > 0:
        data["test_size"] = float(test_fraction)
    return {
        "cutoff": float(r_cut),
        "seed": int(seed),
        "metadata": {
            "origin": "aiida-autopipe",
            "loss_weights": ",".join(f"{k}={v:g}" for k, v in sorted(loss_weights.items())),
            "stress_fitted": "no (pyace evaluator has no stress term)",
        },
        "potential": potential,
        "data": data,
        "fit": {
            "loss": {
                "kappa": kappa_from_loss_weights(loss_weights),
                "L1_coeffs": COEFFICIENT_REGULARISATION,
                "L2_coeffs": COEFFICIENT_REGULARISATION,
            },
            "optimizer": "BFGS",
            "maxiter": int(max_iterations),
        },
        "backend": {"evaluator": "pyace", "parallel_mode": "serial", "display_step": 10},
    }


def error_metrics(
    predictions: pd.DataFrame,
    frames: list[Atoms] | None = None,
    stress_model=None,
    shifts: dict[str, float] | None = None,
) -> dict:
    """RMSE and MAE of energy per atom (eV/atom), forces (eV/A, per component, masked atoms left out), stress.

    ``predictions`` is pacemaker's ``train_pred``/``test_pred`` dataframe (targets and predictions of the
    residual). ``shifts`` (:func:`atomic_energy_shifts`, needs ``frames``) are the per-element constants the
    exported model adds to ACE: with them the errors are those of the total model. Also reported: the mean
    signed energy error per atom (``energy_mean_error``, prediction minus label). Stress errors (eV/A^3, per
    component) need the labelled ``frames`` and ``stress_model(atoms) -> 3x3 stress`` of the total model.
    """
    n_atoms = predictions["NUMBER_OF_ATOMS"].to_numpy(dtype=float)
    predicted = predictions["energy_pred"].to_numpy(dtype=float)
    if shifts:
        predicted = predicted + [atomic_energy_sum(frames[int(name)], shifts) for name in predictions["name"]]
    energy_error = (predicted - predictions["energy_corrected"].to_numpy(dtype=float)) / n_atoms
    energy_mask = (
        predictions["w_energy"].to_numpy() > 0 if "w_energy" in predictions else np.ones(len(n_atoms))
    )
    force_errors = []
    for _, row in predictions.iterrows():
        mask = np.asarray(row["w_forces"]) > 0 if "w_forces" in row else slice(None)
        force_errors.append((np.asarray(row["forces_pred"]) - np.asarray(row["forces"]))[mask].ravel())
    metrics = {"n_structures": len(predictions)}
    metrics.update(_rmse_mae("energy", energy_error[energy_mask.astype(bool)]))
    if energy_mask.any():
        metrics["energy_mean_error"] = float(np.mean(energy_error[energy_mask.astype(bool)]))
    metrics.update(_rmse_mae("forces", np.concatenate(force_errors) if force_errors else np.array([])))
    if frames is not None and stress_model is not None:
        stress_errors = []
        for name in predictions["name"]:
            atoms = frames[int(name)]
            if "stress" in atoms.info and atoms.cell.rank == 3:
                stress_errors.append((stress_model(atoms) - stress_matrix(atoms.info["stress"])).ravel())
        if stress_errors:
            metrics.update(_rmse_mae("stress", np.concatenate(stress_errors)))
    return metrics


def _rmse_mae(quantity: str, errors: np.ndarray) -> dict:
    if errors.size == 0:
        return {}
    return {
        f"{quantity}_rmse": float(np.sqrt(np.mean(errors**2))),
        f"{quantity}_mae": float(np.mean(np.abs(errors))),
    }
