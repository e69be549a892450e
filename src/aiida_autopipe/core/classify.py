"""Bond-type classification (alloy / molecule / ionic / covalent) from a composition or a structure.

The class picks the seed-structure generator: SQS for alloys, normal-mode sampling for molecules, random
structure search for ionic solids, rattling and melt-quench for covalent networks.
"""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from ase import Atoms
from ase.neighborlist import natural_cutoffs, neighbor_list
from pymatgen.core import Composition, Element

from aiida_autopipe.core.elements import (
    METAL_RICH_SOLUTES,
    MOLECULAR_VALENCES,
    NETWORK_FORMING_ELEMENTS,
    NOBLE_GASES,
    electronegativity,
    is_metal,
)
from aiida_autopipe.core.errors import InputError

STRUCTURE_TYPES = ("alloy", "molecule", "ionic", "covalent")

#: Electronegativity difference (Pauling) from which a charge-balanced metal compound counts as ionic.
#: 1.4 puts the transition-metal oxides (Fe2O3 1.61, NiO 1.53) on the ionic side and GaN (1.23),
#: ZnS (0.93), GaAs (0.37) on the covalent side; AlN (1.43) sits just above it and counts as ionic.
IONIC_ELECTRONEGATIVITY_DIFFERENCE = 1.4

#: Minimum metal fraction for a metal-rich compound with B, C, Si, Ge or P to count as an alloy.
METAL_RICH_FRACTION = 0.75

#: Two atoms are bonded when closer than this factor times the sum of their covalent radii.
BOND_CUTOFF_FACTOR = 1.2


@dataclass(frozen=True)
class BondingClass:
    """The bonding class of a system and the one-sentence reason for it."""

    structure_type: str
    reason: str


def classify_bonding(composition: Mapping[str, float] | Atoms) -> BondingClass:
    """Classify a system as 'alloy', 'molecule', 'ionic' or 'covalent'.

    For an ``ase.Atoms`` the bond graph comes first (bonds: distance < 1.2 x sum of covalent radii, periodic
    images included): if every connected component is finite (no component bonds to its own periodic
    image), the system is a molecule or a molecular crystal, whatever its elements (an isolated metal or
    salt cluster is sampled like a molecule). Otherwise the composition rules below decide, except that an
    extended network is never called a molecule (a periodic polymer or C3N4 crystal is covalent).

    Composition rules, applied in order (element families from pymatgen, Pauling electronegativity X):

    1. only noble gases: molecule (atoms held by van der Waals forces);
    2. only metals (pymatgen ``is_metal``; Ga, Sn, Bi, Al count as metals): alloy;
    3. at least 75 at.% metal and the rest B, C, Si, Ge, P: alloy (metal-rich carbides, borides, silicides,
       phosphides such as Fe3C, Ni3B, Fe3Si are metallic);
    4. only molecule-forming non-metals (H C N O F P S Se Cl Br I, noble gases ignored):

       - one element: covalent for the network formers C, P, Se (diamond/graphite, black P, grey Se),
         molecule otherwise (H2, N2, O2, S8, halogens);
       - several elements: molecule if the integer formula (or its double, for parity) admits a connected
         bond graph with every atom at a standard valence (H1 C4 N3 O2 F1 Cl1 Br1 I1, P 3/5, S and Se
         2/4/6), i.e. the valence sum is even, at least 2 x (atoms - 1) and at least twice the largest
         valence; covalent otherwise. CO2, H2O, CH4, C6H6, NH3, SF6 are molecules; so is C3N4 from a bare
         composition (give a structure to get a network);
    5. metals with non-metals or metalloids: ionic if pymatgen finds charge-balancing oxidation states and
       either the largest X difference (most electronegative element minus least electronegative metal)
       is at least 1.4, or the most electropositive element is an alkali or alkaline-earth metal and all
       other non-metal elements are molecule-forming non-metals (LiH, MgH2, Li3N); covalent otherwise
       (GaAs, GaN, ZnS, CdTe, MoS2, and compounds without a charge-balanced guess);
    6. everything else (metalloids B Si Ge As Sb Te, alone or with non-metals): covalent (Si, Ge, SiC, BN,
       SiO2, Si3N4). Boranes and silanes given only as a formula fall here too: give their structure.
    """
    if isinstance(composition, Atoms):
        return _classify_atoms(composition)
    amounts = _amounts(composition)
    return _classify_composition(amounts, allow_molecule=True)


