"""The `autopipe-validate` runner with a real delta-learned Si ACE potential (no AiiDA)."""

import json
import shutil

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from ase.io import write

#: Short settings: each section runs, in seconds.
QUICK = {
    "relax": {"fmax": 0.005, "steps": 50},
    "eos": {"points": 7},
    "rdf": {"temperatures": [1200], "steps": 60, "equilibration": 20, "sample_every": 10, "min_atoms": 16},
    "phase_relax": {"steps": 100},
}


@pytest.fixture(scope="module")
def exported_reference(ace_potential, tmp_path_factory):
    """The reference with the per-element constants the training's parser exports (refitted after the fit)."""
    import pandas as pd

    from aiida_autopipe.core.baseline import ReferencePotential
    from aiida_autopipe.core.pacemaker_input import atomic_energy_shifts, read_labelled_frames

    reference = ReferencePotential.from_dict(json.loads(ace_potential["reference"].read_text()))
    predictions = pd.read_pickle(
        ace_potential["potential"].parent / "train_pred.pckl.gzip", compression="gzip"
    )
    shifts = atomic_energy_shifts(predictions, read_labelled_frames(ace_potential["labels"]))
    reference.atomic_energies = {e: v + shifts.get(e, 0.0) for e, v in reference.atomic_energies.items()}
    path = tmp_path_factory.mktemp("exported") / "reference.json"
    path.write_text(json.dumps(reference.to_dict()))
    return path, predictions, shifts


def run_runner(
    workdir, ace_potential, reference_path, structure=None, phases=(), with_dataset=True, **settings
):
    from aiida_autopipe.runners.validate import main

    shutil.copy(ace_potential["potential"], workdir / "potential.yaml")
    shutil.copy(reference_path, workdir / "reference.json")
    config = {"potential": "potential.yaml", "reference": "reference.json", **QUICK, **settings}
    if structure is not None:
        write(workdir / "structure.extxyz", structure)
        config["structure"] = "structure.extxyz"
    if phases:
        write(workdir / "phases.extxyz", list(phases))
        config["phases"] = "phases.extxyz"
    if with_dataset:
        shutil.copy(ace_potential["labels"], workdir / "dataset.extxyz")
        config["dataset"] = "dataset.extxyz"
    (workdir / "input.yaml").write_text(yaml.safe_dump(config))
    code = main([str(workdir / "input.yaml")])
    return code, json.loads((workdir / "results.json").read_text())


def _phase(atoms, name):
    atoms.info["phase"] = name
    return atoms


def test_crystal_report_and_parity_agree_with_pacemakers_own_predictions(
    tmp_path, ace_potential, exported_reference
):
    reference_path, predictions, shifts = exported_reference
    diamond = bulk("Si", "diamond", a=5.43, cubic=True)
    phases = [_phase(diamond.copy(), "diamond"), _phase(bulk("Si", "fcc", a=3.9, cubic=True), "fcc")]
    code, results = run_runner(
        tmp_path,
        ace_potential,
        reference_path,
        structure=diamond,
        phases=phases,
        structure_origin="the input structure",
    )
    assert code == 0 and results["status"] == "completed", results
    report = results["report"]

    assert report["delta_learning"] and report["reference_structure"] == "the input structure"
    eos, elastic = report["eos"], report["elastic"]
    assert eos["bulk_modulus_gpa"] > 0 and len(eos["volumes_per_atom"]) == 7
    # The scan is centred on the model's own minimum, found by relaxing the given crystal first.
    assert eos["min_in_range"] and eos["prerelaxation"]["converged"]
    assert eos["volume_per_atom"] == pytest.approx(
        eos["prerelaxation"]["volume_per_atom_relaxed_angstrom3"], rel=0.01
    )
    assert np.isclose(eos["lattice_constants_angstrom"][0] ** 3 / 8, eos["volume_per_atom"])
    assert np.array(elastic["voigt_matrix_gpa"]).shape == (6, 6) and elastic["cubic"]
    assert set(report["phases"]["phases"]) == {"diamond", "fcc"}
    assert report["phases"]["phases"]["diamond"]["n_labelled_frames"] > 0

    run = report["rdf"]["runs"][0]
    assert run["temperature_K"] == 1200 and run["n_atoms"] == 64 and run["stable"]
    curves = np.load(tmp_path / "rdf.npz")
    assert {"r", "g_T1200", "g_Si_Si_T1200"} <= set(curves.files)

    # The runner's model is the exported reference + ACE: its errors are pacemaker's errors on the same data.
    n_atoms = predictions["NUMBER_OF_ATOMS"].to_numpy(dtype=float)
    energy_error = (
        predictions["energy_pred"] + shifts["Si"] * n_atoms - predictions["energy_corrected"]
    ) / n_atoms
    force_error = np.concatenate(
        [
            np.ravel(np.subtract(p, t))
            for p, t in zip(predictions["forces_pred"], predictions["forces"], strict=True)
        ]
    )
    table = report["parity"]["table"]["all"]
    assert table["energy_meV_per_atom"]["rmse"] == pytest.approx(
        1000 * np.sqrt(np.mean(energy_error**2)), rel=1e-5
    )
    assert table["force_meV_per_angstrom"]["rmse"] == pytest.approx(
        1000 * np.sqrt(np.mean(force_error**2)), rel=1e-5
    )
    assert table["energy_meV_per_atom"]["count"] == len(predictions)
    parity = np.load(tmp_path / "parity.npz")
    assert len(parity["energy_dft"]) == len(predictions) and len(parity["force_dft"]) == len(force_error)


