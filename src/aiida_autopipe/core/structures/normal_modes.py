"""Normal-mode sampling for molecules: finite-difference Hessian from any ASE calculator, harmonic modes
with translations and rotations projected out, and Boltzmann-distributed displacements at temperature T.

Classical harmonic sampling: in mass-weighted normal coordinates q_k the potential is sum_k w_k^2 q_k^2 / 2,
so at temperature T each q_k is Gaussian with variance kT / w_k^2 (mean potential energy kT/2 per mode).
All real vibrational modes are sampled, the stiff high-frequency ones included; imaginary modes (the
structure is not at a minimum) are left out and counted.

Scaling to thousands of atoms: with ``cutoff`` set, the Hessian is built by compressed finite differences.
Atoms further apart than twice the cutoff cannot both move the force on a third atom, so they are displaced
together; a greedy colouring of the "closer than 2 x cutoff" graph sets which atoms move together, and the
number of force calls is 6 x (number of colours), which depends on the local density and not on the size of
the molecule. Only blocks of atom pairs within the cutoff are stored (a scipy sparse matrix). The
eigenproblem is then solved densely (LAPACK, O((3N)^3)); translations and rotations are projected out with
rank-6 updates, O(N^2). Measured (bench/generation.py, LJ clusters, 2 heavily shared cores): 2197 atoms
took 132 force calls (a dense Hessian needs 13182) in 127 s, and 462 s to diagonalise.
"""

import numpy as np
import scipy.sparse
from ase import Atoms, units
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.structures.base import GeneratedStructure

#: Converts sqrt(eV / (Angstrom^2 amu)) to wavenumbers in cm^-1.
TO_WAVENUMBER = float(np.sqrt(units._e / (1e-20 * units._amu)) / (2 * np.pi * units._c * 100))
#: Modes with |w^2| below this (eV / (Angstrom^2 amu)) are treated as zero (about 5 cm^-1).
ZERO_MODE_THRESHOLD = (5.0 / TO_WAVENUMBER) ** 2


def _forces(atoms: Atoms, calculator, positions: np.ndarray) -> np.ndarray:
    probe = atoms.copy()
    probe.set_positions(positions)
    probe.calc = calculator
    return probe.get_forces()


