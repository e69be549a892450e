"""Event search with any ASE calculator: climbing-image NEB, dimer saddle searches, de-duplication.

The calculator is passed as a factory (one instance per NEB image): the ACE potential of Module D in
production, ASE's EMT in tests. Every saddle carries its configuration so its uncertainty (ACE gamma) can
be checked and an uncertain saddle sent to labelling instead of being trusted.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.geometry import find_mic
from ase.mep import NEB, DimerControl, MinModeAtoms, MinModeTranslate
from ase.optimize import BFGS, FIRE

from aiida_autopipe.core.errors import InputError


@dataclass
class SaddleEvent:
    """One transition out of a minimum: the saddle, its energy and the barrier (eV)."""

    saddle: Atoms
    initial_energy: float
    saddle_energy: float
    method: str
    final: Atoms | None = None
    converged: bool = True

    @property
    def barrier(self) -> float:
        return self.saddle_energy - self.initial_energy


def relax(atoms: Atoms, calculator, fmax: float = 0.01, steps: int = 500) -> Atoms:
    """A relaxed copy (fixed cell) with `calculator` attached."""
    relaxed = atoms.copy()
    relaxed.calc = calculator
    BFGS(relaxed, logfile=None).run(fmax=fmax, steps=steps)
    return relaxed


def neb_saddle(
    initial: Atoms,
    final: Atoms,
    calculator_factory: Callable[[], object],
    n_images: int = 5,
    fmax: float = 0.03,
    steps: int = 1000,
    climb: bool = True,
) -> SaddleEvent:
    """Climbing-image NEB between two relaxed minima (IDPP interpolation); the highest image is the saddle."""
    images = [initial.copy() for _ in range(n_images + 1)] + [final.copy()]
    for image in images:
        image.calc = calculator_factory()
    band = NEB(images, climb=climb, method="improvedtangent", allow_shared_calculator=False)
    band.interpolate(method="idpp", mic=True)
    converged = FIRE(band, logfile=None).run(fmax=fmax, steps=steps)
    energies = np.array([image.get_potential_energy() for image in images])
    top = int(np.argmax(energies))
    saddle = images[top].copy()
    return SaddleEvent(saddle, float(energies[0]), float(energies[top]), "neb", final.copy(), bool(converged))


def dimer_saddle(
    minimum: Atoms,
    calculator,
    displacement: np.ndarray,
    fmax: float = 0.01,
    steps: int = 1000,
    initial_energy: float | None = None,
) -> SaddleEvent:
    """Minimum-mode following (ASE dimer) from `minimum` pushed by `displacement` (n_atoms x 3, Angstrom).

    The displacement both moves the start off the minimum and seeds the lowest-curvature mode. The result
    is checked: it must have exactly one negative curvature along the converged dimer direction.
    """
    displacement = np.asarray(displacement, dtype=float)
    if displacement.shape != (len(minimum), 3) or not np.any(displacement):
        raise InputError("displacement", "must be a non-zero (n_atoms, 3) array", "push the hopping atom")
    start = minimum.copy()
    start.calc = calculator
    energy0 = float(start.get_potential_energy()) if initial_energy is None else initial_energy
    control = DimerControl(
        initial_eigenmode_method="displacement",
        displacement_method="vector",
        logfile=None,
        max_num_rot=4,
        trial_trans_step=0.05,
        maximum_translation=0.1,
    )
    dimer_atoms = MinModeAtoms(start, control)
    dimer_atoms.displace(displacement_vector=displacement, mask=[True] * len(minimum))
    converged = MinModeTranslate(dimer_atoms, logfile=None, trajectory=None).run(fmax=fmax, steps=steps)
    curvature = float(dimer_atoms.get_curvature())
    saddle = start.copy()
    saddle.set_positions(dimer_atoms.get_positions())
    saddle.calc = calculator
    saddle_energy = float(saddle.get_potential_energy())
    saddle.calc = None
    return SaddleEvent(saddle, energy0, saddle_energy, "dimer", None, bool(converged) and curvature < 0)


def same_configuration(a: Atoms, b: Atoms, tolerance: float = 0.1) -> bool:
    """True when every atom of `a` lies within `tolerance` (Angstrom, minimum image) of its twin in `b`."""
    if len(a) != len(b) or np.any(a.numbers != b.numbers):
        return False
    vectors, _ = find_mic(a.positions - b.positions, a.cell, a.pbc)
    return bool(np.max(np.linalg.norm(vectors, axis=1)) < tolerance)


def deduplicate_events(events, energy_tolerance: float = 0.01, position_tolerance: float = 0.1) -> list:
    """Keep the first of events whose saddle energies and saddle geometries agree within tolerance."""
    unique: list[SaddleEvent] = []
    for event in events:
        if not any(
            abs(event.saddle_energy - kept.saddle_energy) < energy_tolerance
            and same_configuration(event.saddle, kept.saddle, position_tolerance)
            for kept in unique
        ):
            unique.append(event)
    return unique


def uncertain_saddles(events, gamma_of: Callable[[Atoms], np.ndarray], threshold: float):
    """Split saddles into trusted ones and (event, per-atom gamma) pairs to send to labelling: a barrier from
    a potential that extrapolates at the saddle is not a rate anyone should believe."""
    trusted, to_label = [], []
    for event in events:
        gammas = np.asarray(gamma_of(event.saddle), dtype=float)
        if gammas.max() > threshold:
            to_label.append((event, gammas))
        else:
            trusted.append(event)
    return trusted, to_label
