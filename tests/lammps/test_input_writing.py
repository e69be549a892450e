"""The LAMMPS OTF input and its outputs, without LAMMPS: script, potential lines, trace and dump reading."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_autopipe.core.baseline import ReferencePotential
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.workflows.lammps_md import (
    extrapolating_potential,
    lammps_data,
    md_loop_time,
    otf_results,
    otf_script,
    read_gamma_frame,
    read_gamma_trace,
    structure_elements,
    validated_parameters,
)

REFERENCE = ReferencePotential(
    elements=["Fe", "Pt"],
    lj={"Fe-Fe": {"epsilon": 0.1, "sigma": 2.2}, "Fe-Pt": {"epsilon": 0.2, "sigma": 2.4}},
    lj_cutoff=5.0,
    zbl_inner=1.0,
    zbl_outer=1.8,
    atomic_energies={"Fe": -3.0, "Pt": -5.0},
)

DUMP = """ITEM: TIMESTEP
20
ITEM: NUMBER OF ATOMS
2
ITEM: BOX BOUNDS pp pp pp
0.0 5.0
0.0 5.0
0.0 5.0
ITEM: ATOMS id element x y z f_pace_gamma
2 Pt 2.5 2.5 2.5 7.5
1 Fe 0.0 0.0 0.0 0.5
"""


def test_defaults_follow_the_ase_runner_and_bad_settings_name_the_field():
    from aiida_autopipe.runners.otf_md import DEFAULTS as RUNNER_DEFAULTS

    settings = validated_parameters({"steps": 30, "gamma_every": 10})
    assert settings["steps"] == 30 and settings["threshold"] == RUNNER_DEFAULTS["threshold"]
    assert {key: settings[key] for key in ("temperature", "timestep", "friction", "seed")} == {
        key: RUNNER_DEFAULTS[key] for key in ("temperature", "timestep", "friction", "seed")
    }
    with pytest.raises(InputError, match="unknown keys"):
        validated_parameters({"stepz": 3})
    with pytest.raises(InputError, match=r"lammps_md\.parameters\.steps"):
        validated_parameters({"steps": 25, "gamma_every": 10})
    with pytest.raises(InputError, match="must be > 0"):
        validated_parameters({"temperature": 0})


def test_reference_plus_ace_becomes_extrapolating_and_keeps_the_reference_lines():
    plain = REFERENCE.lammps_snippet("potential.yaml", ["Fe", "Pt"])
    lines = extrapolating_potential(["Fe", "Pt"], REFERENCE, "potential.yaml", "potential.asi").splitlines()
    assert lines[1] == "pair_style hybrid/overlay pace/extrapolation lj/cut 5 zbl 1 1.8"
    assert lines[2] == "pair_coeff * * pace/extrapolation potential.yaml potential.asi Fe Pt"
    # Every LJ, ZBL, shift and e0 line is the reference's own.
    assert lines[3:] == plain.splitlines()[3:]
    assert "pair_coeff 1 2 lj/cut 0.2 2.4" in lines and "pair_coeff 2 2 zbl 78.0 78.0" in lines
    assert not any(line.startswith("pair_coeff 2 2 lj/cut") for line in lines)  # no Pt-Pt LJ given


def test_plain_ace_becomes_extrapolating():
    lines = extrapolating_potential(["Si"], None, "potential.yaml", "potential.asi").splitlines()
    assert "pair_style pace/extrapolation" in lines
    assert "pair_coeff * * potential.yaml potential.asi Si" in lines


def test_script_checks_step_zero_then_every_n_steps_and_halts_softly():
    settings = validated_parameters(
        {"temperature": 1200, "steps": 40, "gamma_every": 4, "threshold": 3.5, "friction": 0.02}
    )
    script = otf_script(["Si"], [28.0855], settings, None).splitlines()
    assert "mass 1 28.085500" in script
    assert "fix pace_gamma all pair 4 pace/extrapolation gamma 1" in script
    assert "compute max_pace_gamma all reduce max f_pace_gamma" in script
    assert "timestep 0.001" in script
    assert "fix thermostat all langevin 1200 1200 0.05 1 zero yes" in script  # 1 / (0.02 / fs) = 50 fs
    assert script.index("run 0") < script.index('if "${max_gamma} > 3.5" then "variable md_steps equal 0"')
    assert "fix halt all halt 4 v_max_gamma > 3.5 error soft" in script
    assert script.index("fix halt all halt 4 v_max_gamma > 3.5 error soft") < script.index("run ${md_steps}")
    assert (
        script[-1]
        == "write_dump all custom final.dump id element x y z f_pace_gamma modify element Si sort id"
    )


def test_data_file_types_follow_first_appearance():
    atoms = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))
    elements = structure_elements(atoms)
    assert elements == ["Na", "Cl"]
    text = lammps_data(atoms, elements)
    assert "4 atoms" in text and "2 atom types" in text


def test_trace_keeps_each_step_once_and_the_dump_gives_gamma_by_atom_id():
    steps, max_gamma = read_gamma_trace("# step max_gamma\n0 1.5\n0 1.5\n10 2.5\n20 7.5\n")
    assert steps.tolist() == [0, 10, 20] and max_gamma.tolist() == [1.5, 2.5, 7.5]
    frame, step = read_gamma_frame(DUMP)
    assert step == 20 and frame.get_chemical_symbols() == ["Fe", "Pt"]
    assert np.allclose(frame.arrays["gamma"], [0.5, 7.5])
    assert np.allclose(frame.positions[1], [2.5, 2.5, 2.5]) and np.allclose(frame.cell.lengths(), 5.0)


def test_results_say_halted_only_above_the_threshold():
    log = "Loop time of 0.5 on 1 procs for 20 steps with 2 atoms\n"
    trace = "0 1.5\n10 2.5\n20 7.5\n"
    halted, _ = otf_results(trace, DUMP, log, validated_parameters({"steps": 20, "threshold": 5.0}))
    assert halted["halted"] and halted["status"] == "halted" and halted["halt_step"] == 20
    assert halted["max_gamma"] == 7.5 and halted["gamma_trace_steps"] == [0, 10, 20]
    assert halted["md_us_per_atom_step"] == pytest.approx(1e6 * 0.5 / 20 / 2)
    calm, _ = otf_results(trace, DUMP, log, validated_parameters({"steps": 20, "threshold": 8.0}))
    assert not calm["halted"] and calm["status"] == "completed" and calm["halt_step"] is None
    assert md_loop_time("no run") is None
    with pytest.raises(ValueError, match="dumped frame is step 20"):
        otf_results("0 1.5\n10 2.5\n", DUMP, log, validated_parameters({"steps": 20}))
