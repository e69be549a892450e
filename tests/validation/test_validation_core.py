"""Validation numerics on EMT copper and hand-made frames: EOS, elastic constants, RDF, phases, parity."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_autopipe.core import validation
from aiida_autopipe.core.errors import InputError


@pytest.fixture(scope="module")
def copper_eos():
    return validation.equation_of_state(bulk("Cu", "fcc", a=3.6, cubic=True), EMT())


def test_eos_matches_an_independent_dense_scan(copper_eos):
    """V0 and B0 agree with the minimum and curvature of a dense E(V) scan fitted by a quartic polynomial."""
    eos, at_minimum = copper_eos
    cell = bulk("Cu", "fcc", a=1.0, cubic=True)
    lattice = np.linspace(3.55, 3.63, 41)
    energies = []
    for a in lattice:
        atoms = cell.copy()
        atoms.set_cell(cell.cell[:] * a, scale_atoms=True)
        atoms.calc = EMT()
        energies.append(atoms.get_potential_energy())
    volumes = lattice**3
    polynomial = np.polynomial.Polynomial.fit(volumes, energies, 4)
    fine = np.linspace(volumes[0], volumes[-1], 20001)
    v0 = fine[np.argmin(polynomial(fine))]
    bulk_modulus = v0 * polynomial.deriv(2)(v0) / units.GPa

    assert eos.lattice_constants_angstrom == pytest.approx([v0 ** (1 / 3)] * 3, abs=2e-4)
    assert 3.58 < eos.lattice_constants_angstrom[0] < 3.60  # EMT Cu: 3.59 Angstrom
    assert eos.bulk_modulus_gpa == pytest.approx(bulk_modulus, rel=0.01)
    assert eos.volume_per_atom == pytest.approx(v0 / 4, rel=1e-4)
    assert eos.min_in_range and eos.ions_converged
    assert at_minimum.get_volume() == pytest.approx(v0, rel=1e-4)


def test_elastic_constants_are_cubic_and_agree_with_the_eos(copper_eos):
    eos, at_minimum = copper_eos
    elastic = validation.elastic_constants(at_minimum, EMT())
    matrix = np.array(elastic.voigt_matrix_gpa)
    assert elastic.cubic and elastic.mechanically_stable
    assert elastic.c11_gpa - elastic.c12_gpa > 20 and elastic.c44_gpa > 20
    assert (elastic.c11_gpa + 2 * elastic.c12_gpa) / 3 == pytest.approx(eos.bulk_modulus_gpa, rel=0.02)
    assert elastic.bulk_modulus_voigt_gpa == pytest.approx(eos.bulk_modulus_gpa, rel=0.02)
    assert (
        np.abs(matrix[:3, 3:]).max() < 0.1
        and np.abs(matrix[3:, 3:] - np.diag(np.diag(matrix[3:, 3:]))).max() < 0.1
    )
    assert np.abs(elastic.residual_stress_gpa).max() < 0.1  # at the EOS volume


def test_elastic_matrix_predicts_the_stress_of_another_strain(copper_eos):
    """sigma = C epsilon (Voigt, engineering shear) for a small strain mixing all six components."""
    _, at_minimum = copper_eos
    matrix = np.array(validation.elastic_constants(at_minimum, EMT()).voigt_matrix_gpa)
    voigt = np.array([1.0, -0.5, 0.3, 0.8, -0.4, 0.6]) * 1e-3
    tensor = sum(validation.voigt_strain_tensor(index, value) for index, value in enumerate(voigt))
    strained = at_minimum.copy()
    strained.set_cell(at_minimum.cell[:] @ (np.eye(3) + tensor).T, scale_atoms=True)
    strained.calc = EMT()
    reference = at_minimum.copy()
    reference.calc = EMT()
    stress = (strained.get_stress() - reference.get_stress()) / units.GPa
    assert stress == pytest.approx(matrix @ voigt, abs=0.01 * np.abs(matrix @ voigt).max())


def test_crystal_properties_need_a_periodic_structure():
    molecule = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.3]], cell=[10, 10, 10], pbc=False)
    with pytest.raises(InputError, match="3D periodic"):
        validation.equation_of_state(molecule, EMT())
    with pytest.raises(InputError, match="3D periodic"):
        validation.elastic_constants(molecule, EMT())


def test_rdf_of_an_ideal_gas_is_one_and_partials_too():
    rng = np.random.default_rng(1)
    gas = Atoms(["Cu", "Au"] * 400, positions=rng.uniform(0, 20, (800, 3)), cell=[20, 20, 20], pbc=True)
    curve = validation.radial_distribution([gas], r_max=6.0, n_bins=30)
    far = curve.r_angstrom > 3.0
    assert curve.normalisation == "g(r)"
    assert np.mean(curve.total[far]) == pytest.approx(1.0, abs=0.02)
    for pair in ("Au-Au", "Au-Cu", "Cu-Cu"):
        assert np.mean(curve.partials[pair][far]) == pytest.approx(1.0, abs=0.03)


def test_rdf_of_fcc_integrates_to_twelve_first_neighbours():
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(3)
    curve = validation.radial_distribution([crystal], r_max=3.0, n_bins=300)
    width = curve.r_angstrom[1] - curve.r_angstrom[0]
    density = len(crystal) / crystal.get_volume()
    neighbours = np.sum(curve.total * 4 * np.pi * curve.r_angstrom**2 * width) * density
    assert neighbours == pytest.approx(12.0, rel=0.01)
    assert curve.r_angstrom[np.argmax(curve.total)] == pytest.approx(3.6 / np.sqrt(2), abs=width)


def test_cluster_rdf_counts_every_other_atom():
    cluster = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    cluster.pbc = False
    curve = validation.radial_distribution([cluster], r_max=10.0, n_bins=200)
    width = curve.r_angstrom[1] - curve.r_angstrom[0]
    assert curve.normalisation == "neighbours per atom per Angstrom"
    assert np.sum(curve.total) * width == pytest.approx(len(cluster) - 1)


def test_hot_langevin_run_samples_near_its_temperature():
    copper = validation.supercell_with_at_least(bulk("Cu", "fcc", a=3.61, cubic=True), 32)
    frames, summary = validation.langevin_frames(
        copper, EMT(), 1500.0, 200, timestep=2.0, friction=0.05, equilibration=50, sample_every=10
    )
    assert len(copper) == 32 and summary["stable"] and summary["n_samples"] == len(frames) == 15
    assert summary["mean_sampled_temperature_K"] == pytest.approx(1500, rel=0.35)
    curve = validation.radial_distribution(frames, 6.0, 60)
    assert np.mean(curve.total[curve.r_angstrom > 4.0]) == pytest.approx(1.0, abs=0.15)


def _labelled(atoms, energy_offset=0.0, force_offsets=None):
    """A frame labelled by EMT plus known errors (the model will be plain EMT)."""
    frame = atoms.copy()
    frame.calc = EMT()
    frame.info["energy"] = frame.get_potential_energy() + energy_offset * len(frame)
    forces = frame.get_forces().copy()
    if force_offsets is not None:
        forces += force_offsets
    frame.calc = None
    frame.arrays["forces"] = forces
    return frame


def test_parity_table_matches_a_hand_computation():
    rng = np.random.default_rng(3)
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    base.rattle(0.05, rng=rng)
    offsets = np.zeros((4, 3))
    offsets[0, 0], offsets[2, 1] = 0.03, -0.04
    first = _labelled(base, energy_offset=-0.010, force_offsets=offsets)
    second = _labelled(base, energy_offset=0.020)
    masked_offsets = np.zeros((4, 3))
    masked_offsets[1, 2] = 5.0  # a masked atom: a huge error that must not count
    cluster = _labelled(base, energy_offset=3.0, force_offsets=masked_offsets)
    cluster.arrays["force_weight"] = np.array([1.0, 0.0, 1.0, 1.0])
    cluster.info["energy_weight"] = 0.0

    data = validation.parity([first, second, cluster], EMT(), groups=["a", "a", "b"])
    table = data.table()
    # The model reads energy - label: +10 and -20 meV/atom; the cluster's energy is not a label.
    assert table["a"]["energy_meV_per_atom"] == pytest.approx(
        {"rmse": np.sqrt((10**2 + 20**2) / 2), "mae": 15.0, "max_abs": 20.0, "count": 2}
    )
    assert table["b"]["energy_meV_per_atom"] == {"rmse": None, "mae": None, "max_abs": None, "count": 0}
    assert table["a"]["force_meV_per_angstrom"] == pytest.approx(
        {"rmse": np.sqrt((30**2 + 40**2) / 24), "mae": 70 / 24, "max_abs": 40.0, "count": 24}
    )
    assert table["b"]["force_meV_per_angstrom"] == pytest.approx(
        {"rmse": 0.0, "mae": 0.0, "max_abs": 0.0, "count": 9}, abs=1e-9
    )
    assert table["all"]["n_frames"] == 3 and table["all"]["force_meV_per_angstrom"]["count"] == 33
    assert np.isnan(data.energy_dft[2]) and len(data.force_dft) == len(data.force_group_index) == 33


def test_phases_are_ranked_and_labelled_frames_find_their_phase():
    rng = np.random.default_rng(0)
    phases = {
        "fcc": bulk("Cu", "fcc", a=3.6, cubic=True),
        "bcc": bulk("Cu", "bcc", a=2.88, cubic=True),
        "gold": bulk("Au", "fcc", a=4.08),
    }
    frames = []
    for name, atoms, repeat in (
        ("fcc", phases["fcc"], 1),
        ("bcc", phases["bcc"], 2),
        ("bcc", phases["bcc"], 1),
    ):
        frame = atoms.repeat(repeat)
        frame.rattle(0.03, rng=rng)
        frame.info["expected"] = name
        frames.append(_labelled(frame))
    assert validation.assign_to_phases(frames, phases) == [f.info["expected"] for f in frames]
    assert validation.frame_groups(frames, phases) == ["fcc", "bcc", "bcc"]

    ranking = validation.phase_ranking(phases, EMT(), frames, steps=100)
    records = ranking["phases"]
    assert ranking["by_composition"]["Cu"]["model_order_relaxed"] == ["fcc", "bcc"]
    assert ranking["by_composition"]["Cu"]["same_order"] is True
    assert records["fcc"]["n_labelled_frames"] == 1 and records["bcc"]["n_labelled_frames"] == 2
    assert records["gold"]["model_relative_relaxed_meV_per_atom"] == 0.0  # alone in its composition
    assert records["gold"]["dft_lowest_energy_per_atom_eV"] is None
    # EMT labels and an EMT model: the two orderings are the same numbers.
    assert records["bcc"]["dft_relative_meV_per_atom"] == pytest.approx(
        records["bcc"]["model_relative_on_dft_frames_meV_per_atom"]
    )
    assert records["bcc"]["model_relative_relaxed_meV_per_atom"] > 0


def test_frame_groups_prefer_config_type_then_clusters():
    frames = [_labelled(bulk("Cu", "fcc", a=3.6, cubic=True)) for _ in range(3)]
    frames[0].info["config_type"] = "surface"
    frames[1].info["energy_weight"] = 0.0
    assert validation.frame_groups(frames) == ["surface", "embedded_cluster", "Cu"]


def test_tersoff_silicon_reproduces_its_published_constants():
    """Tersoff's T3 Si (PRB 38, 9902, 1988): a 5.432 A, B 98 GPa, C11 142.5, C12 75.4, C44 69.0 GPa with the
    ions relaxed and 118.8 GPa clamped; diamond's internal relaxation is what brings C44 down."""
    from ase.calculators.tersoff import Tersoff, TersoffParameters

    t3 = TersoffParameters(
        m=3.0, gamma=1.0, lambda3=0.0, c=100390.0, d=16.217, h=-0.59825, n=0.78734, beta=1.1e-6,
        lambda2=1.7322, B=471.18, R=2.85, D=0.15, lambda1=2.4799, A=1830.8,
    )  # fmt: skip
    calculator = Tersoff({("Si", "Si", "Si"): t3})
    eos, at_minimum = validation.equation_of_state(bulk("Si", "diamond", a=5.43, cubic=True), calculator)
    relaxed = validation.elastic_constants(at_minimum, calculator)
    clamped = validation.elastic_constants(at_minimum, calculator, relax_ions=False)
    assert eos.lattice_constants_angstrom[0] == pytest.approx(5.432, abs=0.001)
    assert eos.bulk_modulus_gpa == pytest.approx(98.0, rel=0.01)
    assert relaxed.cubic and relaxed.c11_gpa == pytest.approx(142.5, rel=0.01)
    assert relaxed.c12_gpa == pytest.approx(75.4, rel=0.01)
    assert relaxed.c44_gpa == pytest.approx(69.0, rel=0.01)
    assert clamped.c44_gpa == pytest.approx(118.8, rel=0.01)
