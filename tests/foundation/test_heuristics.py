"""One test per config heuristic: each checks the physics its docstring claims."""

import pytest

from aiida_autopipe.core.config import heuristics
from aiida_autopipe.core.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FePt", {"Fe": 0.5, "Pt": 0.5}),
        ("Fe0.25Pt0.75", {"Fe": 0.25, "Pt": 0.75}),
        ("Al2O3", {"Al": 0.4, "O": 0.6}),
    ],
)
def test_parse_composition_gives_atomic_fractions(text, expected):
    assert heuristics.parse_composition(text) == pytest.approx(expected)


def test_parse_composition_accepts_a_mapping_of_amounts():
    assert heuristics.parse_composition({"Cu": 3, "Au": 1}) == pytest.approx({"Cu": 0.75, "Au": 0.25})


@pytest.mark.parametrize("text", ["Fe-Pt", "fept", "Xx2", "", "Fe(Pt"])
def test_parse_composition_rejects_nonsense(text):
    with pytest.raises(InputError, match=r"system\.composition"):
        heuristics.parse_composition(text)


def test_melting_point_guess_is_rule_of_mixtures_for_alloys():
    # Fe 1811 K, Pt 2041.4 K: FePt's real solidus is about 1870 K.
    assert heuristics.melting_point_guess({"Fe": 0.5, "Pt": 0.5}, "alloy") == pytest.approx(1926.2, abs=1)


def test_melting_point_guess_for_ionic_compounds_is_not_the_elements_mean():
    # NaCl melts at 1074 K; the elemental mean (271 K) would be absurd.
    assert heuristics.melting_point_guess({"Na": 0.5, "Cl": 0.5}, "ionic") >= 1000


def test_temperature_steps_are_at_most_200_kelvin_apart():
    assert heuristics.temperature_steps([300, 1000]) == [300.0, 475.0, 650.0, 825.0, 1000.0]
    assert heuristics.temperature_steps([300, 400]) == [300.0, 400.0]
    assert heuristics.temperature_steps([500]) == [500.0]


def test_magnetism_ferromagnetic_only_with_a_magnetic_element():
    assert heuristics.magnetism(["Fe", "Pt"]) == "ferromagnetic"
    assert heuristics.magnetism(["Cu", "Au"]) == "none"
    assert heuristics.magnetism(["Si"]) == "none"


def test_smearing_is_cold_smearing():
    assert heuristics.smearing("covalent") == ("mv", 0.02)


def test_r_cut_reaches_the_third_neighbour_shell():
    # Si diamond: third shell at 4.50 A; Cu fcc: third shell at 4.43 A.
    assert 4.5 <= heuristics.r_cut(["Si"]) <= 7.0
    assert heuristics.r_cut(["Si"]) > 4.50
    assert heuristics.r_cut(["Fe", "Pt"]) >= heuristics.r_cut(["Si"])


def test_launch_command_adds_allow_run_as_root_only_for_root():
    assert heuristics.launch_command("pw.x", 4, is_root=True) == [
        "mpirun",
        "--allow-run-as-root",
        "-np",
        "4",
        "pw.x",
    ]
    assert heuristics.launch_command("pw.x", 4, is_root=False) == ["mpirun", "-np", "4", "pw.x"]
    assert heuristics.launch_command("pw.x", 1, is_root=True) == ["pw.x"]


def test_mpi_ranks_and_concurrency_fill_the_cores_without_oversubscription():
    assert heuristics.mpi_ranks(8) == 8
    assert heuristics.max_concurrent_labels(8, 8) == 1
    assert heuristics.max_concurrent_labels(8, 2) == 4
    assert heuristics.max_concurrent_labels(1, 4) == 1


def test_timestep_halves_with_hydrogen():
    assert heuristics.timestep_fs(["C", "H"]) == 0.5
    assert heuristics.timestep_fs(["Si"]) == 1.0


def test_initial_label_budget_grows_with_elements_and_is_capped():
    assert heuristics.initial_label_budget(1) == 40
    assert heuristics.initial_label_budget(10) == 200


def test_surrogate_md_steps_cover_a_picosecond():
    assert heuristics.surrogate_md_steps("alloy") * heuristics.timestep_fs(["Fe"]) >= 1000


def test_liquid_seeds_only_when_the_range_reaches_the_melt():
    silicon_melts = 1687.0
    assert not heuristics.liquid_seeds([300.0, 1000.0], silicon_melts)  # the solid well below melting
    assert heuristics.liquid_seeds([300.0, 1500.0], silicon_melts)  # within the guess's uncertainty
    for melting in (933.5, 1230.0, 1687.0, 3695.0):  # the default range's top, 80% of the guess, rounded
        assert heuristics.liquid_seeds([300.0, round(0.8 * melting, -1)], melting)
