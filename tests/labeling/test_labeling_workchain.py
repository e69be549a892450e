"""LabelingWorkChain on real pw.x runs: labels match pw.x's own output; failures stay out of the labels."""

import re

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from labeling_helpers import BOHR, RY_PER_EV, bcc_iron, read_pw_stdout, silicon

from aiida_autopipe.calcfunctions.cluster_attributes import TOT_CHARGE_ATTRIBUTE
from aiida_autopipe.core.dft_parameters import GPA_PER_EV_PER_ANGSTROM3
from aiida_autopipe.workflows.labeling import LabelingWorkChain

pytestmark = pytest.mark.pw


def run_labeling(pw_code, structures, dft_compute):
    """Run LabelingWorkChain to the end and return its node."""
    _, node = run_get_node(
        LabelingWorkChain, structures=structures, dft_compute=orm.Dict(dft_compute), pw_code=pw_code
    )
    return node


def test_silicon_labels_match_pw_output(pw_code, dft_compute):
    displacement = np.zeros((8, 3))
    displacement[0] = [0.08, -0.05, 0.03]
    structures = {"si2": silicon(), "si8": silicon(n_cells=2, displacement=displacement)}
    node = run_labeling(pw_code, structures, dft_compute)

    assert node.is_finished_ok, node.exit_status
    assert node.outputs.number_of_failures.value == 0
    for key in structures:
        label = node.outputs.labels[key]
        calculation = orm.load_node(label.base.attributes.get("pw_calculation"))
        assert label.creator.inputs.output_parameters.creator.uuid == calculation.uuid
        reference = read_pw_stdout(calculation, len(structures[key].sites))
        # aiida-quantumespresso converts from the XML in Hartree with its own constants: 1e-7 relative apart.
        assert label.get_array("energy")[0] == pytest.approx(reference["energy"], rel=2e-7)
        np.testing.assert_allclose(label.get_array("forces")[0], reference["forces"], atol=1e-5)
        stress_ase = -reference["stress_ry_bohr3"] / RY_PER_EV / BOHR**3
        np.testing.assert_allclose(label.get_array("stress")[0], stress_ase, atol=1e-6)
        assert label.base.attributes.get("magnetic_state") == "nonmagnetic"

    # one k-point calcfunction for the batch, whose meshes the pw.x runs used
    (meshes,) = [called for called in node.called if called.process_label == "kpoint_meshes"]
    for key in structures:
        calculation = orm.load_node(node.outputs.labels[key].base.attributes.get("pw_calculation"))
        assert calculation.inputs.kpoints.creator.uuid == meshes.uuid

    forces = node.outputs.labels["si8"].get_array("forces")[0]
    assert np.abs(forces).max() > 0.1
    assert np.abs(forces.sum(axis=0)).max() < 1e-3
    assert np.abs(node.outputs.labels["si8"].get_array("stress")[0]).max() * GPA_PER_EV_PER_ANGSTROM3 > 0.1


def test_mixed_batch_keeps_going_when_one_structure_is_unphysical(pw_code, dft_compute):
    """Two Fe atoms 0.42 A apart are screened out before any pw.x run (pw.x can converge such a cell to an
    absurd energy): the structure is reported and counted, never labelled, while Si is labelled."""
    from aiida.orm import StructureData
    from ase import Atoms

    overlapping = Atoms("Fe2", cell=[2.83] * 3, scaled_positions=[[0, 0, 0], [0.15, 0, 0]], pbc=True)
    structures = {"si2": silicon(), "fe_overlap": StructureData(ase=overlapping)}
    node = run_labeling(pw_code, structures, {**dft_compute, "magnetism": "none"})

    assert node.is_finished_ok, node.exit_status
    assert set(node.outputs.labels) == {"si2"}
    assert node.outputs.failed_structures.get_list() == ["fe_overlap"]
    assert node.outputs.number_of_failures.value == 1
    summary = node.outputs.summary.get_dict()
    assert summary["fe_overlap"]["status"].startswith("rejected: too_close")
    assert summary["fe_overlap"]["states"] == {}
    assert all(
        "Fe" not in child.inputs.pw.structure.get_formula() for child in node.called if "pw" in child.inputs
    )


