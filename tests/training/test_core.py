"""AiiDA-free pieces of the training engine: reference potential, pacemaker inputs, basis search helpers."""

import io

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from aiida_autopipe.core.baseline import (
    ReferenceCalculator,
    automatic_reference,
    fit_reference,
    subtract_reference,
)
from aiida_autopipe.core.hyperparameters import (
    basis_functions,
    fold_indices,
    knee,
    pareto_front,
    search_grid,
    underdetermined_elements,
)
from aiida_autopipe.core.pacemaker_input import (
    kappa_from_loss_weights,
    pacemaker_dataframe,
    read_labelled_frames,
    write_labelled_frames,
)


@pytest.fixture
def reference():
    potential = automatic_reference(["Si"], r_cut=5.0)
    potential.lj["Si-Si"]["epsilon"] = 0.4
    return potential


def test_automatic_reference_from_covalent_radii():
    """sigma puts the LJ minimum at the sum of covalent radii (2 x 1.11 A for Si); ZBL ends below it."""
    potential = automatic_reference(["Si", "O"], r_cut=4.5)
    assert set(potential.lj) == {"O-O", "O-Si", "Si-Si"}
    assert potential.lj["Si-Si"]["sigma"] * 2 ** (1 / 6) == pytest.approx(2.22)
    assert potential.zbl_outer < 2 * 0.66  # shortest pair: O-O
    assert potential.lj_cutoff == 4.5


def test_reference_forces_and_stress_are_derivatives(reference):
    atoms = bulk("Si", "diamond", a=4.9, cubic=True)
    atoms.positions += np.random.default_rng(0).normal(0, 0.25, atoms.positions.shape)
    atoms.calc = ReferenceCalculator(reference)
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-5), atol=1e-4)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-6), atol=1e-5)


def test_zbl_switch_and_lj_shift_end_smoothly(reference):
    def dimer(distance):
        atoms = Atoms("Si2", positions=[[0, 0, 0], [distance, 0, 0]])
        atoms.calc = ReferenceCalculator(reference)
        return atoms.get_potential_energy(), atoms.get_forces()[1, 0]

    zbl_only = automatic_reference(["Si"], r_cut=5.0)  # epsilon 0: ZBL alone
    zbl_only.lj = {}
    outer = zbl_only.zbl_outer
    calc = ReferenceCalculator(zbl_only)
    for distance, expected_zero in ((outer - 1e-4, True), (outer - 0.3, False)):
        atoms = Atoms("Si2", positions=[[0, 0, 0], [distance, 0, 0]], calculator=calc)
        assert (abs(atoms.get_potential_energy()) < 1e-6) is expected_zero
    assert abs(dimer(5.0 - 1e-6)[0]) < 1e-6  # LJ shifted to zero at its cutoff
    assert dimer(1.0)[0] > 1e3 and dimer(1.0)[1] > 1e3  # a wall


def test_fitted_reference_explains_part_of_the_labels(si_frames):
    reference = fit_reference(si_frames, r_cut=5.0)
    assert reference.lj["Si-Si"]["epsilon"] > 0
    per_atom = np.mean([a.info["energy"] / len(a) for a in si_frames])
    assert reference.atomic_energies["Si"] == pytest.approx(per_atom, abs=1.0)
    residual = subtract_reference(si_frames, reference)
    raw = np.concatenate([a.arrays["forces"].ravel() for a in si_frames])
    left = np.concatenate([a.arrays["forces"].ravel() for a in residual])
    assert np.sqrt(np.mean(left**2)) < 0.9 * np.sqrt(np.mean(raw**2))


def test_lammps_snippet(reference):
    snippet = reference.lammps_snippet("potential.yace", ["Si"])
    lines = snippet.splitlines()
    assert "pair_style hybrid/overlay pace lj/cut 5 zbl 1.11 1.776" in lines
    assert "pair_coeff * * pace potential.yace Si" in lines
    assert "pair_coeff 1 1 lj/cut 0.4 1.9777952" in lines
    assert "pair_coeff 1 1 zbl 14.0 14.0" in lines
    assert "pair_modify pair lj/cut shift yes" in lines


