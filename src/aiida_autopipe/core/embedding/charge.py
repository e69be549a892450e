"""Charge neutrality of an ionic cut-out.

Formal charges (common oxidation states, overridable) are summed over the cut-out. A non-zero total is
first cancelled with counter-ions: the nearest ions of opposite sign left outside the cut-out are added at
their crystal positions; when none fits, ions of the excess sign are removed from the outer buffer. If the
total cannot be brought to zero that way (charges that do not add up, nothing left to add or remove), the
remainder becomes pw.x's `tot_charge` (a uniform compensating background in a periodic box).
"""

import numpy as np

from aiida_autopipe.core.errors import InputError

#: Most common oxidation state of elements met in ionic solids.
FORMAL_CHARGES = {
    "H": 1,
    "Li": 1,
    "Na": 1,
    "K": 1,
    "Rb": 1,
    "Cs": 1,
    "Ag": 1,
    "Cu": 1,
    "Be": 2,
    "Mg": 2,
    "Ca": 2,
    "Sr": 2,
    "Ba": 2,
    "Zn": 2,
    "Cd": 2,
    "Ni": 2,
    "Co": 2,
    "Fe": 2,
    "Mn": 2,
    "Pb": 2,
    "Sc": 3,
    "Y": 3,
    "La": 3,
    "Al": 3,
    "Ga": 3,
    "In": 3,
    "Cr": 3,
    "B": 3,
    "Ti": 4,
    "Zr": 4,
    "Hf": 4,
    "Ce": 4,
    "Sn": 4,
    "Si": 4,
    "F": -1,
    "Cl": -1,
    "Br": -1,
    "I": -1,
    "O": -2,
    "S": -2,
    "Se": -2,
    "Te": -2,
    "N": -3,
    "P": -3,
}


def formal_charges(symbols, overrides: dict | None = None) -> np.ndarray:
    table = {**FORMAL_CHARGES, **(overrides or {})}
    missing = sorted({s for s in symbols if s not in table})
    if missing:
        raise InputError(
            "embedding.formal_charges",
            f"no formal charge for {', '.join(missing)}",
            "give them, e.g. {'Fe': 3}",
        )
    return np.array([table[s] for s in symbols], dtype=int)


def neutralise(
    charges_in: np.ndarray,
    removable: np.ndarray,
    removal_order: np.ndarray,
    charges_out: np.ndarray,
    addition_order: np.ndarray,
) -> tuple[list[int], list[int], int]:
    """Greedy counter-ion choice. Returns (outside ions to add, inside ions to remove, remaining charge).

    An ion is added (nearest first, `addition_order`) or removed (outermost first, `removal_order`, only
    where `removable`) only when its charge does not overshoot the total past zero.
    """
    total = int(np.sum(charges_in))
    added: list[int] = []
    removed: list[int] = []
    additions = iter(addition_order.tolist())
    for candidate in additions:
        if total == 0:
            break
        q = int(charges_out[candidate])
        if q * total < 0 and abs(q) <= abs(total):
            added.append(candidate)
            total += q
    for candidate in removal_order.tolist():
        if total == 0:
            break
        q = int(charges_in[candidate])
        if removable[candidate] and q * total > 0 and abs(q) <= abs(total):
            removed.append(candidate)
            total -= q
    return added, removed, total
