"""Element tables shared by the heuristics: chemical families, radii, reference lattices, melting points.

Everything here is read from ASE and pymatgen reference data so there is one source for each number;
the module only adds the chemical groupings that the classification rules need.
"""

import math

from ase.data import atomic_numbers, covalent_radii, reference_states
from pymatgen.core import Element

#: Non-metals that form discrete molecules with standard, saturated valences (hypervalent choices included).
MOLECULAR_VALENCES: dict[str, tuple[int, ...]] = {
    "H": (1,),
    "C": (4,),
    "N": (3,),
    "O": (2,),
    "F": (1,),
    "P": (3, 5),
    "S": (2, 4, 6),
    "Se": (2, 4, 6),
    "Cl": (1,),
    "Br": (1,),
    "I": (1,),
}

NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn"})

#: Elemental solids that are extended covalent networks (diamond, graphite, black P, grey Se chains, ...).
NETWORK_FORMING_ELEMENTS = frozenset({"B", "C", "Si", "Ge", "P", "As", "Sb", "Se", "Te"})

#: p-block elements that dissolve in metals as minority species without making the solid ionic or covalent
#: (carbides, borides, silicides, phosphides of metal-rich composition: Fe3C, Ni3B, Fe3Si, Ni3P).
METAL_RICH_SOLUTES = frozenset({"B", "C", "Si", "Ge", "P"})


def is_metal(symbol: str) -> bool:
    """Metallic element by pymatgen's definition (alkali, alkaline earth, transition, post-transition, f)."""
    return Element(symbol).is_metal


def electronegativity(symbol: str) -> float:
    """Pauling electronegativity (pymatgen); NaN-free: noble gases without a value return 0."""
    value = Element(symbol).X
    return 0.0 if value != value else float(value)


def covalent_radius(symbol: str) -> float:
    """Covalent radius in Angstrom (ASE's table, Cordero et al. 2008)."""
    return float(covalent_radii[atomic_numbers[symbol]])


def reference_state(symbol: str) -> dict:
    """Ground-state crystal structure of the element: {'symmetry': 'fcc'|'bcc'|'hcp'|..., 'a': ..., ...}."""
    state = reference_states[atomic_numbers[symbol]]
    return dict(state) if state else {}


def melting_point(symbol: str) -> float | None:
    """Melting point of the element in K (pymatgen data), None where unknown."""
    value = Element(symbol).melting_point
    return None if value is None else float(value)


def ionic_radius(symbol: str, oxidation_state: float) -> float:
    """Shannon ionic radius in Angstrom for the nearest tabulated oxidation state of the same sign.

    Falls back to the average ionic radius, then to the covalent radius where pymatgen has no data.
    """
    element = Element(symbol)
    radii = {int(k): float(v) for k, v in element.ionic_radii.items()}
    same_sign = {k: v for k, v in radii.items() if k * oxidation_state > 0}
    if same_sign:
        nearest = min(same_sign, key=lambda state: abs(state - oxidation_state))
        return same_sign[nearest]
    if element.average_ionic_radius:
        return float(element.average_ionic_radius)
    return covalent_radius(symbol)


def atomic_volume(symbol: str) -> float:
    """Volume per atom of the elemental solid in Angstrom^3, from pymatgen's molar volume."""
    molar_volume = Element(symbol).molar_volume  # cm^3 / mol
    if molar_volume is None:
        return 4.0 / 3.0 * math.pi * covalent_radius(symbol) ** 3 / 0.68  # spheres at bcc packing
    return float(molar_volume) * 1e24 / 6.02214076e23
