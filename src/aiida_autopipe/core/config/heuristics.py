"""The heuristics that fill the full config: one function per key, each saying the physics behind it.

Every function is pure (inputs in, value out) so it can be unit-tested without a machine or a profile; the
facts about the machine (cores, pseudopotential family, surrogate) arrive through `Environment`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from pymatgen.core import Composition, Element

from aiida_autopipe.core.errors import InputError

#: Elements whose partially filled 3d or 4f shells order magnetically in most of their compounds and alloys.
MAGNETIC_ELEMENTS = frozenset(
    {"Cr", "Mn", "Fe", "Co", "Ni", "Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm"}
)

_FORMULA = re.compile(r"^(\(?[A-Z][a-z]?\d*\.?\d*\)?\d*\.?\d*)+$")


def parse_composition(
    composition: str | Mapping[str, float], field: str = "system.composition"
) -> dict[str, float]:
    """Atomic fractions from a formula ('FePt', 'Fe0.5Pt0.5', 'Al2O3') or a mapping of amounts.

    Fractions, not formula units, because SQS and off-stoichiometry work on site occupations.
    """
    if isinstance(composition, str):
        text = composition.replace(" ", "")
        if not text or not _FORMULA.match(text):
            raise InputError(
                field,
                f"cannot parse '{composition}' as a chemical formula",
                "write it like 'FePt' or 'Fe0.5Pt0.5'",
            )
        try:
            amounts = Composition(text).get_el_amt_dict()
        except (ValueError, KeyError) as error:
            raise InputError(
                field, f"cannot parse '{composition}' ({error})", "write it like 'FePt'"
            ) from None
    else:
        amounts = dict(composition)
    for symbol, amount in amounts.items():
        check_element(symbol, field)
        if amount < 0:
            raise InputError(field, f"{symbol} has a negative amount ({amount})", "give amounts >= 0")
    total = sum(amounts.values())
    if total <= 0:
        raise InputError(field, "all amounts are zero", "give at least one positive amount")
    return {symbol: amount / total for symbol, amount in amounts.items() if amount > 0}


def check_element(symbol: str, field: str = "system.elements") -> str:
    """The symbol itself if it names a real element, else an InputError that says so."""
    if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
        raise InputError(field, f"'{symbol}' is not a chemical element", "use symbols such as 'Fe' or 'Si'")
    element = Element(symbol)
    if element.atomic_radius is None and element.atomic_radius_calculated is None:
        raise InputError(
            field,
            f"'{symbol}' has no tabulated atomic radius, which sizes cells and the ACE cutoff",
            "use elements up to Rn (Z = 86), as pseudopotential families do",
        )
    return symbol


def melting_point_guess(composition: Mapping[str, float], structure_type: str) -> float:
    """Melting point estimate in K: the composition-weighted mean of the elemental melting points.

    The rule of mixtures is within ~20% for most alloys and covalent solids. Ionic compounds melt far above
    their elements (NaCl 1074 K against Na 371 K and Cl 172 K), so for them the estimate uses the highest
    elemental melting point and never less than 1000 K. It only sets how hot exploration and melt-quench go.
    """
    melting = {symbol: float(Element(symbol).melting_point or 300.0) for symbol in composition}
    if structure_type == "ionic":
        return max(1000.0, max(melting.values()))
    return sum(fraction * melting[symbol] for symbol, fraction in composition.items())


def temperature_steps(temperature: Sequence[float], max_spacing: float = 200.0) -> list[float]:
    """Evenly spaced MD temperatures across [T_min, T_max], no more than `max_spacing` K apart.

    About 200 K between steps keeps neighbouring temperatures' configuration spaces overlapping (thermal
    displacements grow as sqrt(T)), so a potential validated at one step has seen the next one's environments.
    """
    if len(temperature) == 1:
        return [float(temperature[0])]
    low, high = float(temperature[0]), float(temperature[-1])
    count = max(2, math.ceil((high - low) / max_spacing) + 1)
    return [round(low + (high - low) * i / (count - 1), 1) for i in range(count)]


def magnetism(elements: Sequence[str]) -> str:
    """'ferromagnetic' when a 3d or 4f magnetic element is present, else 'none'.

    A ferromagnetic start breaks spin symmetry so pw.x can find a magnetic ground state; Module C falls back
    to a non-magnetic solution when that is lower in energy or the ferromagnetic start does not converge.
    """
    return "ferromagnetic" if MAGNETIC_ELEMENTS.intersection(elements) else "none"


def smearing(structure_type: str) -> tuple[str, float]:
    """Marzari-Vanderbilt cold smearing, 0.02 Ry, for every class.

    Cold smearing keeps forces nearly independent of the width for metals, and hot MD frames of insulators
    often close the gap, so one safe setting is used everywhere rather than fixed occupations.
    """
    return "mv", 0.02


def bond_length_scale(elements: Sequence[str]) -> float:
    """The largest nearest-neighbour distance (Angstrom) among the elements, from atomic radii."""
    radii = [
        float(Element(symbol).atomic_radius or Element(symbol).atomic_radius_calculated)
        for symbol in elements
    ]
    return 2.0 * max(radii)


def r_cut(elements: Sequence[str]) -> float:
    """ACE radial cutoff in Angstrom: 2.2 nearest-neighbour distances, clamped to [4.5, 7.0].

    2.2 NN distances reaches the third neighbour shell of fcc, bcc and diamond lattices (Si: 5.2 A, Cu: 5.6 A,
    FePt: 6.2 A), which ACE needs for elastic and defect energetics; past 7 A the cost grows with no gain.
    """
    return round(min(7.0, max(4.5, 2.2 * bond_length_scale(elements))), 2)


def mpi_ranks(physical_cores: int) -> int:
    """One MPI rank per physical core: pw.x scales well to a node's cores for small cells."""
    return max(1, physical_cores)


