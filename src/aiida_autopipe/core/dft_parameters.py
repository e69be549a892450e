"""pw.x input heuristics for labeling: convergence, smearing, spin configurations, spin-orbit.

AiiDA-free: plain dictionaries in pw.x's namelist layout, symbols and fractional coordinates in, so that every
decision can be unit-tested without a profile. Energies stay in pw.x's Ry where pw.x expects them (ecutwfc,
ecutrho, degauss, conv_thr); everything returned to the user is in eV and Angstrom.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

#: Elements whose ground state is commonly spin-polarised in solids (3d transition metals with open d shells
#: and the 4f rare earths). Only these get a non-zero starting magnetisation.
MAGNETIC_ELEMENTS = frozenset(
    [
        "V",
        "Cr",
        "Mn",
        "Fe",
        "Co",
        "Ni",
        "Ce",
        "Pr",
        "Nd",
        "Sm",
        "Eu",
        "Gd",
        "Tb",
        "Dy",
        "Ho",
        "Er",
        "Tm",
        "Yb",
    ]
)

#: Typical local moments (Bohr magneton) used to size the starting magnetisation; the SCF relaxes them.
TYPICAL_MOMENTS = {"V": 1.0, "Cr": 3.0, "Mn": 4.0, "Fe": 3.0, "Co": 2.0, "Ni": 1.0}
DEFAULT_RARE_EARTH_MOMENT = 7.0

#: 1 eV/Angstrom^3 in GPa.
GPA_PER_EV_PER_ANGSTROM3 = 160.21766208

#: Below this absolute magnetisation per magnetic site (Bohr magneton) a spin-polarised start has collapsed to
#: a non-magnetic solution.
COLLAPSED_MOMENT_PER_SITE = 0.1

#: The mixing_beta ladder of the aggressive SCF recovery: pw.x's default 0.7 lowered in steps down to the
#: floor.
MIXING_BETA_START = 0.7
MIXING_BETA_FLOOR = 0.3
MIXING_BETA_STEP = 0.2

#: Temporary smearing raise on SCF failure: a broader Fermi surface damps charge sloshing between nearly
#: degenerate states; the label is then recomputed at the requested smearing from the converged density.
DEGAUSS_RAISE_FACTOR = 2.5


def conv_thr(n_atoms: int, conv_thr_per_atom: float) -> float:
    """Return pw.x's ``conv_thr`` (Ry) for a cell: the error in the total energy grows with the number of
    atoms, so a per-atom threshold keeps the per-atom accuracy of energies and forces independent of the cell
    size."""
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be positive, got {n_atoms}")
    return n_atoms * conv_thr_per_atom


def scf_parameters(
    n_atoms: int,
    ecutwfc: float,
    ecutrho: float,
    degauss: float,
    conv_thr_per_atom: float,
    smearing: str = "mv",
    electron_maxstep: int = 100,
) -> dict:
    """Return the namelists of a single-point label: energy, forces and stress from one strict SCF.

    Smearing is always on: the pipeline cannot know beforehand whether a sampled structure is a metal (a
    rattled or defective semiconductor can close its gap), and Marzari-Vanderbilt cold smearing of 0.02 Ry
    changes the energy of a gapped system by far less than a label's noise while making metals converge.
    """
    return {
        "CONTROL": {"calculation": "scf", "tprnfor": True, "tstress": True},
        "SYSTEM": {
            "ecutwfc": ecutwfc,
            "ecutrho": ecutrho,
            "occupations": "smearing",
            "smearing": smearing,
            "degauss": degauss,
        },
        "ELECTRONS": {
            "conv_thr": conv_thr(n_atoms, conv_thr_per_atom),
            "mixing_beta": MIXING_BETA_START,
            "electron_maxstep": electron_maxstep,
        },
    }


def next_mixing_beta(current: float) -> float | None:
    """Return the next, smaller ``mixing_beta`` of the recovery ladder, or None once the floor is reached.

    Smaller mixing damps the charge oscillations that keep an SCF from converging, at the cost of more
    iterations.
    """
    if current <= MIXING_BETA_FLOOR + 1e-9:
        return None
    return round(max(MIXING_BETA_FLOOR, current - MIXING_BETA_STEP), 6)


def raised_degauss(degauss: float) -> float:
    """Return the temporary, larger smearing (Ry) used to get a hard metallic SCF to converge."""
    return round(degauss * DEGAUSS_RAISE_FACTOR, 6)


def has_magnetic_element(symbols) -> bool:
    """Whether a spin-polarised calculation is needed at all."""
    return any(symbol in MAGNETIC_ELEMENTS for symbol in symbols)


def starting_magnetization(symbol: str, z_valence: float) -> float:
    """Return pw.x's ``starting_magnetization`` for one species: the typical moment as a fraction of the
    valence charge, clipped to pw.x's allowed range [-1, 1]."""
    if symbol not in MAGNETIC_ELEMENTS:
        return 0.0
    moment = TYPICAL_MOMENTS.get(symbol, DEFAULT_RARE_EARTH_MOMENT)
    return min(1.0, moment / z_valence)


