"""The OTF MD runner with a real delta-learned ACE potential: halts outside the training set, not inside."""

import json
import shutil

import numpy as np
import pytest
import yaml
from ase.io import read, write
from otf_helpers import si_diamond


def run_runner(tmp_path, ace_potential, atoms, **settings):
    from aiida_autopipe.runners.otf_md import main

    for key in ("potential", "active_set", "reference"):
        shutil.copy(ace_potential[key], tmp_path / ace_potential[key].name)
    write(tmp_path / "structure.extxyz", atoms)
    config = {
        "structure": "structure.extxyz",
        "potential": ace_potential["potential"].name,
        "active_set": ace_potential["active_set"].name,
        "reference": ace_potential["reference"].name,
        "timing_steps": 3,
        **settings,
    }
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(config))
    code = main([str(tmp_path / "input.yaml")])
    return code, json.loads((tmp_path / "results.json").read_text())


@pytest.fixture(scope="module")
def training_threshold(ace_potential):
    """This generation's dynamic threshold: 95th percentile of held-out frames' largest gamma (5 folds)."""
    from aiida_autopipe.core.held_out_gamma import held_out_gammas
    from aiida_autopipe.core.pacemaker_input import read_labelled_frames
    from aiida_autopipe.core.threshold import resolve_threshold

    frames = read_labelled_frames(ace_potential["labels"])
    grades = held_out_gammas(str(ace_potential["potential"]), frames, n_folds=5, seed=0)
    return resolve_threshold("dynamic_95percentile", grades.per_frame(), statistic="frame_max").threshold


def test_md_inside_the_training_set_does_not_halt(tmp_path, ace_potential, training_threshold):
    code, results = run_runner(
        tmp_path, ace_potential, si_diamond(), temperature=300, steps=30, threshold=training_threshold
    )
    assert code == 0 and results["status"] == "completed" and not results["halted"]
    assert results["steps_done"] == 30
    assert results["gamma_trace_steps"] == list(range(31))
    assert 0 < results["max_gamma"] <= training_threshold
    assert not (tmp_path / "halting_frame.extxyz").exists()
    final = read(tmp_path / "final_frame.extxyz")
    assert np.isclose(final.arrays["gamma"].max(), results["final_max_gamma"])
    timing = results["timing"]
    assert timing["us_per_atom_step_with_gamma"] > 0 and timing["us_per_atom_step_without_gamma"] > 0


def test_md_far_outside_the_training_set_halts(tmp_path, ace_potential, training_threshold):
    """Diamond Si compressed by 13% in lattice constant halts at once; hot diamond Si halts during the MD."""
    (tmp_path / "compressed").mkdir()
    code, compressed = run_runner(
        tmp_path / "compressed",
        ace_potential,
        si_diamond(a=4.75),
        temperature=300,
        steps=30,
        threshold=training_threshold,
    )
    assert code == 0 and compressed["halted"] and compressed["halt_step"] == 0
    assert compressed["max_gamma"] > 2 * training_threshold

    (tmp_path / "hot").mkdir()
    code, hot = run_runner(
        tmp_path / "hot",
        ace_potential,
        si_diamond(),
        temperature=3000,
        steps=60,
        threshold=training_threshold,
    )
    assert code == 0 and hot["status"] == "halted" and 0 < hot["halt_step"] < 60
    assert hot["steps_done"] == hot["halt_step"]
    halting = read(tmp_path / "hot" / "halting_frame.extxyz")
    gamma = halting.arrays["gamma"]
    assert gamma.shape == (64,) and gamma.max() > training_threshold
    assert np.isclose(gamma.max(), hot["gamma_trace_max"][-1])
    assert max(hot["gamma_trace_max"][:-1]) <= training_threshold


def test_gamma_every_n_steps(tmp_path, ace_potential):
    code, results = run_runner(
        tmp_path, ace_potential, si_diamond(), temperature=300, steps=12, threshold=50.0, gamma_every=5
    )
    assert code == 0 and results["gamma_trace_steps"] == [0, 5, 10, 12]


def test_invalid_inputs_name_the_problem(tmp_path, ace_potential):
    from aiida_autopipe.runners.files import EXIT_INVALID_INPUT

    code, results = run_runner(tmp_path, ace_potential, si_diamond(), active_set="missing.asi")
    assert code == EXIT_INVALID_INPUT and "active_set" in results["message"]
    code, results = run_runner(tmp_path, ace_potential, si_diamond(), threshold=-1)
    assert code == EXIT_INVALID_INPUT and "threshold" in results["message"]


def test_whole_frame_label_skips_the_buffer_relaxation():
    """A fully uncertain frame comes back whole: no buffer to relax, so the surrogate is never called."""
    from ase.build import bulk
    from ase.calculators.calculator import Calculator

    from aiida_autopipe.runners.otf_md import embed_frame

    class MustNotRun(Calculator):
        implemented_properties = ("energy", "forces")

        def calculate(self, *args, **kwargs):
            raise AssertionError("the whole frame has no buffer to relax")

    frame = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    (label,) = embed_frame(frame, np.full(len(frame), 4.0), 2.0, {"r_cut": 4.0}, MustNotRun())
    assert label.info["autopipe_whole_frame"] and not label.info["autopipe_buffer_relaxed"]
    assert np.allclose(label.positions, frame.positions) and np.all(
        label.arrays["autopipe_force_weight"] == 1
    )