def test_labelled_frames_round_trip_with_weights_and_voigt_stress(si_frames):
    frames = [atoms.copy() for atoms in si_frames[:2]]
    voigt = np.array([0.01, 0.02, 0.03, 0.004, 0.005, 0.006])
    frames[0].info["stress"] = voigt
    frames[0].arrays["force_weight"] = np.array([0.0, 1.0])
    frames[1].info["energy_weight"] = 0.0
    handle = io.StringIO()
    write_labelled_frames(frames, handle)
    handle.seek(0)
    back = read_labelled_frames(handle)
    assert back[0].info["stress"][1, 2] == pytest.approx(0.004) and back[0].info["stress"][
        0, 1
    ] == pytest.approx(0.006)
    np.testing.assert_array_equal(back[0].arrays["force_weight"], [0.0, 1.0])
    assert back[1].info["energy"] == pytest.approx(si_frames[1].info["energy"])
    dataframe = pacemaker_dataframe(back)
    np.testing.assert_array_equal(dataframe["w_forces"][0], [0.0, 1.0])
    assert list(dataframe["w_energy"]) == [1.0, 0.0]


def test_delta_targets_are_labels_minus_reference(si_frames, reference):
    dataframe = pacemaker_dataframe(si_frames[:3], reference)
    for row, atoms in zip(dataframe.itertuples(), si_frames[:3], strict=True):
        energy, forces, _ = reference.energy_forces_stress(atoms)
        assert row.energy_corrected == pytest.approx(atoms.info["energy"] - energy)
        np.testing.assert_allclose(row.forces, atoms.arrays["forces"] - forces)


def test_loss_weights_map_to_kappa():
    assert kappa_from_loss_weights({"energy": 1, "force": 100, "stress": 10}) == pytest.approx(100 / 101)
    assert kappa_from_loss_weights({"energy": 1, "force": 0}) == 0
    with pytest.raises(ValueError):
        kappa_from_loss_weights({"energy": 0, "force": 0})


def test_basis_knobs_map_to_pacemaker_functions():
    assert basis_functions(4, 3, 8) == {"nradmax_by_orders": [8, 4, 3], "lmax_by_orders": [0, 3, 2]}
    assert basis_functions(2, 3, 5) == {"nradmax_by_orders": [5], "lmax_by_orders": [0]}
    grid = search_grid(
        {"body_order": 3, "polynomial_degree": "auto"},
        {"body_order": [3, 4], "polynomial_degree": [1, 2], "radial_basis_size": [4, 6]},
    )
    assert len(grid) == 4 and all(point["body_order"] == 3 for point in grid)


def test_folds_partition_the_frames():
    folds = fold_indices(11, 3, seed=1)
    assert sorted(i for fold in folds for i in fold) == list(range(11))
    assert {len(fold) for fold in folds} <= {3, 4}


def test_pareto_front_and_knee():
    points = [
        {"name": "cheap", "cost": 1.0, "error": 1.0},
        {"name": "knee", "cost": 2.0, "error": 0.2},
        {"name": "dominated", "cost": 3.0, "error": 0.5},
        {"name": "accurate", "cost": 100.0, "error": 0.15},
    ]
    front = pareto_front(points)
    assert [p["name"] for p in front] == ["cheap", "knee", "accurate"]
    assert knee(front)["name"] == "knee"


def test_underdetermined_elements_have_fewer_environments_than_functions_each():
    # pacemaker counts 142 functions for basis (3, 2, 4) on Al and Mg: 71 per element; 10 labels of a 32-atom
    # Al7Mg cell hold 33 Mg environments (the failure that made this check)
    environments = {"Al": 287, "Mg": 33}
    assert underdetermined_elements(142, environments) == {"Mg": 33}
    assert underdetermined_elements(67, environments) == {"Mg": 33}  # 33.5 functions per element round up
    assert underdetermined_elements(66, environments) == {}