def test_a_cluster_skips_eos_and_elastic_and_says_so(tmp_path, ace_potential, exported_reference):
    cluster = Atoms(
        "Si4", positions=[[0, 0, 0], [2.35, 0, 0], [1.17, 2.03, 0], [1.17, 0.68, 1.92]], cell=[12, 12, 12]
    )
    code, results = run_runner(
        tmp_path,
        ace_potential,
        exported_reference[0],
        structure=cluster,
        phases=[_phase(cluster.copy(), "Si4")],
    )
    report = results["report"]
    assert code == 0 and results["status"] == "completed", results
    assert "not 3D periodic" in report["eos"]["skipped"] and "not 3D periodic" in report["elastic"]["skipped"]
    assert report["rdf"]["runs"][0]["n_atoms"] == 4
    assert report["rdf"]["runs"][0]["normalisation"] == "neighbours per atom per Angstrom"
    assert report["phases"]["phases"]["Si4"]["volume_per_atom_relaxed_angstrom3"] is None
    # The periodic labelled frames match no non-periodic phase: grouped by composition instead.
    assert report["parity"]["group_names"] == ["Si"]


def test_without_a_structure_the_models_lowest_phase_is_the_crystal(
    tmp_path, ace_potential, exported_reference
):
    phases = [_phase(bulk("Si", "diamond", a=5.43, cubic=True), "diamond")]
    code, results = run_runner(
        tmp_path, ace_potential, exported_reference[0], phases=phases, with_dataset=False
    )
    report = results["report"]
    assert code == 0, results
    assert report["reference_structure"] == (
        "phase 'diamond', the model's lowest periodic phase (fallback: no crystal given)"
    )
    assert "bulk_modulus_gpa" in report["eos"] and report["parity"] == {
        "skipped": "no labelled dataset given"
    }


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 300}, "unknown keys"),
        ({"rdf": {"temperatures": [-5]}}, "rdf.temperatures"),
        ({"eos": {"npoints": 5}}, "eos: unknown keys"),
        ({"eos": {"max_linear_strain": 0}}, "eos.max_linear_strain"),
        ({"elastic": {"strain": 0.2}}, "elastic.strain"),
        ({"dataset": "missing.extxyz"}, "dataset: file missing.extxyz not found"),
        ({"structure_origin": "the input structure"}, "structure_origin: says why a structure was chosen"),
    ],
)
def test_bad_input_is_rejected_with_the_key_named(
    tmp_path, ace_potential, exported_reference, settings, message
):
    code, results = run_runner(tmp_path, ace_potential, exported_reference[0], with_dataset=False, **settings)
    assert code == 2 and results["status"] == "invalid_input"
    assert message in results["message"]


def test_report_renders_as_markdown_tables(tmp_path, ace_potential, exported_reference):
    from aiida_autopipe.core.validation import report_markdown

    phases = [_phase(bulk("Si", "diamond", a=5.43, cubic=True), "diamond")]
    code, results = run_runner(tmp_path, ace_potential, exported_reference[0], phases=phases)
    text = report_markdown(results["report"])
    table = results["report"]["parity"]["table"]["all"]
    assert code == 0 and "| diamond | Si |" in text
    assert f"| all | 26 | {table['energy_meV_per_atom']['rmse']:.1f} |" in text
    assert f"{results['report']['eos']['bulk_modulus_gpa']:.1f}" in text
