"""DIRECT sampling on synthetic descriptors whose clusters are known."""

import numpy as np
import pytest

from aiida_autopipe.core.direct import direct_select, fit_reduced_space
from aiida_autopipe.core.errors import InputError


def gaussian_blobs(n_rows=6000, n_blobs=12, dim=16, seed=0, spread=0.3):
    """Well separated blobs with very unequal populations (the smallest has about 1 row in 200)."""
    rng = np.random.default_rng(seed)
    weights = np.geomspace(1.0, 0.02, n_blobs)
    blob = rng.choice(n_blobs, size=n_rows, p=weights / weights.sum())
    centres = rng.normal(0.0, 5.0, (n_blobs, dim))
    return centres[blob] + spread * rng.standard_normal((n_rows, dim)), blob


def test_every_cluster_and_every_blob_is_covered():
    features, blob = gaussian_blobs()
    selection = direct_select(features, budget=40, seed=0)
    summary = selection.summary()
    assert summary["n_selected"] == 40
    assert summary["n_covered_clusters"] == summary["n_nonempty_clusters"] == selection.n_clusters
    assert set(blob[selection.indices]) == set(range(12))
    assert 0.9 <= summary["retained_variance"] <= 1.0
    assert summary["birch_threshold"] > 0  # chosen from the data, never hand-set


def test_same_seed_same_picks_and_seed_matters():
    features, _ = gaussian_blobs(seed=3)
    first = direct_select(features, budget=30, seed=7)
    again = direct_select(features, budget=30, seed=7)
    np.testing.assert_array_equal(first.indices, again.indices)
    assert len(np.unique(first.indices)) == 30


def test_duplicates_never_picked_twice():
    rng = np.random.default_rng(1)
    distinct = rng.normal(size=(15, 8))
    copies = np.repeat(distinct, 40, axis=0) + 1e-9 * rng.standard_normal((600, 8))
    selection = direct_select(copies, budget=30, seed=0)
    original = selection.indices // 40
    # a budget of 30 but only 15 distinct frames: each once, no copy twice, the rest of the budget unspent
    assert len(original) == len(set(original)) == 15


def test_k_per_cluster_gives_k_distinct_picks_per_cluster():
    features, _ = gaussian_blobs(n_rows=3000, n_blobs=5, seed=5)
    selection = direct_select(features, budget=15, k_per_cluster=3, seed=0)
    _, counts = np.unique(selection.cluster_of_selected, return_counts=True)
    assert selection.n_clusters == 5
    np.testing.assert_array_equal(counts, [3, 3, 3, 3, 3])


def test_first_pick_is_the_member_closest_to_its_centroid():
    features, _ = gaussian_blobs(n_rows=2000, n_blobs=4, seed=2)
    selection = direct_select(features, budget=1, seed=0)
    assert selection.n_clusters == 1
    reduced = fit_reduced_space(features, 0.9).transform(features)
    distance = np.linalg.norm(reduced - reduced.mean(axis=0), axis=1)
    assert selection.indices[0] == np.argmin(distance)


def test_budget_larger_than_data_returns_each_distinct_row_once():
    features = np.vstack([np.eye(6), np.eye(6)])
    selection = direct_select(features, budget=50, seed=0)
    assert sorted(set(selection.indices % 6)) == list(range(6))
    assert len(selection.indices) == 6


def test_memory_mapped_input_in_small_chunks(tmp_path):
    features, blob = gaussian_blobs(n_rows=5000, seed=4)
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=features.shape)
    mapped[:] = features
    selection = direct_select(mapped, budget=24, seed=0, chunk_rows=700)
    assert set(blob[selection.indices]) == set(range(12))


@pytest.mark.parametrize("options", [{"budget": 0}, {"budget": 5, "k_per_cluster": 0}])
def test_bad_budget_is_a_user_error(options):
    features, _ = gaussian_blobs(n_rows=100)
    with pytest.raises(InputError):
        direct_select(features, **options)