def test_verlet_pair_list_matches_a_fresh_neighbour_list(reference):
    """Small moves reuse the list, large ones rebuild it; both give the fresh-list energy and forces."""
    from aiida_autopipe.core.baseline import PairList

    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)
    pair_list = PairList(reference.cutoff)
    rng = np.random.default_rng(2)
    for scale in (0.0, 0.05, 0.05, 0.4):
        atoms.positions += rng.normal(0, scale, atoms.positions.shape)
        cached = reference.energy_forces_stress(atoms, pair_list)
        fresh = reference.energy_forces_stress(atoms)
        assert cached[0] == pytest.approx(fresh[0], abs=1e-9)
        np.testing.assert_allclose(cached[1], fresh[1], atol=1e-9)


def test_atomic_energies_are_the_energy_least_squares(si_frames):
    """Known per-element constants come back exactly; weight-0 frames do not count."""
    from aiida_autopipe.core.pacemaker_input import fit_atomic_energies

    frames = [bulk("Si", "diamond", a=5.43), bulk("SiC", "zincblende", a=4.36), bulk("C", "diamond", a=3.57)]
    truth = {"C": -150.0, "Si": -107.0}
    energies = [sum(truth[s] for s in a.get_chemical_symbols()) for a in frames] + [1e6]
    frames.append(bulk("Si", "diamond", a=5.43))
    fitted = fit_atomic_energies(frames, energies, weights=[1.0, 1.0, 1.0, 0.0])
    assert fitted == pytest.approx(truth)


def test_shifts_centre_the_total_model_and_plain_targets(si_frames):
    """A constant drift of ACE's energy per atom is removed exactly by the refitted constants; plain targets
    are centred (below -20 eV/atom pacemaker would apply a reference-energy shift of its own)."""
    import pandas as pd

    from aiida_autopipe.core.pacemaker_input import atomic_energy_shifts, error_metrics

    plain = pacemaker_dataframe(si_frames)
    per_atom = plain["energy_corrected"] / plain["ase_atoms"].map(len)
    assert abs(per_atom.mean()) < 1e-9 and per_atom.abs().max() < 1.0
    n_atoms = plain["ase_atoms"].map(len).to_numpy()
    predictions = pd.DataFrame(
        {
            "name": plain["name"],
            "NUMBER_OF_ATOMS": n_atoms,
            "energy_corrected": plain["energy_corrected"],
            "energy_pred": plain["energy_corrected"] + 0.55 * n_atoms,  # ACE drifted by +0.55 eV/atom
            "forces": plain["forces"],
            "forces_pred": plain["forces"],
        }
    )
    shifts = atomic_energy_shifts(predictions, si_frames)
    assert shifts["Si"] == pytest.approx(-0.55)
    assert error_metrics(predictions)["energy_rmse"] == pytest.approx(0.55)
    fixed = error_metrics(predictions, si_frames, shifts=shifts)
    assert fixed["energy_rmse"] < 1e-9 and abs(fixed["energy_mean_error"]) < 1e-9


def test_plain_test_set_takes_the_training_constants(si_frames):
    """A held-out set is centred with the training set's constants, not its own (else its errors would hide
    an offset)."""
    from aiida_autopipe.core.pacemaker_input import composition_energies

    train, test = si_frames[:20], si_frames[20:]
    constants = composition_energies(train)
    dataframe = pacemaker_dataframe(test, atomic_energies=constants)
    expected = [atoms.info["energy"] - constants["Si"] * len(atoms) for atoms in test]
    np.testing.assert_allclose(dataframe["energy_corrected"], expected)


def test_tiny_datasets_hold_out_no_test_frame():
    from aiida_autopipe.core.pacemaker_input import held_out_fraction

    assert held_out_fraction(0.1, 2) == 0.0
    assert held_out_fraction(0.1, 9) == 0.0
    assert held_out_fraction(0.1, 10) == 0.1
    assert held_out_fraction(0.0, 100) == 0.0
