"""Held-out extrapolation grades: the sample of the dynamic threshold, on a real fitted ACE basis.

The training set's own grades against an active set built from all its atoms are <= 1 by MaxVol
construction, so their percentile cannot tell a young dataset from a mature one; k-fold held-out grades can.
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from otf_helpers import rattled_si_frames

from tiny_ace import TINY_FIT

BIN = Path(sys.executable).parent


def frame_max_percentile(grades, percentile=95):
    return np.percentile([g.max() for g in grades.per_frame()], percentile)


def test_held_out_grades_are_large_for_a_small_dataset_and_shrink_as_it_grows(ace_potential):
    from pyace import ACEBBasisSet, BBasisConfiguration, activelearning

    from aiida_autopipe.core.held_out_gamma import held_out_gammas

    potential = str(ace_potential["potential"])
    small, large = rattled_si_frames(10, seed=1), rattled_si_frames(160, seed=2)
    young, mature = held_out_gammas(potential, small, 5, 0), held_out_gammas(potential, large, 5, 0)
    assert young.n_ungraded == 0 and np.all(np.isfinite(young.gamma)) and young.gamma.shape == (80,)
    assert np.array_equal(np.bincount(young.fold), [2, 2, 2, 2, 2])  # each frame held out exactly once
    assert frame_max_percentile(young) > 1.5  # fresh frames leave a 10-frame dataset's span
    assert frame_max_percentile(mature) < 0.5 * frame_max_percentile(young)
    assert frame_max_percentile(mature) < 1.2  # ... and mostly stay inside a 160-frame one

    # The degenerate statistic it replaces: grades of the training atoms against their own active set.
    basis = ACEBBasisSet(BBasisConfiguration(potential))
    projections = activelearning.compute_B_projections(basis, small)
    inverse = activelearning.compute_A_active_inverse(
        activelearning.compute_active_set({k: v.copy() for k, v in projections.items()})
    )
    own = activelearning.compute_extrapolation_grade(projections, inverse)
    assert max(g.max() for g in own.values()) < 1.01


def test_under_determined_folds_leave_atoms_ungraded_and_threshold_at_the_ceiling(ace_potential):
    from aiida_autopipe.core.held_out_gamma import held_out_gammas
    from aiida_autopipe.core.threshold import resolve_threshold

    tiny = [atoms[:2] for atoms in rattled_si_frames(3, seed=3)]  # 4 training atoms < the basis's functions
    grades = held_out_gammas(str(ace_potential["potential"]), tiny, 3, 0)
    assert grades.n_ungraded == 6 and grades.per_frame() == []
    record = resolve_threshold("dynamic_95percentile", grades.per_frame(), n_ungraded=grades.n_ungraded)
    assert (record.threshold, record.clipped, record.n_gammas) == (10.0, "ceiling", 0)


def test_runner_task_writes_the_grades(tmp_path, ace_potential):
    from ase.io import write

    from aiida_autopipe.runners.otf_md import main

    shutil.copy(ace_potential["potential"], tmp_path / "output_potential.yaml")
    write(tmp_path / "frames.extxyz", rattled_si_frames(12, seed=4))
    config = {"task": "held_out_gamma", "dataset": "frames.extxyz", "n_folds": 4, "seed": 1}
    (tmp_path / "held_out_gamma.yaml").write_text(yaml.safe_dump(config))
    assert main([str(tmp_path / "held_out_gamma.yaml")]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    arrays = np.load(tmp_path / "held_out_gamma.npz")
    assert results["status"] == "completed" and (results["n_frames"], results["n_folds"]) == (12, 4)
    assert arrays["gamma"].shape == arrays["frame_index"].shape == (96,) and arrays["fold"].shape == (12,)
    assert results["frame_max_percentiles"]["95"] == pytest.approx(
        np.percentile([arrays["gamma"][arrays["frame_index"] == i].max() for i in range(12)], 95)
    )

    (tmp_path / "held_out_gamma.yaml").write_text(yaml.safe_dump({**config, "n_folds": 1}))
    assert main([str(tmp_path / "held_out_gamma.yaml")]) == 2
    assert "held_out_folds" in json.loads((tmp_path / "results.json").read_text())["message"]


def test_pacemaker_job_grades_held_out_frames_for_the_threshold(aiida_profile_clean, aiida_code_installed):
    """The fit's own job computes the held-out grades; the generation's threshold is recorded from them."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_autopipe.calcfunctions.threshold import generation_threshold
    from aiida_autopipe.calculations.pacemaker import PacemakerCalculation

    def code(executable, plugin=None):
        return aiida_code_installed(
            default_calc_job_plugin=plugin or "autopipe.pacemaker", filepath_executable=str(BIN / executable)
        )

    labels = Path(__file__).parents[1] / "training" / "data" / "si_pwx_labels.extxyz"
    results, node = run_get_node(
        PacemakerCalculation,
        code=code("pacemaker"),
        yaml2yace_code=code("pace_yaml2yace"),
        held_out_gamma_code=code("autopipe-otf-md", "autopipe.otf_md"),
        dataset=orm.SinglefileData(labels),
        parameters=orm.Dict({**TINY_FIT, "r_cut": 5.0, "held_out_folds": 4}),
    )
    assert node.is_finished_ok, node.exit_message
    gammas = results["held_out_gammas"]
    n_frames = gammas.base.attributes.get("n_frames")
    assert gammas.base.attributes.get("n_folds") == 4 and n_frames == len(gammas.get_array("fold"))
    assert np.unique(gammas.get_array("frame_index")).size == n_frames
    values = gammas.get_array("gamma")
    assert np.all(np.isfinite(values)) and values.max() > 1.0  # some held-out frame leaves the others' span

    record = generation_threshold(
        orm.Dict(
            {"uncertainty_threshold": "dynamic_95percentile", "gamma_floor": 1.0, "gamma_ceiling": 10.0}
        ),
        orm.Int(1),
        gammas,
    )
    frame_max = [values[gammas.get_array("frame_index") == i].max() for i in range(n_frames)]
    assert record["statistic"] == "frame_max" and record["n_gammas"] == n_frames
    assert record["raw_value"] == pytest.approx(np.percentile(frame_max, 95))
    assert record["threshold"] == pytest.approx(np.clip(np.percentile(frame_max, 95), 1.0, 10.0))
    assert record.creator.inputs.gammas.uuid == gammas.uuid