def colour_atoms(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Greedy colouring: atoms of one colour are more than 2 x cutoff apart (periodic images included)."""
    first, second = neighbor_list("ij", atoms, 2.0 * cutoff)
    colours = np.full(len(atoms), -1)
    order = np.argsort(first, kind="stable")
    first, second = first[order], second[order]
    starts = np.searchsorted(first, np.arange(len(atoms) + 1))
    for atom in range(len(atoms)):
        taken = set(colours[second[starts[atom] : starts[atom + 1]]].tolist())
        colour = 0
        while colour in taken:
            colour += 1
        colours[atom] = colour
    return colours


def finite_difference_hessian(
    atoms: Atoms, calculator, displacement: float = 0.005, cutoff: float | None = None
) -> np.ndarray | scipy.sparse.csr_matrix:
    """Hessian d^2E / dx_i dx_j in eV/Angstrom^2 by central differences of forces, symmetrised.

    Dense with 6N force calls when ``cutoff`` is None; otherwise sparse with 6 x colours force calls, exact
    whenever forces do not depend on atoms beyond ``cutoff`` (Angstrom).
    """
    positions = atoms.get_positions()
    n_atoms = len(atoms)
    if cutoff is None:
        hessian = np.empty((3 * n_atoms, 3 * n_atoms))
        for column in range(3 * n_atoms):
            step = np.zeros(3 * n_atoms)
            step[column] = displacement
            plus = _forces(atoms, calculator, positions + step.reshape(-1, 3))
            minus = _forces(atoms, calculator, positions - step.reshape(-1, 3))
            hessian[:, column] = -(plus - minus).ravel() / (2 * displacement)
        return 0.5 * (hessian + hessian.T)

    colours = colour_atoms(atoms, cutoff)
    responder, mover = neighbor_list("ij", atoms, cutoff)
    responder = np.concatenate([responder, np.arange(n_atoms)])  # the moved atom responds to itself
    mover = np.concatenate([mover, np.arange(n_atoms)])
    rows, cols, values = [], [], []
    for colour in range(colours.max() + 1):
        moved = colours == colour
        pairs = moved[mover]
        for direction in range(3):
            step = np.zeros((n_atoms, 3))
            step[moved, direction] = displacement
            plus = _forces(atoms, calculator, positions + step)
            minus = _forces(atoms, calculator, positions - step)
            response = -(plus - minus) / (2 * displacement)
            for component in range(3):
                rows.append(3 * responder[pairs] + component)
                cols.append(3 * mover[pairs] + direction)
                values.append(response[responder[pairs], component])
    hessian = scipy.sparse.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(3 * n_atoms,) * 2
    )
    return 0.5 * (hessian + hessian.T)


def rigid_body_vectors(atoms: Atoms) -> np.ndarray:
    """Orthonormal mass-weighted translations and rotations (5 for a linear molecule, else 6), as columns."""
    masses = atoms.get_masses()
    sqrt_masses = np.repeat(np.sqrt(masses), 3)
    centred = atoms.get_positions() - atoms.get_center_of_mass()
    vectors = []
    for axis in np.eye(3):
        vectors.append(np.tile(axis, len(atoms)) * sqrt_masses)
        vectors.append(np.cross(axis, centred).ravel() * sqrt_masses)
    basis, singular, _ = np.linalg.svd(np.array(vectors).T, full_matrices=False)
    return basis[:, singular > 1e-6 * singular.max()]


def normal_modes(atoms: Atoms, hessian) -> tuple[np.ndarray, np.ndarray, int]:
    """Vibrational w^2 (eV/(Angstrom^2 amu)) and mass-weighted eigenvectors (columns), translations and
    rotations projected out; also returns how many rigid-body modes were removed."""
    inverse_sqrt_masses = 1.0 / np.repeat(np.sqrt(atoms.get_masses()), 3)
    dense = hessian.toarray() if scipy.sparse.issparse(hessian) else np.asarray(hessian)
    weighted = dense * inverse_sqrt_masses[:, None] * inverse_sqrt_masses[None, :]
    rigid = rigid_body_vectors(atoms)
    # (1 - R R^T) W (1 - R R^T) expanded: rank-6 updates, O(N^2) instead of two dense O(N^3) products.
    weighted_rigid = weighted @ rigid
    projected = (
        weighted
        - rigid @ weighted_rigid.T
        - weighted_rigid @ rigid.T
        + rigid @ (rigid.T @ weighted_rigid) @ rigid.T
    )
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (projected + projected.T))
    rigid_overlap = np.sum((rigid.T @ eigenvectors) ** 2, axis=0)
    vibrational = np.argsort(rigid_overlap)[: weighted.shape[0] - rigid.shape[1]]
    vibrational.sort()
    return eigenvalues[vibrational], eigenvectors[:, vibrational], rigid.shape[1]


def thermal_displacements(
    atoms: Atoms, omega_squared: np.ndarray, modes: np.ndarray, temperature: float, n_samples: int, rng
) -> tuple[np.ndarray, int]:
    """Cartesian displacements (n_samples, N, 3) with q_k ~ N(0, kT / w_k^2) on every real mode; also returns
    the number of imaginary or zero modes left out."""
    real = omega_squared > ZERO_MODE_THRESHOLD
    sigma = np.sqrt(units.kB * temperature / omega_squared[real])
    amplitudes = rng.standard_normal((n_samples, int(real.sum()))) * sigma
    inverse_sqrt_masses = 1.0 / np.repeat(np.sqrt(atoms.get_masses()), 3)
    displacements = (amplitudes @ modes[:, real].T) * inverse_sqrt_masses
    return displacements.reshape(n_samples, len(atoms), 3), int((~real).sum())


def harmonic_analysis(
    atoms: Atoms, calculator, cutoff: float | None = None, displacement: float = 0.005
) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational w^2 and mass-weighted modes of ``atoms`` (at a minimum of the calculator's surface)."""
    hessian = finite_difference_hessian(atoms, calculator, displacement=displacement, cutoff=cutoff)
    omega_squared, modes, _ = normal_modes(atoms, hessian)
    return omega_squared, modes


def wavenumbers(omega_squared: np.ndarray) -> np.ndarray:
    """Wavenumbers (cm^-1) of the real modes, the ones that are sampled."""
    return np.sqrt(omega_squared[omega_squared > ZERO_MODE_THRESHOLD]) * TO_WAVENUMBER


def samples_from_modes(
    parent: GeneratedStructure,
    omega_squared: np.ndarray,
    modes: np.ndarray,
    temperatures: tuple[float, ...],
    n_per_temperature: int,
    rng: np.random.Generator,
) -> list[GeneratedStructure]:
    """Displaced copies of the parent molecule, ``n_per_temperature`` at each temperature (K)."""
    real_wavenumbers = wavenumbers(omega_squared)
    samples = []
    for temperature in temperatures:
        displacements, skipped = thermal_displacements(
            parent.atoms, omega_squared, modes, temperature, n_per_temperature, rng
        )
        for index, displacement in enumerate(displacements):
            atoms = parent.atoms.copy()
            atoms.positions += displacement
            details = {
                "n_modes": int(real_wavenumbers.size),
                "n_modes_skipped": skipped,
                "highest_wavenumber_cm": float(real_wavenumbers.max()) if real_wavenumbers.size else 0.0,
            }
            samples.append(
                GeneratedStructure(
                    atoms=atoms,
                    method="normal_modes",
                    label=f"{parent.label}_nm{temperature:g}K_{index}",
                    parent=parent.label,
                    temperature=float(temperature),
                    details=details,
                )
            )
    return samples


def normal_mode_samples(
    parent: GeneratedStructure,
    calculator,
    temperatures: tuple[float, ...],
    n_per_temperature: int,
    seed: int = 0,
    cutoff: float | None = None,
) -> list[GeneratedStructure]:
    """Displaced copies of the parent molecule, ``n_per_temperature`` at each temperature (K)."""
    omega_squared, modes = harmonic_analysis(parent.atoms, calculator, cutoff=cutoff)
    rng = np.random.default_rng(seed)
    return samples_from_modes(parent, omega_squared, modes, temperatures, n_per_temperature, rng)
