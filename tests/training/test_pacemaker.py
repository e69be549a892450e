"""PacemakerCalculation on real pw.x Si labels: outputs, errors, delta learning, masking, gamma."""

import io

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from training_helpers import TINY

#: A pair basis with square-root embedding (EAM-like): cheap, and converged within 40 BFGS iterations, so
#: its energies do not depend on where BFGS stopped (those of the TINY fit, linear embedding, still swing).
ENERGY_FIT = {
    "body_order": 2,
    "polynomial_degree": 0,
    "radial_basis_size": 6,
    "densities": 2,
    "max_iterations": 40,
    "test_fraction": 0.0,
}


def fit(codes, dataset, reference=None, **overrides):
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calculations.pacemaker import PacemakerCalculation

    inputs = {**codes, "dataset": dataset, "parameters": orm.Dict({**TINY, **overrides})}
    if reference is not None:
        inputs["reference"] = orm.Dict(reference.to_dict())
    results, node = run_get_node(PacemakerCalculation, **inputs)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results


@pytest.fixture(scope="module")
def reference(si_frames):
    from aiida_autopipe.core.baseline import fit_reference

    return fit_reference(si_frames, r_cut=TINY["r_cut"])


@pytest.fixture(scope="module")
def delta_fit(pacemaker_codes, si_dataset, reference):
    return fit(pacemaker_codes, si_dataset, reference)


@pytest.fixture(scope="module")
def energy_fit(pacemaker_codes, si_dataset, reference):
    """A pair basis with square-root embedding fitted with E:F = 1:100 until the loss settles."""
    codes = {key: pacemaker_codes[key] for key in ("code", "yaml2yace_code")}
    return fit(codes, si_dataset, reference, **ENERGY_FIT)


@pytest.fixture(scope="module")
def plain_fit(pacemaker_codes, si_dataset):
    codes = {key: pacemaker_codes[key] for key in ("code", "yaml2yace_code")}
    return fit(codes, si_dataset)


def model(results, directory, reference=None, with_active_set=True):
    """The exported ASE model of a fit's outputs (files written to ``directory``)."""
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator

    directory.mkdir(exist_ok=True)
    links = ("potential_yaml", "active_set") if with_active_set else ("potential_yaml",)
    paths = {}
    for link in links:
        paths[link] = directory / results[link].filename
        paths[link].write_bytes(results[link].get_content(mode="rb"))
    return ReferencePlusACECalculator(str(paths["potential_yaml"]), reference, paths.get("active_set"))


def test_errors_and_history_parsed(delta_fit):
    parameters = delta_fit["output_parameters"].get_dict()
    for split in ("train", "test"):
        errors = parameters[split]
        for key in ("energy_rmse", "energy_mae", "forces_rmse", "forces_mae", "stress_rmse", "stress_mae"):
            assert np.isfinite(errors[key]) and errors[key] > 0, (split, key)
        assert errors["energy_mae"] <= errors["energy_rmse"]
    assert parameters["train"]["n_structures"] + parameters["test"]["n_structures"] == 26
    # Forces must be learnt: below the spread of the labels (about 1 eV/A on these rattled cells).
    assert parameters["train"]["forces_rmse"] < 1.0
    assert 0 < parameters["evaluation_cost_us_per_atom_step"] < 1e4
    history = delta_fit["loss_history"].get_array("train")
    assert history.shape[0] >= 2 and history[-1, 1] < history[0, 1]
    assert delta_fit["potential_yace"].get_content().lstrip().startswith("elements")
    snippet = delta_fit["lammps_snippet"].get_content()
    assert "pair_style hybrid/overlay pace lj/cut 5 zbl" in snippet
    assert "pair_coeff 1 1 zbl 14.0 14.0" in snippet


def test_delta_learning_keeps_dimer_repulsive(delta_fit, plain_fit, reference, tmp_path):
    """At 1.2 A (far below any distance in the data) only the delta model stays strongly repulsive."""
    delta = model(delta_fit, tmp_path / "delta", reference, with_active_set=False)
    plain = model(plain_fit, tmp_path / "plain", None, with_active_set=False)

    def dimer_energy(calculator, distance):
        dimer = Atoms("Si2", positions=[[0, 0, 0], [distance, 0, 0]], cell=[20, 20, 20], pbc=False)
        dimer.calc = calculator
        return dimer.get_potential_energy(), dimer.get_forces()[1, 0]

    e_near_delta, f_near_delta = dimer_energy(delta, 1.2)
    e_bond_delta, _ = dimer_energy(delta, 2.35)
    e_near_plain, _ = dimer_energy(plain, 1.2)
    e_bond_plain, _ = dimer_energy(plain, 2.35)
    assert e_near_delta - e_bond_delta > 50.0  # eV: a wall
    assert f_near_delta > 50.0  # eV/A, pushes the second atom away
    assert e_near_plain - e_bond_plain < 0.2 * (e_near_delta - e_bond_delta)