@pytest.mark.slow
def test_iron_ferromagnetic_label_and_collapsed_start_fallback(pw_code, dft_compute):
    """bcc Fe keeps its ferromagnetic start; B2 FeSi (doubled along z) loses its moment, so the
    antiferromagnetic layer arrangement is tried and the lower-energy state is kept and recorded."""
    from aiida.orm import StructureData
    from ase import Atoms

    fesi = Atoms(
        "Fe2Si2",
        cell=[2.78, 2.78, 5.56],
        scaled_positions=[[0, 0, 0], [0, 0, 0.5], [0.5, 0.5, 0.25], [0.5, 0.5, 0.75]],
        pbc=True,
    )
    structures = {"fe_bcc": bcc_iron(), "fesi_b2": StructureData(ase=fesi)}
    node = run_labeling(
        pw_code, structures, {**dft_compute, "ecutwfc": 25.0, "ecutrho": 200.0, "kpoints_density": 0.6}
    )

    assert node.is_finished_ok, node.exit_status
    summary = node.outputs.summary.get_dict()

    iron = node.outputs.labels["fe_bcc"]
    assert iron.base.attributes.get("magnetic_state") == "ferromagnetic"
    assert list(summary["fe_bcc"]["states"]) == ["ferromagnetic"]
    reference = read_pw_stdout(orm.load_node(iron.base.attributes.get("pw_calculation")), 2)
    assert iron.get_array("total_magnetization")[0] == pytest.approx(
        reference["total_magnetization"], abs=0.01
    )
    assert iron.get_array("total_magnetization")[0] > 3.0
    assert iron.get_array("energy")[0] == pytest.approx(reference["energy"], rel=2e-7)

    states = summary["fesi_b2"]["states"]
    assert states["ferromagnetic"]["collapsed"] is True
    assert states["antiferromagnetic"]["signs"] == [1, -1, 0, 0]
    energies = {name: state["energy"] for name, state in states.items()}
    chosen = min(energies, key=energies.get)
    assert summary["fesi_b2"]["magnetic_state"] == chosen
    label = node.outputs.labels["fesi_b2"]
    assert label.base.attributes.get("magnetic_state") == chosen
    assert label.get_array("energy")[0] == pytest.approx(energies[chosen])
    assert abs(label.get_array("absolute_magnetization")[0]) < 0.4


def test_spin_orbit_second_pass(pw_code, fr_pseudo_family, dft_compute):
    """With soc_enabled the scalar-relativistic pass is followed by a noncolin + lspinorb pass, which gives
    the label."""
    config = {**dft_compute, "pseudo_family": fr_pseudo_family.label, "soc_enabled": True}
    node = run_labeling(pw_code, {"si2": silicon()}, config)

    assert node.is_finished_ok, node.exit_status
    label = node.outputs.labels["si2"]
    assert label.base.attributes.get("stage") == "spin_orbit"
    calculation = orm.load_node(label.base.attributes.get("pw_calculation"))
    system = calculation.inputs.parameters["SYSTEM"]
    assert system["noncolin"] is True and system["lspinorb"] is True
    summary = node.outputs.summary.get_dict()["si2"]
    scalar = orm.load_node(summary["states"]["nonmagnetic"]["pk"])
    assert "lspinorb" not in scalar.inputs.pw.parameters["SYSTEM"]
    reference = read_pw_stdout(calculation, 2)
    assert label.get_array("energy")[0] == pytest.approx(reference["energy"], rel=2e-7)


def test_spin_orbit_without_fully_relativistic_pseudos_fails_clearly(pw_code, dft_compute):
    node = run_labeling(pw_code, {"si2": silicon()}, {**dft_compute, "soc_enabled": True})

    assert node.exit_status == LabelingWorkChain.exit_codes.ERROR_NO_FULLY_RELATIVISTIC_PSEUDOS.status
    assert "Si" in node.exit_message and "fully relativistic" in node.exit_message
    assert not node.called


def test_charged_cell_from_the_embedding_reaches_pw_as_tot_charge(pw_code, dft_compute):
    """A cell carrying Module E's `autopipe_tot_charge` (+1: one electron removed, over a uniform background)
    is labelled with SYSTEM tot_charge: pw.x counts 7 valence electrons for Si2 instead of 8, the label
    records the charge, and a neutral structure in the same batch gets no tot_charge."""
    charged = silicon()
    charged.base.attributes.set(TOT_CHARGE_ATTRIBUTE, 1.0)
    node = run_labeling(pw_code, {"si2_plus": charged, "si2": silicon()}, dft_compute)

    assert node.is_finished_ok, node.exit_status
    label = node.outputs.labels["si2_plus"]
    assert label.base.attributes.get("tot_charge") == 1.0
    calculation = orm.load_node(label.base.attributes.get("pw_calculation"))
    assert calculation.inputs.parameters["SYSTEM"]["tot_charge"] == 1.0
    reference = read_pw_stdout(calculation, 2)
    assert re.search(r"number of electrons\s+=\s+7\.00", reference["text"])
    assert label.get_array("energy")[0] == pytest.approx(reference["energy"], rel=2e-7)
    assert node.outputs.summary["si2_plus"]["tot_charge"] == 1.0

    neutral = orm.load_node(node.outputs.labels["si2"].base.attributes.get("pw_calculation"))
    assert "tot_charge" not in neutral.inputs.parameters["SYSTEM"]
    assert node.outputs.labels["si2"].base.attributes.get("tot_charge") == 0.0
