"""Per-frame descriptors: invariances, periodic images, per-species layout."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_autopipe.core.descriptors import compute_descriptors, flat_arrays


def rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.fixture
def rattled_nacl():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.1, seed=1)
    return atoms


@pytest.mark.parametrize("kind", ["ace", "soap"])
def test_rotation_translation_permutation_invariance(kind, rattled_nacl):
    moved = rattled_nacl.copy()
    turn = rotation(3)
    moved.set_cell(moved.cell[:] @ turn.T, scale_atoms=False)
    moved.positions = moved.positions @ turn.T + np.array([0.3, -1.2, 2.0])
    moved = moved[np.random.default_rng(0).permutation(len(moved))]
    features = compute_descriptors(*flat_arrays([rattled_nacl, moved]), kind=kind, r_cut=4.5)
    assert np.abs(features).max() > 0
    np.testing.assert_allclose(features[0], features[1], rtol=1e-6, atol=1e-8)


def test_ace_small_cell_images_match_the_supercell():
    """A 1-atom primitive cell (many periodic images in range) and its 3x3x3 supercell: one crystal."""
    primitive = bulk("Cu", "fcc", a=3.61)
    features = compute_descriptors(*flat_arrays([primitive, primitive.repeat(3)]), kind="ace", r_cut=5.0)
    np.testing.assert_allclose(features[0], features[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["ace", "soap"])
def test_per_species_blocks_and_sensitivity(kind, rattled_nacl):
    ideal = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    only_na = bulk("Na", "bcc", a=4.2, cubic=True)
    features = compute_descriptors(
        *flat_arrays([ideal, rattled_nacl, only_na]), kind=kind, species=[11, 17], r_cut=4.5
    )
    half = features.shape[1] // 2
    assert not np.allclose(features[0], features[1])  # the rattle is seen
    assert np.abs(features[2, :half]).max() > 0 and np.all(features[2, half:] == 0)  # no Cl centre: zeros


def test_ace_throughput_runs_in_parallel_threads():
    frames = [bulk("Si", "diamond", a=5.43, cubic=True).repeat(2) for _ in range(8)]
    for index, atoms in enumerate(frames):
        atoms.rattle(0.05, seed=index)
    one = compute_descriptors(*flat_arrays(frames), kind="ace", n_jobs=1)
    two = compute_descriptors(*flat_arrays(frames), kind="ace", n_jobs=2)
    np.testing.assert_allclose(one, two)
    assert len(np.unique(one.round(8), axis=0)) == 8