@dataclass(frozen=True)
class SpinConfiguration:
    """A collinear starting spin arrangement: one sign per site (+1 up, -1 down, 0 non-magnetic)."""

    name: str
    signs: tuple[int, ...]

    def kind_names(self, symbols) -> list[str]:
        """Kind name per site: a species whose sites carry both signs is split into ``X1`` (up) and ``X2``
        (down), since pw.x assigns starting magnetisation per kind."""
        mixed = {
            symbol
            for symbol in set(symbols)
            if {sign for s, sign in zip(symbols, self.signs, strict=True) if s == symbol} >= {1, -1}
        }
        return [
            (f"{symbol}{1 if sign >= 0 else 2}" if symbol in mixed else symbol)
            for symbol, sign in zip(symbols, self.signs, strict=True)
        ]

    def kind_signs(self, symbols) -> dict[str, int]:
        """Sign of the starting moment of each kind."""
        return dict(zip(self.kind_names(symbols), self.signs, strict=True))

    def equivalent(self, other: SpinConfiguration) -> bool:
        """Same arrangement up to a global spin flip (which has the same energy)."""
        return self.signs == other.signs or self.signs == tuple(-sign for sign in other.signs)


def ferromagnetic(symbols) -> SpinConfiguration:
    """All magnetic sites up."""
    return SpinConfiguration("ferromagnetic", tuple(1 if s in MAGNETIC_ELEMENTS else 0 for s in symbols))


def antiferromagnetic(symbols, scaled_positions) -> SpinConfiguration | None:
    """Return a balanced up/down arrangement of the magnetic sites, or None if there is no such split.

    Layer split first: along each lattice direction the magnetic sites are grouped in planes of equal
    fractional coordinate and alternate planes get opposite spins (the B2 / layered orderings of bcc and fcc
    metals). The most balanced split wins. If no direction gives a balanced split and two or more magnetic
    species exist, the species are split instead (first species up, the others down).
    """
    magnetic = [index for index, symbol in enumerate(symbols) if symbol in MAGNETIC_ELEMENTS]
    if len(magnetic) < 2:
        return None

    best = None
    for axis in range(3):
        coordinates = [round(scaled_positions[index][axis] % 1.0, 3) % 1.0 for index in magnetic]
        planes = sorted(set(coordinates))
        if len(planes) < 2:
            continue
        plane_sign = {plane: 1 if number % 2 == 0 else -1 for number, plane in enumerate(planes)}
        signs = [plane_sign[coordinate] for coordinate in coordinates]
        imbalance = abs(sum(signs))
        if best is None or imbalance < best[0]:
            best = (imbalance, signs)

    if best is None or best[0] == len(magnetic):
        species = sorted({symbols[index] for index in magnetic})
        if len(species) < 2:
            return None
        signs = [1 if symbols[index] == species[0] else -1 for index in magnetic]
    else:
        signs = best[1]

    all_signs = [0] * len(symbols)
    for index, sign in zip(magnetic, signs, strict=True):
        all_signs[index] = sign
    return SpinConfiguration("antiferromagnetic", tuple(all_signs))


def random_disordered(symbols, seed: int, exclude=(), attempts: int = 20) -> SpinConfiguration | None:
    """Return a random up/down arrangement of the magnetic sites not equivalent to any in ``exclude``.

    Random spins sample the disordered (paramagnetic-like) local-moment states that neither ordered start
    reaches. None when every draw repeats a known arrangement (e.g. two magnetic sites have only FM and AFM).
    """
    generator = random.Random(seed)
    magnetic = [index for index, symbol in enumerate(symbols) if symbol in MAGNETIC_ELEMENTS]
    if len(magnetic) < 2:
        return None
    for _ in range(attempts):
        signs = [0] * len(symbols)
        for index in magnetic:
            signs[index] = generator.choice((1, -1))
        candidate = SpinConfiguration("random", tuple(signs))
        if not any(candidate.equivalent(known) for known in exclude):
            return candidate
    return None