def launch_command(executable: str, ranks: int, is_root: bool) -> list[str]:
    """The pw.x launch command as an argument list (never a shell string).

    Open MPI refuses to start as root unless told to; containers commonly run as root.
    """
    if ranks == 1:
        return [executable]
    command = ["mpirun"]
    if is_root:
        command.append("--allow-run-as-root")
    return [*command, "-np", str(ranks), executable]


def max_concurrent_labels(physical_cores: int, ranks: int) -> int:
    """As many pw.x runs at once as the cores hold without oversubscription (at least one)."""
    return max(1, physical_cores // ranks)


def surrogate_md_steps(structure_type: str) -> int:
    """Surrogate MD steps per seed and temperature: 1 ps at 1 fs, enough to decorrelate phonons."""
    return 1000


def max_seed_structures(structure_type: str) -> int:
    """Seeds explored by surrogate MD: 8, taken across generation methods; MD at several temperatures
    decorrelates each seed, so more seeds mostly add cost, not diversity."""
    return 8


#: Liquid seeds once the hottest simulated temperature is within the melting point guess's uncertainty
#: (20-25%); the default range, up to 80% of the guess, always includes them.
LIQUID_SEED_FRACTION = 0.75


def liquid_seeds(temperature: Sequence[float], melting_point_guess: float) -> bool:
    """Liquid snapshots seed exploration only if the hottest temperature reaches 75% of the melting guess.

    Below it the potential is asked for the solid, and a liquid seed run at solid temperatures only adds
    frames (and labels) of a supercooled liquid nobody will simulate."""
    return max(temperature) >= LIQUID_SEED_FRACTION * melting_point_guess


def initial_label_budget(n_elements: int) -> int:
    """First DFT labels: 40 frames per element, 40-200; enough for a first ACE fit with a few hundred
    functions, while the loop adds labels where the potential is uncertain."""
    return min(200, 40 * n_elements)


def timestep_fs(elements: Sequence[str]) -> float:
    """MD time step: 0.5 fs with hydrogen (fast X-H vibrations, ~10 fs period), else 1 fs; in fs."""
    return 0.5 if "H" in elements else 1.0


def runner_threads(physical_cores: int) -> int:
    """Threads of the surrogate, pacemaker and on-the-fly MD jobs: one per physical core, because each of
    them runs as a single process whose torch or BLAS kernels spread over threads."""
    return max(1, physical_cores)


def runner_gpus(cuda_devices: int) -> int:
    """One GPU for the surrogate and MD jobs when torch sees a GPU where the config is expanded, else none.

    Graph-network force calls run 10-100x faster on a GPU; one job drives one GPU. pw.x (Debian's build)
    and pacemaker's pyace evaluator run on CPUs only.
    """
    return 1 if cuda_devices > 0 else 0


def job_walltime_seconds(role: str, dft_walltime_seconds: int) -> int:
    """Wall-time per job in s: pw.x as `dft_compute.max_walltime_seconds`; surrogate and on-the-fly MD 4 h
    (they save frames as they go); a pacemaker fit 12 h (hundreds of BFGS iterations on large sets)."""
    return {"pw": dft_walltime_seconds, "pacemaker": 12 * 3600}.get(role, 4 * 3600)
