"""Periodic embedding of uncertain regions (REQ-E-02).

For each group of atoms whose extrapolation grade passes the threshold:

* core: the uncertain atoms and every atom within r_cut of one (their ACE environments);
* buffer: every atom within `buffer_width` (at least r_cut) of the core, so each core atom sees a complete
  environment of real atoms; buffer atoms get force weight 0 in training (their own environments are cut);
* covalent or molecular: broken bonds capped with H (`passivation`); ionic: total formal charge brought to
  zero with counter-ions, or the remainder returned as pw.x `tot_charge` (`charge`);
* box: orthorhombic, periodic, at least `vacuum` Angstrom (default r_cut) between the cut-out and each of
  its periodic images, so no atom has a periodic image within r_cut; and each edge at least the core's
  extent + 2 r_cut, so periodic images of the core never come within 2 r_cut of each other (in a bulk
  parent the buffer already gives about 2 buffer_width + vacuum = 3 r_cut).

The whole periodic frame is the label instead (every atom core, force weight 1, no buffer, caps or
counter-ions; ``autopipe_whole_frame`` in info) when the core already holds every atom of the frame (a
fully uncertain dense frame: no buffer is possible and a cut-out would only repeat the cell), or, with
`prefer_whole_frame`, when the cut-outs would hold at least as many atoms as the frame: then the frame is
both the cheaper DFT job and the exact one, each atom seeing its true periodic environment.
"""

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from scipy.spatial.distance import cdist

from aiida_autopipe.core.embedding.charge import formal_charges, neutralise
from aiida_autopipe.core.embedding.cluster import check_inputs, core_and_buffer, image_pool, seed_groups
from aiida_autopipe.core.embedding.passivation import BOND_FACTOR, MIN_CAP_DISTANCE, clashing_caps, place_caps
from aiida_autopipe.core.errors import InputError

CAPPED_BONDING = ("covalent", "molecule")
CHARGED_BONDING = ("ionic",)
PLAIN_BONDING = ("alloy", "metallic")
REGION_ARRAY = "autopipe_region"
WEIGHT_ARRAY = "autopipe_force_weight"
PARENT_ARRAY = "autopipe_parent_index"
_MARGIN = 6.0  # Angstrom of outside atoms kept around the cut-out for bonds and counter-ions
_MAX_CLOSURE_ROUNDS = 20


@dataclass
class EmbeddedCluster:
    """One cut-out in its periodic box, with what was done to terminate it."""

    atoms: (
        Atoms  # arrays: autopipe_region ('core'/'buffer'/'cap'), autopipe_force_weight, autopipe_parent_index
    )
    seeds: np.ndarray  # parent indices of the uncertain atoms it was built around
    charge_method: str  # 'not_applicable', 'neutral', 'counter_ions' or 'background'
    tot_charge: float = 0.0  # pw.x tot_charge (positive: electrons removed)
    n_caps: int = 0
    counter_ions_added: int = 0
    ions_removed: int = 0
    notes: dict = field(default_factory=dict)

    @property
    def regions(self) -> np.ndarray:
        return self.atoms.arrays[REGION_ARRAY]


def embed_uncertain_regions(
    atoms: Atoms,
    gammas,
    threshold: float,
    r_cut: float,
    bonding: str = "alloy",
    buffer_width: float | None = None,
    vacuum: float | None = None,
    formal_charge_overrides: dict | None = None,
    min_cap_distance: float = MIN_CAP_DISTANCE,
    bond_factor: float = BOND_FACTOR,
    prefer_whole_frame: bool = True,
) -> list[EmbeddedCluster]:
    """One embedded cluster per group of atoms with gamma above `threshold` (groups within 2 r_cut merge),
    or the whole frame alone (see the module docstring).

    `bonding` is the class of `core.classify` ('alloy', 'covalent', 'ionic', 'molecule'; 'metallic' is
    accepted for 'alloy'). Lengths in Angstrom.
    """
    gammas = check_inputs(atoms, gammas, threshold, r_cut)
    if bonding not in CAPPED_BONDING + CHARGED_BONDING + PLAIN_BONDING:
        raise InputError(
            "bonding", f"unknown bond type {bonding!r}", "use alloy, covalent, ionic or molecule"
        )
    buffer_width = r_cut if buffer_width is None else buffer_width
    if buffer_width < r_cut:
        raise InputError(
            "buffer_width", f"{buffer_width} < r_cut {r_cut}", "make the buffer at least r_cut thick"
        )
    vacuum = r_cut if vacuum is None else vacuum
    seeds = np.flatnonzero(gammas > threshold)
    groups = seed_groups(atoms, seeds, r_cut)
    if any(core_covers_frame(atoms, group, gammas, r_cut) for group in groups):
        return [
            whole_frame(atoms, seeds, r_cut, bonding, formal_charge_overrides, "the core holds every atom")
        ]
    clusters = [
        _embed_group(
            atoms,
            group,
            gammas,
            r_cut,
            buffer_width,
            bonding,
            vacuum,
            formal_charge_overrides,
            min_cap_distance,
            bond_factor,
        )
        for group in groups
    ]
    size = sum(len(cluster.atoms) for cluster in clusters)
    if prefer_whole_frame and size >= len(atoms):
        reason = f"the cut-outs ({size} atoms) are not smaller than the frame ({len(atoms)})"
        return [whole_frame(atoms, seeds, r_cut, bonding, formal_charge_overrides, reason)]
    return clusters


def core_covers_frame(atoms: Atoms, group: np.ndarray, gammas: np.ndarray, r_cut: float) -> bool:
    """True when every atom of the frame (some periodic image of it) lies in the group's core."""
    pool = image_pool(atoms, group, gammas, r_cut + 1e-6)
    core, _ = core_and_buffer(pool, r_cut, r_cut)
    return np.unique(pool.parent[core]).size == len(atoms)


