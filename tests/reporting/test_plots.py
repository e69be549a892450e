"""The report's AiiDA-free parts: figures from synthetic arrays, PCA plane, dataset reuse rules."""

import numpy as np
import pytest
from ase import Atoms

from aiida_autopipe.reporting import plots
from aiida_autopipe.reporting.arrays import pca_plane
from aiida_autopipe.reporting.datasets import (
    composition_key,
    covered_compositions,
    frames_within,
    settings_mismatch,
    uncovered,
)
from aiida_autopipe.reporting.summary import markdown_summary

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 2000


def test_every_figure_is_a_png(tmp_path):
    rng = np.random.default_rng(0)
    assert_png(
        plots.plot_learning_curve(
            [0, 1, 2],
            [10, 14, 20],
            {"train": [0.02, 0.01, 0.005], "test": [np.nan, 0.02, 0.01]},
            {"train": [0.3, 0.2, 0.1], "test": [np.nan, np.nan, np.nan]},
            tmp_path / "curve.png",
        )
    )
    label = rng.normal(size=300)
    assert_png(
        plots.plot_parity(label, label + 0.1 * rng.normal(size=300), "force", "eV/Å", tmp_path / "f.png")
    )
    assert_png(
        plots.plot_gamma_histogram(
            {1: rng.gamma(2, 0.5, 500), 2: rng.gamma(2, 0.4, 500)},
            {1: 4 + rng.random(10), 2: np.zeros(0)},
            {1: 2.5, 2: 2.0},
            tmp_path / "g.png",
        )
    )
    assert_png(plots.plot_direct_coverage(rng.normal(size=(100, 2)), [3, 50, 7], tmp_path / "d.png"))


def test_gamma_histogram_without_any_gamma_still_draws_the_threshold(tmp_path):
    assert_png(plots.plot_gamma_histogram({1: np.zeros(0)}, {}, {1: 3.0}, tmp_path / "g.png"))


def test_pca_plane_orders_by_variance_and_survives_constant_columns():
    rng = np.random.default_rng(1)
    features = np.column_stack([10 * rng.normal(size=50), rng.normal(size=50), np.ones(50)])
    plane = pca_plane(features)
    assert plane.shape == (50, 2)
    assert plane[:, 0].var() >= plane[:, 1].var() > 0
    assert np.allclose(pca_plane(np.ones((5, 3))), 0.0)


@pytest.mark.parametrize(
    ("symbols", "key"),
    [(["Fe", "Pt", "Fe", "Pt"], "FePt"), (["Pt", "Fe", "Fe", "Fe"], "Fe3Pt"), (["Si"] * 8, "Si")],
)
def test_composition_key_is_the_reduced_formula(symbols, key):
    assert composition_key(symbols) == key


def test_only_frames_within_the_system_are_reused_and_only_new_compositions_labelled():
    frames = [Atoms("Fe2"), Atoms("Pt4"), Atoms("FeO"), Atoms("Fe2Pt2")]
    reused = frames_within(frames, ["Fe", "Pt"])
    assert [a.get_chemical_formula() for a in reused] == ["Fe2", "Pt4", "Fe2Pt2"]
    covered = covered_compositions(reused)
    assert uncovered({"a": "Fe", "b": "FePt", "c": "Fe3Pt"}, covered) == ["c"]


def test_settings_mismatch_names_each_difference():
    wanted = {"pseudo_family": "SSSP", "ecutwfc": 45.0}
    assert settings_mismatch(wanted, {"pseudo_family": "SSSP", "ecutwfc": 45.0}) == []
    assert settings_mismatch(wanted, {"pseudo_family": "SSSP", "ecutwfc": 30.0}) == ["ecutwfc: 30.0 != 45.0"]
    assert settings_mismatch(wanted, None) == ["no DFT settings recorded with the dataset"]


def test_markdown_summary_has_a_row_per_generation_and_the_figures():
    rows = [
        {"generation": 0, "n_frames": 10, "train_energy_rmse": 0.004, "train_forces_rmse": 0.12},
        {"generation": 1, "n_frames": 14, "labels_added": 4, "uncertain_events": 2, "threshold": 2.5},
    ]
    page = markdown_summary("Run<1>", "finished", ["Si"], rows, None, None, {"Curve": "c.png"}, ["a note"])
    assert "| 0 | 10 | - | - | - | 4 / - | 120 / - |" in page
    assert "| 1 | 14 | 4 | 2 | 2.5 |" in page
    assert "![Curve](c.png)" in page and "- a note" in page
