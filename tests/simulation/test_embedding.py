"""Periodic embedding: Si vacancy capped with H, NaCl neutral, EMT buffer relaxation moves the buffer only;
fully uncertain or small frames are labelled whole."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.embedding import embed_uncertain_regions, relax_buffer
from aiida_autopipe.core.embedding.charge import formal_charges
from aiida_autopipe.core.errors import InputError

R_CUT = 3.0


def vacancy_cell(symbol, structure, a, repeat=3):
    """Parent cell with atom 0 removed; per-atom gamma high (5) on the vacancy's nearest neighbours.

    3x3x3 cubic cells: large enough that the cut-out is smaller than the frame (else the frame is the label).
    """
    atoms = bulk(symbol, structure, a=a, cubic=True).repeat(repeat)
    distances = atoms.get_distances(0, range(len(atoms)), mic=True)
    first_shell = np.flatnonzero((distances > 0.1) & (distances < distances[distances > 0.1].min() + 0.1))
    del atoms[0]
    gammas = np.full(len(atoms), 0.4)
    gammas[first_shell - 1] = 5.0
    return atoms, gammas


def neighbour_counts(atoms, cutoff, symbols=None):
    """Neighbours of each atom within cutoff (optionally only of the given symbols), periodic as given."""
    i, j = neighbor_list("ij", atoms, cutoff)
    keep = (
        np.ones(i.size, bool)
        if symbols is None
        else np.isin(np.array(atoms.get_chemical_symbols())[j], symbols)
    )
    return np.bincount(i[keep], minlength=len(atoms))


def assert_environments_complete_and_isolated(cluster, parent):
    """Each core atom sees in the box exactly its parent environment within r_cut, and no atom sees a
    periodic image of the box within r_cut."""
    box = cluster.atoms
    parent_counts = neighbour_counts(parent, R_CUT)
    box_counts = neighbour_counts(box, R_CUT, symbols=list(set(parent.get_chemical_symbols())))
    core = np.flatnonzero(box.arrays["autopipe_region"] == "core")
    assert np.array_equal(box_counts[core], parent_counts[box.arrays["autopipe_parent_index"][core]])
    _, _, shifts = neighbor_list("ijS", box, R_CUT)
    assert not np.any(shifts), "an atom sees a periodic image of the cut-out"
    assert np.array_equal(
        box.arrays["autopipe_force_weight"], (box.arrays["autopipe_region"] == "core") * 1.0
    )


def test_si_vacancy_cut_out_caps_every_dangling_bond():
    parent, gammas = vacancy_cell("Si", "diamond", 5.43)
    (cluster,) = embed_uncertain_regions(parent, gammas, threshold=2.0, r_cut=R_CUT, bonding="covalent")
    box = cluster.atoms
    symbols = np.array(box.get_chemical_symbols())
    silicon, hydrogen = np.flatnonzero(symbols == "Si"), np.flatnonzero(symbols == "H")
    assert cluster.n_caps == hydrogen.size > 0
    assert np.all(box.arrays["autopipe_region"][hydrogen] == "cap")
    distances = box.get_all_distances(mic=True)
    np.fill_diagonal(distances, np.inf)
    # Every Si keeps its parent's coordination (4, or 3 next to the vacancy) with Si + H partners.
    bonds = distances[np.ix_(silicon, np.arange(len(box)))] < 2.6
    parent_coordination = neighbour_counts(parent, 2.6)[box.arrays["autopipe_parent_index"][silicon]]
    assert np.array_equal(bonds.sum(axis=1), parent_coordination)
    assert np.sum(parent_coordination == 3) == 4  # the vacancy's dangling bonds stay: that is the physics
    for h in hydrogen:
        nearest = np.argsort(distances[h])
        assert symbols[nearest[0]] == "Si" and distances[h, nearest[0]] == pytest.approx(1.48, abs=1e-6)
        assert distances[h, nearest[1]] > 1.5  # no H too close to any other atom
    assert_environments_complete_and_isolated(cluster, parent)
    # The core images are more than 2 r_cut apart.
    assert np.all(
        box.cell.lengths() - np.ptp(box.positions[box.arrays["autopipe_region"] == "core"], axis=0)
        > 2 * R_CUT
    )


def test_nacl_cut_out_is_charge_neutral():
    parent = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    gammas = np.zeros(len(parent))
    gammas[0] = 8.0
    (cluster,) = embed_uncertain_regions(parent, gammas, threshold=2.0, r_cut=R_CUT, bonding="ionic")
    charges = formal_charges(cluster.atoms.get_chemical_symbols())
    assert cluster.notes["initial_formal_charge"] != 0  # the bare cut-out was charged
    assert charges.sum() == 0 and cluster.tot_charge == 0
    assert cluster.charge_method == "counter_ions" and cluster.counter_ions_added > 0
    assert cluster.atoms.info["autopipe_charge_method"] == "counter_ions"
    assert_environments_complete_and_isolated(cluster, parent)


def test_ionic_charge_that_cannot_cancel_goes_to_background():
    """With formal charges +3 and -2 an odd remainder of 1 cannot be cancelled by whole ions."""
    parent = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    gammas = np.zeros(len(parent))
    gammas[0] = 8.0
    overrides = {"Na": 3, "Cl": -2}
    (cluster,) = embed_uncertain_regions(
        parent, gammas, 2.0, R_CUT, "ionic", formal_charge_overrides=overrides
    )
    remaining = formal_charges(cluster.atoms.get_chemical_symbols(), overrides).sum()
    assert cluster.charge_method == "background"
    assert cluster.tot_charge == remaining != 0 and abs(remaining) < 2


def test_buffer_relaxation_moves_buffer_atoms_only():
    """EMT copper (ASE's effective-medium potential) stands in for the surrogate."""
    parent, gammas = vacancy_cell("Cu", "fcc", 3.61)
    gammas[gammas < 1] = 0.4
    gammas[np.flatnonzero(gammas > 1)[1:]] = 0.4  # one uncertain atom next to the vacancy
    (cluster,) = embed_uncertain_regions(parent, gammas, threshold=2.0, r_cut=2.6, bonding="alloy")
    assert cluster.n_caps == 0 and cluster.charge_method == "not_applicable"
    result = relax_buffer(cluster.atoms, EMT(), fmax=0.1, steps=150)
    region = cluster.atoms.arrays["autopipe_region"]
    moved = np.linalg.norm(result.atoms.positions - cluster.atoms.positions, axis=1)
    assert np.all(moved[region == "core"] == 0.0)
    assert moved[region == "buffer"].max() > 0.02
    assert result.energy_change < 0 and result.converged


def test_groups_far_apart_give_separate_cut_outs():
    parent = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 2, 2))
    gammas = np.zeros(len(parent))
    far = np.argmin(np.linalg.norm(parent.positions - [3 * 3.61, 0, 0], axis=1))  # 10.8 A > 2 r_cut away
    gammas[[0, far]] = 3.0
    clusters = embed_uncertain_regions(parent, gammas, 2.0, r_cut=2.6, prefer_whole_frame=False)
    assert len(clusters) == 2 and all(
        np.sum(c.atoms.arrays["autopipe_region"] == "core") == 13 for c in clusters
    )