def fallback_configurations(symbols, scaled_positions, seed: int = 0) -> list[SpinConfiguration]:
    """Spin arrangements to try after the ferromagnetic start failed or collapsed: antiferromagnetic, then
    random."""
    tried = [ferromagnetic(symbols)]
    afm = antiferromagnetic(symbols, scaled_positions)
    if afm is not None:
        tried.append(afm)
    disordered = random_disordered(symbols, seed, exclude=tried)
    if disordered is not None:
        tried.append(disordered)
    return tried[1:]


def moment_collapsed(absolute_magnetization: float, symbols) -> bool:
    """Whether a spin-polarised SCF ended non-magnetic: absolute magnetisation (Bohr magneton per cell) below
    ``COLLAPSED_MOMENT_PER_SITE`` per magnetic site."""
    n_magnetic = sum(1 for symbol in symbols if symbol in MAGNETIC_ELEMENTS)
    return n_magnetic == 0 or absolute_magnetization < COLLAPSED_MOMENT_PER_SITE * n_magnetic


def lowest_energy_state(energies: dict[str, float | None]) -> str | None:
    """Name of the converged state with the lowest energy (None values are unconverged states), or None."""
    converged = {name: energy for name, energy in energies.items() if energy is not None}
    if not converged:
        return None
    return min(converged, key=converged.get)


def spin_parameters(
    kind_signs: dict[str, int], kind_symbols: dict[str, str], z_valences: dict[str, float]
) -> dict:
    """Return the SYSTEM keys of a collinear spin-polarised run (``nspin = 2``) for the given kind signs."""
    return {
        "nspin": 2,
        "starting_magnetization": {
            kind: sign * starting_magnetization(kind_symbols[kind], z_valences[kind])
            for kind, sign in kind_signs.items()
        },
    }


def spin_orbit_parameters(
    kind_signs: dict[str, int], kind_symbols: dict[str, str], z_valences: dict[str, float]
) -> dict:
    """Return the SYSTEM keys of a non-collinear spin-orbit run (needs fully relativistic pseudopotentials).

    Moments start along z (angle1 = angle2 = 0), with the sign of the collinear state the first pass selected;
    a structure without magnetic elements runs with ``starting_magnetization`` zero, which pw.x treats as
    non-magnetic spin-orbit (time-reversal symmetric).
    """
    magnetization = {
        kind: sign * starting_magnetization(kind_symbols[kind], z_valences[kind])
        for kind, sign in kind_signs.items()
    }
    parameters = {"noncolin": True, "lspinorb": True}
    if any(value != 0.0 for value in magnetization.values()):
        parameters["starting_magnetization"] = magnetization
        parameters["angle1"] = dict.fromkeys(magnetization, 0.0)
        parameters["angle2"] = dict.fromkeys(magnetization, 0.0)
    return parameters


_UPF2_SO = re.compile(r"""has_so\s*=\s*["']\s*(t|true|\.true\.)\s*["']""", re.IGNORECASE)
_UPF2_FULL = re.compile(r"""relativistic\s*=\s*["']\s*full\s*["']""", re.IGNORECASE)


def is_fully_relativistic(upf_text: str) -> bool:
    """Whether a UPF file carries the spin-orbit (fully relativistic) projectors that ``lspinorb`` needs.

    UPF v2 says so in the header (``has_so``, ``relativistic="full"``); UPF v1 files carry a ``PP_ADDINFO``
    block and state "Fully-Relativistic" in their generation info.
    """
    header = upf_text[:20000]
    if _UPF2_SO.search(header) or _UPF2_FULL.search(header):
        return True
    return "<PP_ADDINFO>" in upf_text and "fully-relativistic" in header.lower()


def stress_gpa_to_ase(stress_gpa):
    """Convert pw.x's stress (GPa, positive = the cell wants to expand) to ASE's convention in eV/Angstrom^3
    (sigma = (1/V) dE/d(strain), negative under compression), the convention of extxyz and of ASE
    calculators."""
    return [[-component / GPA_PER_EV_PER_ANGSTROM3 for component in row] for row in stress_gpa]