def whole_frame(
    atoms: Atoms, seeds: np.ndarray, r_cut: float, bonding: str, charge_overrides, reason: str
) -> EmbeddedCluster:
    """The periodic frame itself as the label: all atoms core (weight 1); an ionic frame's own net formal
    charge, if any, goes to pw.x's uniform background."""
    frame = Atoms(atoms.get_chemical_symbols(), atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    cluster = EmbeddedCluster(frame, np.sort(seeds), "not_applicable", notes={"whole_frame": reason})
    if bonding in CHARGED_BONDING:
        charge = int(formal_charges(np.array(atoms.get_chemical_symbols()), charge_overrides).sum())
        cluster.charge_method = "neutral" if charge == 0 else "background"
        cluster.tot_charge = float(charge)
        cluster.notes["initial_formal_charge"] = charge
    frame.set_array(REGION_ARRAY, np.full(len(frame), "core", dtype="<U6"))
    frame.set_array(WEIGHT_ARRAY, np.ones(len(frame)))
    frame.set_array(PARENT_ARRAY, np.arange(len(frame)))
    frame.info.update(
        autopipe_charge_method=cluster.charge_method,
        autopipe_tot_charge=cluster.tot_charge,
        autopipe_r_cut=r_cut,
        autopipe_whole_frame=True,
    )
    return cluster


def _embed_group(
    atoms,
    group,
    gammas,
    r_cut,
    buffer_width,
    bonding,
    vacuum,
    charge_overrides,
    min_cap_distance,
    bond_factor,
) -> EmbeddedCluster:
    pool_radius = r_cut + buffer_width + _MARGIN
    pool = image_pool(atoms, group, gammas, pool_radius)
    core, inside = core_and_buffer(pool, r_cut, buffer_width)
    inside |= core
    numbers = atoms.numbers[pool.parent]
    symbols = np.array(atoms.get_chemical_symbols())[pool.parent]
    cap_positions = np.zeros((0, 3))
    cluster = EmbeddedCluster(Atoms(), np.sort(group), "not_applicable")

    if bonding in CAPPED_BONDING:
        for _ in range(_MAX_CLOSURE_ROUNDS):
            in_idx, out_idx = np.flatnonzero(inside), np.flatnonzero(~inside)
            caps = place_caps(
                numbers[in_idx],
                pool.positions[in_idx],
                numbers[out_idx],
                pool.positions[out_idx],
                symbols[in_idx],
                bond_factor,
            )
            clashes = clashing_caps(caps, pool.positions[in_idx], min_cap_distance)
            if clashes.size == 0:
                break
            inside[out_idx[caps.replaced[clashes]]] = True  # the outside atom joins instead of two clashing H
        else:
            raise RuntimeError(f"H caps still clash after {_MAX_CLOSURE_ROUNDS} rounds of taking atoms in")
        cap_positions = caps.positions
        cluster.n_caps = len(cap_positions)

    if bonding in CHARGED_BONDING:
        in_idx, out_idx = np.flatnonzero(inside), np.flatnonzero(~inside)
        charges = formal_charges(symbols, charge_overrides)
        to_cluster = cdist(pool.positions[out_idx], pool.positions[in_idx]).min(axis=1)
        to_core = cdist(pool.positions[in_idx], pool.positions[core]).min(axis=1)
        initial = int(charges[in_idx].sum())
        added, removed, remaining = neutralise(
            charges[in_idx], ~core[in_idx], np.argsort(-to_core), charges[out_idx], np.argsort(to_cluster)
        )
        inside[out_idx[added]] = True
        inside[in_idx[removed]] = False
        cluster.counter_ions_added, cluster.ions_removed = len(added), len(removed)
        cluster.tot_charge = float(remaining)
        cluster.charge_method = (
            "neutral" if initial == 0 else "counter_ions" if remaining == 0 else "background"
        )
        cluster.notes["initial_formal_charge"] = initial

    kept = np.flatnonzero(inside)
    reach = cdist(pool.positions[kept], pool.seed_positions).min(axis=1).max()
    if reach + 3.0 > pool_radius:
        raise RuntimeError("the cut-out grew to the edge of the image pool; bonds beyond it would be missed")
    regions = np.where(core[kept], "core", "buffer").tolist() + ["cap"] * len(cap_positions)
    positions = np.vstack([pool.positions[kept], cap_positions])
    embedded = Atoms(
        symbols=symbols[kept].tolist() + ["H"] * len(cap_positions), positions=positions, pbc=True
    )
    lower, upper = positions.min(axis=0), positions.max(axis=0)
    core_extent = np.ptp(pool.positions[kept][core[kept]], axis=0)
    edges = np.maximum(upper - lower + vacuum, core_extent + 2 * r_cut)
    embedded.set_cell(np.diag(edges))
    embedded.translate(0.5 * (edges - (upper - lower)) - lower)
    embedded.set_array(REGION_ARRAY, np.array(regions, dtype="<U6"))
    embedded.set_array(WEIGHT_ARRAY, np.where(np.array(regions) == "core", 1.0, 0.0))
    embedded.set_array(PARENT_ARRAY, np.concatenate([pool.parent[kept], -np.ones(len(cap_positions), int)]))
    embedded.info.update(
        autopipe_charge_method=cluster.charge_method,
        autopipe_tot_charge=cluster.tot_charge,
        autopipe_r_cut=r_cut,
        autopipe_whole_frame=False,
    )
    cluster.atoms = embedded
    return cluster
