"""Seed structures for one system, by bonding class, from the generators that need neither DFT nor a
surrogate: SQS with off-stoichiometry and strains (alloys), random ionic cells (ionic), deep rattling of a
crystal or random covalent cells (covalent), small rattles of the molecule (molecules). Surrogate-driven
steps (pre-relaxation, melt-quench, normal-mode Hessians) use the same core functions with a calculator
and run in a CalcJob. Every structure passes the sanity check; rejections are counted.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from ase import Atoms
from ase.build import bulk, molecule
from ase.collections import g2

from aiida_autopipe.core.classify import integer_formula
from aiida_autopipe.core.elements import reference_state
from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.structures import random_search as airss
from aiida_autopipe.core.structures.base import GeneratedStructure, strain_variants
from aiida_autopipe.core.structures.rattle import rattled_structures
from aiida_autopipe.core.structures.sanity import filter_sane
from aiida_autopipe.core.structures.settings import generation_settings
from aiida_autopipe.core.structures.sqs import generate_sqs, off_stoichiometry_variants

MAX_FORMULA_MULTIPLE = 8


@dataclass
class GenerationResult:
    structures: list[GeneratedStructure]
    rejections: dict[str, int] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def generate_seed_structures(
    structure_type: str,
    composition: Mapping[str, float],
    structure: Atoms | None = None,
    generation: Mapping | None = None,
) -> GenerationResult:
    """All surrogate-free seed structures for a system of the given bonding class."""
    settings = generation_settings(generation)
    builders = {
        "alloy": _alloy,
        "ionic": _ionic,
        "covalent": _covalent,
        "molecule": _molecule,
    }
    if structure_type not in builders:
        raise InputError(
            "system.structure_type", f"unknown {structure_type!r}", f"use one of {sorted(builders)}"
        )
    structures, summary = builders[structure_type](composition, structure, settings)
    kept, rejections = filter_sane(structures, check_density=structure_type != "molecule")
    summary.update({"n_generated": len(structures), "n_kept": len(kept)})
    return GenerationResult(kept, rejections, summary)


def _alloy(composition, structure, settings):
    sqs = generate_sqs(
        composition,
        parent=structure,
        min_atoms=settings["sqs_min_atoms"],
        max_atoms=settings["sqs_max_atoms"],
        n_steps=settings["sqs_steps"],
        seed=settings["seed"],
    )
    structures = [sqs]
    if settings["off_stoichiometry"]:
        structures += off_stoichiometry_variants(
            sqs, settings["off_stoichiometry"], settings["sqs_steps"], settings["seed"]
        )
    for base in list(structures):
        structures += strain_variants(
            base, tuple(settings["volume_strains"]), tuple(settings["shear_strains"])
        )
    summary = {key: sqs.details[key] for key in sqs.details if key.startswith("sqs_")}
    summary["sqs_atoms"] = len(sqs.atoms)
    return structures, summary


def _ionic(composition, structure, settings):
    random_cells = airss.random_search(
        composition, settings["n_random"], settings["random_max_atoms"], settings["seed"]
    )
    # Distinct polymorphs among the random cells; a given crystal's rattled copies are the same polymorph
    # (StructureMatcher's tolerances merge them) and are kept on purpose.
    distinct = airss.deduplicate(random_cells)
    summary = {"n_duplicates": len(random_cells) - len(distinct)}
    if structure is not None:
        parent = GeneratedStructure(structure.copy(), "input", "input")
        distinct = [parent, *distinct, *_rattled(parent, settings)]
    return distinct, summary


def _covalent(composition, structure, settings):
    crystal = structure if structure is not None else _elemental_crystal(composition)
    if crystal is None:
        formula = airss.covalent_formula(composition)
        structures = airss.random_search(
            formula, settings["n_random"], settings["random_max_atoms"], settings["seed"], label="random"
        )
        return structures, {"parent": "random covalent cells"}
    parent = GeneratedStructure(_supercell(crystal, settings["min_crystal_atoms"]), "input", "crystal")
    return [parent, *_rattled(parent, settings)], {"parent": parent.atoms.get_chemical_formula()}


def _molecule(composition, structure, settings):
    if structure is None:
        structure = _known_molecule(composition)
    parent = GeneratedStructure(structure.copy(), "input", "molecule")
    amplitude = settings["molecule_rattle_amplitude"]
    copies = rattled_structures(parent, (amplitude,), settings["n_rattle"], settings["seed"])
    return [parent, *copies], {"parent": structure.get_chemical_formula()}


def _known_molecule(composition: Mapping[str, float]) -> Atoms:
    """Geometry from ASE's G2 set: the atom counts as given if they are integers, else the smallest multiple
    (up to MAX_FORMULA_MULTIPLE) of the integer formula that names a closed-shell G2 molecule, in the given
    or in Hill order. Normalised fractions lose the molecule's size: {C: 0.5, H: 0.5} gives acetylene C2H2
    (the CH radical is skipped), not benzene; give system.structure for those."""
    symbols = list(composition)
    hill = sorted(symbols, key=lambda s: (s != "C", s != "H" or "C" not in symbols, s))
    reduced = integer_formula(composition)
    candidates = [{s: k * n for s, n in reduced.items()} for k in range(1, MAX_FORMULA_MULTIPLE + 1)]
    if all(float(amount).is_integer() for amount in composition.values()):
        candidates.insert(0, {s: int(amount) for s, amount in composition.items()})  # counts as given
    for counts in candidates:
        for order in (symbols, hill):
            name = "".join(f"{s}{counts[s] if counts[s] != 1 else ''}" for s in order)
            if name in g2.names and sum(molecule(name).numbers) % 2 == 0:  # closed shell: no radicals
                return molecule(name)
    raise InputError(
        "system.structure",
        f"no known geometry for a molecule of composition {dict(composition)}",
        "give system.structure (the molecule's geometry)",
    )


def _rattled(parent: GeneratedStructure, settings) -> list[GeneratedStructure]:
    return rattled_structures(
        parent, tuple(settings["rattle_amplitudes"]), settings["n_rattle"], settings["seed"]
    )


def _elemental_crystal(composition: Mapping[str, float]) -> Atoms | None:
    """The element's ground-state crystal (ASE reference data) for a one-element covalent system."""
    if len(composition) != 1:
        return None
    (symbol,) = composition
    state = reference_state(symbol)
    if state.get("symmetry") not in ("diamond", "fcc", "bcc", "hcp", "sc"):
        return None
    return bulk(symbol, cubic=state["symmetry"] != "hcp")


def _supercell(atoms: Atoms, min_atoms: int) -> Atoms:
    """Smallest n x n x n repeat with at least ``min_atoms`` atoms (periodic crystals only)."""
    if not atoms.pbc.all():
        return atoms.copy()
    repeat = 1
    while len(atoms) * repeat**3 < min_atoms:
        repeat += 1
    return atoms.repeat(repeat)