def _amounts(composition: Mapping[str, float]) -> dict[str, float]:
    amounts: dict[str, float] = {}
    for element, amount in composition.items():
        symbol = str(element)
        try:
            Element(symbol)
        except ValueError as error:
            raise InputError(
                "system.composition", f"unknown element {symbol!r}", "use element symbols such as Fe, O"
            ) from error
        if amount < 0:
            raise InputError("system.composition", f"negative amount for {symbol}", "give amounts >= 0")
        if amount > 0:
            amounts[symbol] = amounts.get(symbol, 0.0) + float(amount)
    if not amounts:
        raise InputError(
            "system.composition", "no element with a positive amount", "give e.g. {Fe: 0.5, Pt: 0.5}"
        )
    return amounts


def _classify_atoms(atoms: Atoms) -> BondingClass:
    if len(atoms) == 0:
        raise InputError("system.structure", "the structure has no atoms", "give a structure with atoms")
    symbols = atoms.get_chemical_symbols()
    amounts = {symbol: float(symbols.count(symbol)) for symbol in dict.fromkeys(symbols)}
    n_components, extended = bond_graph_components(atoms)
    if not extended:
        what = "one isolated cluster" if n_components == 1 else f"{n_components} isolated clusters"
        return BondingClass("molecule", f"the structure is {what} with no bonds across periodic images")
    verdict = _classify_composition(amounts, allow_molecule=False)
    return BondingClass(verdict.structure_type, f"extended bond network; {verdict.reason}")


def bond_graph_components(atoms: Atoms, factor: float = BOND_CUTOFF_FACTOR) -> tuple[int, bool]:
    """Count connected components of the covalent-radius bond graph and say if any is periodic (extended).

    A component is extended when walking its bonds reaches an atom again through a different periodic
    image: then it percolates through the crystal instead of being a finite molecule.
    """
    cutoffs = natural_cutoffs(atoms, mult=factor)
    first, second, shifts = neighbor_list("ijS", atoms, cutoffs)
    order = np.argsort(first, kind="stable")
    first, second, shifts = first[order], second[order], shifts[order]
    starts = np.searchsorted(first, np.arange(len(atoms) + 1))
    image = np.zeros((len(atoms), 3), dtype=int)
    visited = np.zeros(len(atoms), dtype=bool)
    n_components, extended = 0, False
    for root in range(len(atoms)):
        if visited[root]:
            continue
        n_components += 1
        visited[root] = True
        stack = [root]
        while stack:
            atom = stack.pop()
            for edge in range(starts[atom], starts[atom + 1]):
                neighbour = second[edge]
                neighbour_image = image[atom] + shifts[edge]
                if not visited[neighbour]:
                    visited[neighbour] = True
                    image[neighbour] = neighbour_image
                    stack.append(neighbour)
                elif not np.array_equal(image[neighbour], neighbour_image):
                    extended = True
    return n_components, extended


def _classify_composition(amounts: dict[str, float], allow_molecule: bool) -> BondingClass:
    symbols = sorted(amounts, key=lambda symbol: Element(symbol).Z)
    listed = ", ".join(symbols)
    metals = [symbol for symbol in symbols if is_metal(symbol)]
    others = [symbol for symbol in symbols if symbol not in metals]
    total = sum(amounts.values())
    metal_fraction = sum(amounts[symbol] for symbol in metals) / total

    if all(symbol in NOBLE_GASES for symbol in symbols):
        if allow_molecule:
            return BondingClass("molecule", f"only noble gases ({listed}): van der Waals bound atoms")
        return BondingClass("covalent", f"only noble gases ({listed}) in an extended network")
    if not others:
        return BondingClass("alloy", f"all elements metallic ({listed}): metallic bonding")
    if metals and metal_fraction >= METAL_RICH_FRACTION and set(others) <= METAL_RICH_SOLUTES:
        return BondingClass(
            "alloy",
            f"metal-rich ({metal_fraction:.0%} {', '.join(metals)}) with {', '.join(others)} as minority "
            "solutes: metallic bonding",
        )
    if not metals and set(symbols) <= set(MOLECULAR_VALENCES) | NOBLE_GASES:
        return _classify_nonmetals(amounts, listed, allow_molecule)
    if metals:
        return _classify_metal_compound(amounts, metals, others)
    return BondingClass("covalent", f"metalloids with non-metals ({listed}), no metal: covalent network")


