"""The AiiDA-free pw.x heuristics of the labeling module."""

import pathlib

import pytest

from aiida_autopipe.core import dft_parameters as dp

PSEUDO_DIR = pathlib.Path("/usr/share/espresso/pseudo")


def test_conv_thr_scales_with_atoms():
    assert dp.conv_thr(8, 2e-10) == pytest.approx(1.6e-9)
    with pytest.raises(ValueError):
        dp.conv_thr(0, 2e-10)


def test_scf_parameters_always_smear_and_ask_for_forces_and_stress():
    parameters = dp.scf_parameters(n_atoms=4, ecutwfc=30, ecutrho=240, degauss=0.02, conv_thr_per_atom=2e-10)
    assert parameters["CONTROL"] == {"calculation": "scf", "tprnfor": True, "tstress": True}
    assert parameters["SYSTEM"]["occupations"] == "smearing"
    assert parameters["SYSTEM"]["smearing"] == "mv"
    assert parameters["ELECTRONS"]["conv_thr"] == pytest.approx(8e-10)
    assert parameters["ELECTRONS"]["mixing_beta"] == 0.7


def test_mixing_beta_ladder_stops_at_floor():
    ladder = [0.7]
    while (value := dp.next_mixing_beta(ladder[-1])) is not None:
        ladder.append(value)
    assert ladder == [0.7, 0.5, 0.3]
    assert dp.next_mixing_beta(0.4) == 0.3
    assert dp.next_mixing_beta(0.2) is None


def test_raised_degauss():
    assert dp.raised_degauss(0.02) == pytest.approx(0.05)


def test_starting_magnetization_only_for_magnetic_elements_and_clipped():
    assert dp.starting_magnetization("Si", 4.0) == 0.0
    assert dp.starting_magnetization("Fe", 8.0) == pytest.approx(3.0 / 8.0)
    assert dp.starting_magnetization("Gd", 4.0) == 1.0


def test_antiferromagnetic_layer_split_of_bcc_and_species_split():
    assert dp.antiferromagnetic(["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]).signs == (1, -1)
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    assert sum(dp.antiferromagnetic(["Ni"] * 4, fcc).signs) == 0
    # two species on one plane: no layer split exists, so the species are split
    assert dp.antiferromagnetic(["Fe", "Co"], [[0, 0, 0], [0.5, 0.5, 0]]).signs in {(1, -1), (-1, 1)}
    assert dp.antiferromagnetic(["Fe", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]]) is None


def test_kind_names_split_only_mixed_species():
    configuration = dp.SpinConfiguration("antiferromagnetic", (1, -1, 0))
    assert configuration.kind_names(["Fe", "Fe", "O"]) == ["Fe1", "Fe2", "O"]
    assert configuration.kind_signs(["Fe", "Fe", "O"]) == {"Fe1": 1, "Fe2": -1, "O": 0}
    assert dp.ferromagnetic(["Fe", "O"]).kind_names(["Fe", "O"]) == ["Fe", "O"]


def test_random_arrangement_is_new_and_reproducible():
    symbols = ["Fe"] * 4
    known = [dp.ferromagnetic(symbols), dp.SpinConfiguration("antiferromagnetic", (1, -1, 1, -1))]
    first = dp.random_disordered(symbols, seed=3, exclude=known)
    assert first == dp.random_disordered(symbols, seed=3, exclude=known)
    assert not any(first.equivalent(other) for other in known)
    # two sites have only ferro- and antiferromagnetic arrangements
    two = ["Fe", "Fe"]
    assert (
        dp.random_disordered(two, 0, exclude=[dp.ferromagnetic(two), dp.SpinConfiguration("a", (1, -1))])
        is None
    )


def test_fallbacks_and_collapse():
    fallbacks = dp.fallback_configurations(["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert [configuration.name for configuration in fallbacks] == ["antiferromagnetic"]
    assert dp.moment_collapsed(0.05, ["Fe", "Si"])
    assert not dp.moment_collapsed(2.2, ["Fe", "Si"])
    assert dp.lowest_energy_state({"ferromagnetic": -10.0, "antiferromagnetic": -10.5, "random": None}) == (
        "antiferromagnetic"
    )
    assert dp.lowest_energy_state({"ferromagnetic": None}) is None


def test_spin_orbit_parameters():
    magnetic = dp.spin_orbit_parameters({"Fe": 1}, {"Fe": "Fe"}, {"Fe": 8.0})
    assert magnetic["noncolin"] and magnetic["lspinorb"]
    assert magnetic["starting_magnetization"] == {"Fe": pytest.approx(0.375)}
    assert dp.spin_orbit_parameters({"Si": 0}, {"Si": "Si"}, {"Si": 4.0}) == {
        "noncolin": True,
        "lspinorb": True,
    }


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Si.rel-pbe-rrkj.UPF", True),  # UPF v1
        ("Fe.rel-pbe-spn-rrkjus_psl.0.2.1.UPF", True),  # UPF v2
        ("Si.pbe-rrkj.UPF", False),
        ("Fe.pbe-nd-rrkjus.UPF", False),
    ],
)
def test_is_fully_relativistic_on_debian_files(filename, expected):
    assert dp.is_fully_relativistic((PSEUDO_DIR / filename).read_text(errors="replace")) is expected


def test_stress_conversion_flips_sign_to_ase_convention():
    converted = dp.stress_gpa_to_ase([[160.21766208, 0, 0], [0, 0, 0], [0, 0, -80.10883104]])
    assert converted[0][0] == pytest.approx(-1.0)
    assert converted[2][2] == pytest.approx(0.5)
