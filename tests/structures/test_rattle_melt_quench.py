"""Deep rattling keeps the distance guard; melt-quench output is not crystalline; sanity check counts."""

import warnings

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.neighborlist import neighbor_list
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor
from scipy.special import sph_harm_y

from aiida_autopipe.core.structures.base import GeneratedStructure
from aiida_autopipe.core.structures.melt_quench import melt_quench, melt_temperature
from aiida_autopipe.core.structures.rattle import GUARD_FACTOR, rattled_structures
from aiida_autopipe.core.structures.sanity import check_structure, filter_sane, shortest_scaled_distance


def test_deep_rattle_moves_far_but_respects_the_guard():
    silicon = GeneratedStructure(bulk("Si", "diamond", a=5.43, cubic=True).repeat(2), "input", "si")
    rattled = rattled_structures(silicon, amplitudes=(0.3,), n_per_amplitude=3, seed=0)
    for record in rattled:
        displacement = np.linalg.norm(record.atoms.positions - silicon.atoms.positions, axis=1)
        assert displacement.mean() > 0.3  # Gaussian 0.3 Angstrom per component: mean length about 0.48
        assert shortest_scaled_distance(record.atoms) >= GUARD_FACTOR - 1e-9
        assert record.parent == "si" and record.details["amplitude"] == 0.3


def test_sanity_check_rejects_and_counts():
    good = bulk("Cu", "fcc", a=3.61).repeat(2)
    crushed = good.copy()
    crushed.positions[1] = crushed.positions[0] + [0.5, 0, 0]
    vapour = good.copy()
    vapour.set_cell(vapour.cell * 8, scale_atoms=True)  # 0.02 g/cm^3
    assert check_structure(good).passed
    records = [GeneratedStructure(atoms, "test", str(i)) for i, atoms in enumerate([good, crushed, vapour])]
    kept, rejections = filter_sane(records)
    assert [record.label for record in kept] == ["0"]
    assert rejections == {"too_close": 1, "density": 1}


def bond_order_q6(atoms, cutoff: float) -> float:
    """Global Steinhardt Q6 over all bonds: 0.575 for fcc, small for a disordered packing."""
    _, vectors = neighbor_list("iD", atoms, cutoff)
    lengths = np.linalg.norm(vectors, axis=1)
    polar, azimuth = np.arccos(vectors[:, 2] / lengths), np.arctan2(vectors[:, 1], vectors[:, 0])
    harmonics = sph_harm_y(6, np.arange(-6, 7)[:, None], polar[None, :], azimuth[None, :]).mean(axis=1)
    return float(np.sqrt(4 * np.pi / 13 * np.sum(np.abs(harmonics) ** 2)))


def test_melt_quench_output_is_not_crystalline():
    """LJ argon (sigma 3.4 Angstrom, epsilon 10.4 meV, melts at 84 K at 1 bar), 32 atoms at the crystal's
    volume: melt at 800 K (well above melting at this density) for 1.5 ps, quench to 10 K in 0.5 ps. The
    result neither matches fcc (StructureMatcher) nor keeps fcc's bond order (quenched runs gave Q6
    0.10-0.19 over several seeds, fcc 0.575)."""
    crystal = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    calculator = LennardJones(sigma=3.4, epsilon=0.0104, rc=7.0, smooth=True)
    parent = GeneratedStructure(crystal, "input", "argon")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ASE's Langevin fixcm notice
        outputs = melt_quench(
            parent,
            calculator,
            800.0,
            10.0,
            melt_steps=150,
            quench_steps=50,
            timestep_fs=10.0,
            n_melt_snapshots=1,
        )
    melt, quenched = outputs
    assert (melt.method, melt.temperature) == ("melt", 800.0)
    assert (quenched.method, quenched.temperature) == ("melt_quench", 10.0)
    matcher = StructureMatcher()
    reference = AseAtomsAdaptor.get_structure(crystal)
    jiggled = crystal.copy()
    jiggled.rattle(0.05, seed=1)
    assert matcher.fit(reference, AseAtomsAdaptor.get_structure(jiggled))  # the check can say "crystal"
    assert not matcher.fit(reference, AseAtomsAdaptor.get_structure(quenched.atoms))
    assert bond_order_q6(crystal, 4.4) == pytest.approx(0.575, abs=0.01)
    assert bond_order_q6(quenched.atoms, 4.4) < 0.3
    assert check_structure(quenched.atoms).passed


def test_melt_temperature_from_guess_or_elements():
    assert melt_temperature({"Si": 1.0}, melting_point_guess=1687.0) == pytest.approx(1.5 * 1687.0)
    assert 1.5 * 1500 < melt_temperature({"Fe": 0.5, "Ni": 0.5}) < 1.5 * 1900
