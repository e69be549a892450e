"""Hydrogen capping of covalent bonds broken by a cut-out.

A bond is broken when an atom of the cut-out and an atom left outside are closer than
`bond_factor` x the sum of their covalent radii. Each one gets an H on the broken bond's direction at the
X-H bond length of that element (molecular values, e.g. Si-H 1.48, C-H 1.09 Angstrom; the sum of covalent
radii otherwise). An H that lands closer than `min_distance` to any atom but its parent (for example two H
replacing one outside atom bonded to two atoms of the cut-out) is resolved by taking the outside atom into
the cut-out instead, and capping again.
"""

from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers, covalent_radii
from scipy.spatial.distance import cdist

#: X-H bond lengths (Angstrom) of saturated hydrides: SiH4, CH4, GeH4, NH3, H2O, PH3, H2S, B2H6 terminal.
XH_BOND_LENGTHS = {"C": 1.09, "Si": 1.48, "Ge": 1.53, "N": 1.01, "O": 0.96, "P": 1.42, "S": 1.34, "B": 1.19}
BOND_FACTOR = 1.2
MIN_CAP_DISTANCE = 1.5  # Angstrom: an H closer than this to a non-parent atom is a clash


def xh_bond_length(symbol: str) -> float:
    if symbol in XH_BOND_LENGTHS:
        return XH_BOND_LENGTHS[symbol]
    return float(covalent_radii[atomic_numbers[symbol]] + covalent_radii[1])


def bonded(numbers_a, positions_a, numbers_b, positions_b, bond_factor: float = BOND_FACTOR) -> np.ndarray:
    """Boolean matrix: pairs closer than bond_factor x the sum of covalent radii."""
    limit = bond_factor * (covalent_radii[numbers_a][:, None] + covalent_radii[numbers_b][None, :])
    distances = cdist(positions_a, positions_b)
    return (distances < limit) & (distances > 1e-6)


@dataclass
class Caps:
    positions: np.ndarray  # (n_caps, 3)
    parents: np.ndarray  # index into the cut-out of the atom each H caps
    replaced: np.ndarray  # index into the outside atoms of the atom each H replaces


def place_caps(
    numbers_in, positions_in, numbers_out, positions_out, symbols_in, bond_factor=BOND_FACTOR
) -> Caps:
    """One H per broken bond, on the bond, at the X-H length of the inside atom."""
    inside, outside = np.nonzero(bonded(numbers_in, positions_in, numbers_out, positions_out, bond_factor))
    direction = positions_out[outside] - positions_in[inside]
    direction /= np.linalg.norm(direction, axis=1)[:, None]
    lengths = np.array([xh_bond_length(symbols_in[i]) for i in inside])
    return Caps(positions_in[inside] + lengths[:, None] * direction, inside, outside)


def clashing_caps(caps: Caps, positions_in, min_distance: float = MIN_CAP_DISTANCE) -> np.ndarray:
    """Caps closer than min_distance to another cap or to an inside atom other than their parent."""
    if caps.positions.shape[0] == 0:
        return np.zeros(0, dtype=int)
    to_inside = cdist(caps.positions, positions_in)
    to_inside[np.arange(len(caps.parents)), caps.parents] = np.inf
    to_caps = cdist(caps.positions, caps.positions)
    np.fill_diagonal(to_caps, np.inf)
    too_close = (to_inside.min(axis=1) < min_distance) | (to_caps.min(axis=1) < min_distance)
    return np.flatnonzero(too_close)