def test_gamma_low_on_training_data_high_far_away(delta_fit, reference, si_frames, tmp_path):
    calculator = model(delta_fit, tmp_path, reference)
    training_gamma = []
    for atoms in si_frames:
        atoms = atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
        training_gamma.append(calculator.results["gamma"].max())
    far = bulk("Si", "fcc", a=3.2)  # close-packed and compressed: nothing like the diamond data
    far.calc = calculator
    far.get_potential_energy()
    assert max(training_gamma) < 1.5
    assert np.median(training_gamma) <= 1.0 + 1e-6
    assert calculator.results["gamma"].max() > 5.0


def test_masked_atoms_carry_zero_force_weight(pacemaker_codes, si_frames, reference, tmp_path):
    """The dataset pickle written for pacemaker gives masked atoms w_forces = 0, the others keep weight."""
    import pandas as pd
    from aiida import orm
    from aiida.common.folders import Folder
    from aiida.engine.utils import instantiate_process
    from aiida.manage import get_manager

    from aiida_autopipe.calculations.pacemaker import PacemakerCalculation
    from aiida_autopipe.core.pacemaker_input import write_labelled_frames

    frames = [atoms.copy() for atoms in si_frames[16:18]]
    mask = np.ones(len(frames[0]))
    mask[:3] = 0.0
    frames[0].arrays["force_weight"] = mask
    handle = io.StringIO()
    write_labelled_frames(frames, handle)
    dataset = orm.SinglefileData(io.BytesIO(handle.getvalue().encode()), filename="masked.extxyz")
    inputs = {
        **pacemaker_codes,
        "dataset": dataset,
        "parameters": orm.Dict(TINY),
        "reference": orm.Dict(reference.to_dict()),
    }
    process = instantiate_process(get_manager().get_runner(), PacemakerCalculation, **inputs)
    folder = Folder(str(tmp_path))
    process.prepare_for_submission(folder)
    dataframe = pd.read_pickle(tmp_path / "dataset.pckl.gzip", compression="gzip")
    np.testing.assert_array_equal(dataframe["w_forces"][0], mask)
    np.testing.assert_array_equal(dataframe["w_forces"][1], np.ones(len(frames[1])))
    config = yaml.safe_load((tmp_path / "input.yaml").read_text())
    assert config["backend"]["evaluator"] == "pyace"
    assert config["fit"]["loss"]["kappa"] == pytest.approx(100 / 101)


def per_atom_energy_errors(calculator, frames) -> np.ndarray:
    """Model minus DFT energy per atom (eV/atom) on labelled frames."""
    errors = []
    for atoms in frames:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append((copy.get_potential_energy() - atoms.info["energy"]) / len(atoms))
    return np.array(errors)


def test_total_energy_is_on_the_dft_scale(energy_fit, si_frames, tmp_path):
    """reference + ACE reproduces the pw.x energies per atom: no offset, scatter well under the data's spread.

    Before the per-element energies were refitted after the fit, ACE's energy drifted while BFGS fitted
    the forces (ACE has no constant term and the energy weight is 1/101): +0.23 eV/atom on average for this
    fit (RMSE 259 meV/atom), +0.55 eV/atom for the 3-body benchmark fit, against a spread of 208 meV/atom
    in the labels. With the refit this fit gives about 112 meV/atom and no mean error.
    """
    from aiida_autopipe.core.baseline import ReferencePotential

    exported = ReferencePotential.from_dict(energy_fit["reference"].get_dict())
    errors = per_atom_energy_errors(model(energy_fit, tmp_path, exported, with_active_set=False), si_frames)
    spread = np.std([atoms.info["energy"] / len(atoms) for atoms in si_frames])
    rmse = np.sqrt(np.mean(errors**2))
    assert abs(errors.mean()) < 0.05 * spread  # 10 meV/atom
    assert rmse < 0.6 * spread
    train = energy_fit["output_parameters"]["train"]
    assert train["energy_rmse"] == pytest.approx(rmse, rel=1e-6)  # parsed errors are the exported model's
    assert train["energy_mean_error"] == pytest.approx(errors.mean(), abs=1e-6)
    assert energy_fit["output_parameters"]["atomic_energies"] == exported.atomic_energies


def test_plain_model_energies_on_the_dft_scale(plain_fit, si_frames, tmp_path):
    """Plain ACE plus its fitted per-element energies lands on the pw.x scale (-106.8 eV/atom).

    pacemaker subtracts a reference energy of its own from labels below -20 eV/atom and no exported model
    adds it back: the plain model was 107 eV/atom off.
    """
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator

    path = tmp_path / "plain.yaml"
    path.write_bytes(plain_fit["potential_yaml"].get_content(mode="rb"))
    calculator = ReferencePlusACECalculator(
        str(path), atomic_energies=plain_fit["output_parameters"]["atomic_energies"]
    )
    errors = per_atom_energy_errors(calculator, si_frames)
    assert abs(errors.mean()) < np.std([atoms.info["energy"] / len(atoms) for atoms in si_frames])