def test_bad_embedding_inputs():
    parent, gammas = vacancy_cell("Cu", "fcc", 3.61)
    with pytest.raises(InputError, match="gammas"):
        embed_uncertain_regions(parent, gammas, threshold=10.0, r_cut=2.6)
    with pytest.raises(InputError, match="buffer_width"):
        embed_uncertain_regions(parent, gammas, 2.0, r_cut=2.6, buffer_width=1.0)
    with pytest.raises(InputError, match="bonding"):
        embed_uncertain_regions(parent, gammas, 2.0, r_cut=2.6, bonding="vdw")
    gold = parent.copy()
    gold.symbols[:] = "Au"  # no formal charge in the table
    with pytest.raises(InputError, match="formal_charges"):
        embed_uncertain_regions(gold, gammas, 2.0, r_cut=2.6, bonding="ionic")


def test_cut_out_does_not_depend_on_the_parent_cell_size():
    """Seeds half a cell apart in a small cell must still be placed around one vacancy, not its images."""
    shapes = []
    for repeat in (2, 3):
        parent = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(repeat)
        distances = parent.get_distances(0, range(len(parent)), mic=True)
        del parent[0]
        gammas = np.where((distances[1:] > 0.1) & (distances[1:] < 3.0), 6.0, 0.3)
        (cluster,) = embed_uncertain_regions(parent, gammas, 2.0, R_CUT, "ionic", prefer_whole_frame=False)
        core = cluster.atoms.positions[cluster.regions == "core"]
        shapes.append(np.sort(np.linalg.norm(core - core.mean(axis=0), axis=1)))
    assert shapes[0].size == shapes[1].size and np.allclose(shapes[0], shapes[1])


@pytest.mark.parametrize(
    ("bonding", "parent"),
    [
        ("covalent", bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)),
        ("alloy", bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)),
        ("ionic", bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)),
    ],
)
def test_fully_uncertain_dense_frame_is_labelled_whole(bonding, parent):
    """Every atom above threshold: the core is the whole cell, no buffer fits; the frame is the label."""
    parent = parent.copy()
    parent.rattle(0.05, seed=1)
    (cluster,) = embed_uncertain_regions(parent, np.full(len(parent), 5.0), 2.0, 5.0, bonding=bonding)
    box = cluster.atoms
    assert len(box) == len(parent) and box.info["autopipe_whole_frame"]
    assert np.allclose(box.positions, parent.positions) and np.allclose(box.cell, parent.cell)
    assert np.all(box.pbc) and "the core holds every atom" in cluster.notes["whole_frame"]
    assert set(box.arrays["autopipe_region"]) == {"core"} and np.all(box.arrays["autopipe_force_weight"] == 1)
    assert np.array_equal(box.arrays["autopipe_parent_index"], np.arange(len(parent)))
    assert cluster.n_caps == 0 and cluster.counter_ions_added == 0
    expected = "neutral" if bonding == "ionic" else "not_applicable"
    assert cluster.charge_method == expected and cluster.tot_charge == 0.0


def test_cut_out_not_smaller_than_the_frame_gives_the_frame():
    """A Si vacancy in a 63-atom cell: the capped cut-out (about 130 atoms) would cost more than the frame."""
    parent, gammas = vacancy_cell("Si", "diamond", 5.43, repeat=2)
    (whole,) = embed_uncertain_regions(parent, gammas, 2.0, R_CUT, bonding="covalent")
    assert len(whole.atoms) == len(parent) and whole.atoms.info["autopipe_whole_frame"]
    assert "not smaller than the frame" in whole.notes["whole_frame"]
    (cut,) = embed_uncertain_regions(parent, gammas, 2.0, R_CUT, "covalent", prefer_whole_frame=False)
    assert len(cut.atoms) > len(parent) and not cut.atoms.info["autopipe_whole_frame"] and cut.n_caps > 0


def test_ionic_frame_with_net_formal_charge_goes_whole_to_background():
    parent = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    del parent[1]  # one Cl- fewer: the frame itself carries +1
    (cluster,) = embed_uncertain_regions(parent, np.full(len(parent), 5.0), 2.0, 5.0, bonding="ionic")
    assert cluster.charge_method == "background" and cluster.tot_charge == 1.0
    assert cluster.atoms.info["autopipe_tot_charge"] == 1.0
