"""Provenance wrappers over the seed-structure generators: bonding class and surrogate-free seeds."""

import re

from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.core.classify import classify_bonding
from aiida_autopipe.core.structures.base import GeneratedStructure
from aiida_autopipe.core.structures.generate import generate_seed_structures
from aiida_autopipe.core.structures.random_search import deduplicate
from aiida_autopipe.core.structures.sanity import filter_sane

#: Attribute of each generated StructureData holding how it was made (also copied to extras by the
#: work chain so that it can be queried and edited).
GENERATION_ATTRIBUTE = "autopipe_generation"


def link_label(label: str) -> str:
    """A valid AiiDA link label from a generator label (letters, digits and single underscores)."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", label)).strip("_")


def tagged_structure(record: GeneratedStructure) -> orm.StructureData:
    """StructureData carrying method, label, parent, strain, temperature and details as an attribute."""
    node = orm.StructureData(ase=record.atoms)
    node.base.attributes.set(GENERATION_ATTRIBUTE, generation_tags(record))
    return node


def generation_tags(record: GeneratedStructure) -> dict:
    return {
        "method": record.method,
        "label": record.label,
        "parent": record.parent,
        "strain": list(record.strain) if record.strain is not None else None,
        "temperature": record.temperature,
        "details": record.details,
    }


@calcfunction
def classify_system(system: orm.Dict, structure: orm.StructureData | None = None) -> orm.Dict:
    """Bonding class of the system (from the structure when given, else from the composition)."""
    subject = structure.get_ase() if structure is not None else system["composition"]
    verdict = classify_bonding(subject)
    return orm.Dict({"structure_type": verdict.structure_type, "reason": verdict.reason})


@calcfunction
def generate_surrogate_free_structures(
    system: orm.Dict, generation: orm.Dict, structure: orm.StructureData | None = None
) -> dict:
    """Seed structures that need neither DFT nor a surrogate, plus a `summary` Dict (counts, rejections by
    the sanity check, SQS correlation deviations)."""
    result = generate_seed_structures(
        system["structure_type"],
        system["composition"],
        structure.get_ase() if structure is not None else None,
        generation.get_dict(),
    )
    outputs = {link_label(record.label): tagged_structure(record) for record in result.structures}
    methods = {}
    for record in result.structures:
        methods[record.method] = methods.get(record.method, 0) + 1
    outputs["summary"] = orm.Dict({**result.summary, "rejections": result.rejections, "methods": methods})
    return outputs


@calcfunction
def distinct_relaxed_structures(**relaxed: orm.StructureData) -> dict:
    """Surrogate-relaxed random cells that pass the sanity check, one per StructureMatcher group (the first
    by label), tagged `random_search_relaxed` with the unrelaxed cell as parent; plus `relaxation_summary`."""
    records = [
        GeneratedStructure(node.get_ase(), "random_search_relaxed", f"{label}_relaxed", parent=label)
        for label, node in sorted(relaxed.items())
    ]
    sane, rejections = filter_sane(records)
    distinct = deduplicate(sane)
    outputs = {link_label(record.label): tagged_structure(record) for record in distinct}
    outputs["relaxation_summary"] = orm.Dict(
        {"n_relaxed": len(records), "rejections": rejections, "n_distinct": len(distinct)}
    )
    return outputs


@calcfunction
def sane_generated_structures(**generated: orm.StructureData) -> dict:
    """Structures the surrogate runner made (melt-quench, normal modes) that pass the sanity check, tagged as
    the runner described them; plus `sampling_summary` (counts by method, rejections)."""
    records = []
    for _, node in sorted(generated.items()):
        tags = node.base.attributes.get(GENERATION_ATTRIBUTE)
        records.append(
            GeneratedStructure(
                node.get_ase(),
                tags["method"],
                tags["label"],
                parent=tags["parent"],
                temperature=tags["temperature"],
                details=tags["details"],
            )
        )
    sane, rejections = filter_sane(records)
    outputs = {link_label(record.label): tagged_structure(record) for record in sane}
    methods = {}
    for record in sane:
        methods[record.method] = methods.get(record.method, 0) + 1
    outputs["sampling_summary"] = orm.Dict(
        {"n_generated": len(records), "n_kept": len(sane), "rejections": rejections, "methods": methods}
    )
    return outputs
