"""Normal-mode sampling: Hessian against analytic Morse, equipartition at T, rigid-body modes excluded,
compressed (sparse) Hessian equal to the dense one.

Calculators: ASE's MorsePotential (analytic pair potential, all pairs) and LennardJones (smooth cutoff).
"""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.lj import LennardJones
from ase.calculators.morse import MorsePotential
from ase.optimize import BFGS

from aiida_autopipe.core.structures.base import GeneratedStructure
from aiida_autopipe.core.structures.normal_modes import (
    colour_atoms,
    finite_difference_hessian,
    normal_mode_samples,
    normal_modes,
    thermal_displacements,
)

EPSILON, RHO0, R0 = 2.0, 6.0, 1.1


def morse() -> MorsePotential:
    return MorsePotential(epsilon=EPSILON, rho0=RHO0, r0=R0)


@pytest.fixture(scope="module")
def morse_water():
    """H2O's atoms relaxed on the Morse surface (an equilateral triangle with side r0): O and H masses."""
    water = molecule("H2O")
    water.calc = morse()
    BFGS(water, logfile=None).run(fmax=1e-6)
    return water


def test_dimer_frequency_matches_the_analytic_morse_curvature():
    dimer = Atoms("OH", positions=[[0, 0, 0], [0, 0, R0]])
    omega_squared, _, n_rigid = normal_modes(dimer, finite_difference_hessian(dimer, morse()))
    masses = dimer.get_masses()
    reduced_mass = masses.prod() / masses.sum()
    curvature = 2 * EPSILON * (RHO0 / R0) ** 2
    assert n_rigid == 5  # linear molecule: 3 translations, 2 rotations
    assert omega_squared == pytest.approx([curvature / reduced_mass], rel=2e-3)


def test_sampled_potential_energy_obeys_equipartition(morse_water):
    """At low T the real Morse energy above the minimum averages (3N - 6) kT / 2 = 1.5 kT."""
    temperature, n_samples = 30.0, 3000
    omega_squared, modes, n_rigid = normal_modes(morse_water, finite_difference_hessian(morse_water, morse()))
    assert n_rigid == 6 and omega_squared.size == 3
    displacements, skipped = thermal_displacements(
        morse_water, omega_squared, modes, temperature, n_samples, np.random.default_rng(0)
    )
    assert skipped == 0
    reference = morse_water.get_potential_energy()
    probe = morse_water.copy()
    probe.calc = morse()
    energies = []
    for displacement in displacements:
        probe.set_positions(morse_water.positions + displacement)
        energies.append(probe.get_potential_energy() - reference)
    kt = units.kB * temperature
    mean = np.mean(energies) / kt
    standard_error = np.std(energies) / np.sqrt(n_samples) / kt
    assert abs(mean - 1.5) < 4 * standard_error + 0.02

    # Each mode carries kT/2: the mass-weighted projections have variance kT / w^2.
    weighted = displacements.reshape(n_samples, -1) * np.repeat(np.sqrt(morse_water.get_masses()), 3)
    variances = np.var(weighted @ modes, axis=0) * omega_squared / kt
    assert variances == pytest.approx(np.ones(3), abs=0.1)


def test_displacements_carry_no_translation_or_rotation(morse_water):
    omega_squared, modes, _ = normal_modes(morse_water, finite_difference_hessian(morse_water, morse()))
    displacements, _ = thermal_displacements(
        morse_water, omega_squared, modes, 300.0, 50, np.random.default_rng(1)
    )
    masses = morse_water.get_masses()[None, :, None]
    centred = morse_water.positions - morse_water.get_center_of_mass()
    assert np.abs((masses * displacements).sum(axis=1)).max() < 1e-10
    angular = (masses * np.cross(centred[None], displacements)).sum(axis=1)
    assert np.abs(angular).max() < 1e-10


def test_compressed_hessian_equals_the_dense_one_with_fewer_force_calls():
    """A 4x3x3 cubic cluster with a 5 Angstrom LJ cutoff: forces are exactly local, so colouring is exact."""
    grid = np.array([[i, j, k] for i in range(4) for j in range(3) for k in range(3)], dtype=float) * 3.6
    cluster = Atoms(f"Ar{len(grid)}", positions=grid)
    calculator = LennardJones(sigma=3.4, epsilon=0.0104, rc=5.0, smooth=True)
    dense = finite_difference_hessian(cluster, calculator)
    sparse = finite_difference_hessian(cluster, calculator, cutoff=5.0)
    assert np.abs(sparse.toarray() - dense).max() < 1e-8 * np.abs(dense).max() + 1e-10
    assert colour_atoms(cluster, 5.0).max() + 1 < len(cluster)


def test_samples_are_tagged_with_temperature_and_parent(morse_water):
    parent = GeneratedStructure(morse_water.copy(), "input", "water")
    samples = normal_mode_samples(parent, morse(), temperatures=(100.0, 500.0), n_per_temperature=3)
    assert [sample.temperature for sample in samples] == [100.0] * 3 + [500.0] * 3
    assert {sample.parent for sample in samples} == {"water"}
    assert samples[0].details["n_modes"] == 3