def _classify_nonmetals(amounts: dict[str, float], listed: str, allow_molecule: bool) -> BondingClass:
    bonded = {symbol: amount for symbol, amount in amounts.items() if symbol not in NOBLE_GASES}
    if len(bonded) == 1:
        (symbol,) = bonded
        if symbol in NETWORK_FORMING_ELEMENTS:
            return BondingClass("covalent", f"elemental {symbol} forms an extended covalent network")
        if allow_molecule:
            return BondingClass("molecule", f"elemental {symbol} forms discrete molecules")
        return BondingClass("covalent", f"elemental {symbol} in an extended covalent network")
    if not allow_molecule:
        return BondingClass("covalent", f"only non-metals ({listed}) bonded into an extended network")
    if _has_saturated_bond_graph(bonded):
        return BondingClass(
            "molecule", f"only non-metals ({listed}) whose standard valences saturate within a molecule"
        )
    return BondingClass(
        "covalent", f"only non-metals ({listed}) but no saturated molecular valence count: covalent network"
    )


def integer_formula(amounts: Mapping[str, float]) -> dict[str, int]:
    """Smallest integer counts in the ratio of the amounts (fractions resolved to 1/1000)."""
    fractions = {symbol: Fraction(amount).limit_denominator(1000) for symbol, amount in amounts.items()}
    common_denominator = math.lcm(*(fraction.denominator for fraction in fractions.values()))
    counts = {symbol: int(fraction * common_denominator) for symbol, fraction in fractions.items()}
    divisor = math.gcd(*counts.values())
    return {symbol: count // divisor for symbol, count in counts.items()}


def _has_saturated_bond_graph(amounts: Mapping[str, float]) -> bool:
    """True if some standard-valence choice lets the formula (or its double) form one connected molecule.

    A loopless connected multigraph with degrees d exists iff sum(d) is even, sum(d) >= 2 (n - 1) and
    max(d) <= sum(d) / 2 (n atoms); doubling the formula fixes the parity of an odd sum.
    """
    counts = integer_formula(amounts)
    symbols = list(counts)
    for valences in itertools.product(*(MOLECULAR_VALENCES[symbol] for symbol in symbols)):
        for multiple in (1, 2):
            n_atoms = multiple * sum(counts.values())
            valence_sum = multiple * sum(counts[s] * v for s, v in zip(symbols, valences, strict=True))
            largest = max(valences) if n_atoms > 1 else 0
            if valence_sum % 2 == 0 and valence_sum >= 2 * (n_atoms - 1) and 2 * largest <= valence_sum:
                return True
    return False


def _classify_metal_compound(amounts: dict[str, float], metals: list[str], others: list[str]) -> BondingClass:
    least_electronegative_metal = min(metals, key=electronegativity)
    most_electronegative = max(others, key=electronegativity)
    difference = electronegativity(most_electronegative) - electronegativity(least_electronegative_metal)
    balanced = _charge_balanced(amounts)
    s_block_cation = Element(least_electronegative_metal).group in (1, 2)
    s_block_salt = s_block_cation and set(others) <= set(MOLECULAR_VALENCES)
    pair = f"{least_electronegative_metal}-{most_electronegative}"
    if balanced and difference >= IONIC_ELECTRONEGATIVITY_DIFFERENCE:
        return BondingClass(
            "ionic",
            f"charge-balanced oxidation states and electronegativity difference {difference:.2f} ({pair}) "
            f">= {IONIC_ELECTRONEGATIVITY_DIFFERENCE}: ionic bonding",
        )
    if balanced and s_block_salt:
        return BondingClass(
            "ionic",
            f"alkali or alkaline-earth cation {least_electronegative_metal} with non-metal anions and "
            "charge-balanced oxidation states: ionic bonding",
        )
    if not balanced:
        return BondingClass(
            "covalent",
            f"metal with {', '.join(others)} but no charge-balanced oxidation states: polar covalent bonding",
        )
    return BondingClass(
        "covalent",
        f"electronegativity difference {difference:.2f} ({pair}) < {IONIC_ELECTRONEGATIVITY_DIFFERENCE}: "
        "polar covalent bonding",
    )


def _charge_balanced(amounts: Mapping[str, float]) -> bool:
    """True if pymatgen finds common oxidation states that sum to zero for the reduced formula."""
    composition = Composition(integer_formula(amounts))
    return bool(composition.oxi_state_guesses(max_sites=-1))
