"""Labelled datasets as AiiDA groups `autopipe/datasets/<Fe-Pt>`, found by elements, reused by new systems.

A registered dataset is a final (not an intermediate per-generation) dataset node: it carries the extras
`describe` sets (elements, counts), `autopipe_registered` and `dft_settings` (what fixes its energy scale),
and sits in the group of its chemical system. Extras travel with an archive, groups do not: importing
re-registers the nodes marked `autopipe_registered`.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.calcfunctions.dataset import dataset_node, describe
from aiida_autopipe.core.pacemaker_input import read_labelled_frames
from aiida_autopipe.reporting.datasets import (
    composition_key,
    covered_compositions,
    frames_within,
    is_within,
    label_settings,
    settings_mismatch,
    uncovered,
)

GROUP_PREFIX = "autopipe/datasets/"
REGISTERED_EXTRA = "autopipe_registered"
SETTINGS_EXTRA = "dft_settings"


def group_label(elements) -> str:
    return GROUP_PREFIX + "-".join(sorted(elements))


def register_dataset(dataset: orm.SinglefileData, dft_compute: dict | None = None) -> orm.Group:
    """Put a stored dataset in the group of its chemical system; idempotent.

    `dft_compute` (the run's config section) records the settings the labels were computed with; without it
    the dataset is still findable but never merged into another system's run (its energy scale is unknown).
    """
    if "elements" not in dataset.base.extras.all:
        describe(dataset)
    if dft_compute is not None and SETTINGS_EXTRA not in dataset.base.extras.all:
        dataset.base.extras.set(SETTINGS_EXTRA, label_settings(dft_compute))
    dataset.base.extras.set(REGISTERED_EXTRA, True)
    group, _ = orm.Group.collection.get_or_create(label=group_label(dataset.base.extras.get("elements")))
    group.add_nodes(dataset)
    return group


def register_run(node: orm.ProcessNode) -> orm.Group:
    """Register the `dataset` output of a finished ActiveLearningWorkChain with its DFT settings."""
    dft_compute = (
        node.outputs.full_config.get_dict().get("dft_compute") if "full_config" in node.outputs else None
    )
    return register_dataset(node.outputs.dataset, dft_compute)


def registered_datasets(elements=None) -> list[orm.SinglefileData]:
    """Datasets in the `autopipe/datasets/` groups; with `elements`, only those made of a subset of them."""
    query = orm.QueryBuilder()
    query.append(orm.Group, filters={"label": {"like": GROUP_PREFIX + "%"}}, tag="group")
    query.append(orm.SinglefileData, with_group="group", project="*")
    found = {}
    for (node,) in query.iterall():
        if elements is None or is_within(node.base.extras.get("elements", []), elements):
            found[node.uuid] = node
    return sorted(found.values(), key=lambda node: node.ctime)


@calcfunction
def reusable_frames(elements: orm.List, **datasets: orm.SinglefileData) -> orm.SinglefileData:
    """One dataset of the frames of `datasets` made only of `elements`, each label once.

    Frames are deduplicated by `label_uuid` (the label node they came from), since a dataset registered for
    A-B holds the A and B frames it started from.
    """
    seen, frames = set(), []
    for key in sorted(datasets):
        with datasets[key].open(mode="r") as handle:
            for atoms in frames_within(read_labelled_frames(handle), elements.get_list()):
                uuid = atoms.info.get("label_uuid")
                if uuid is not None and uuid in seen:
                    continue
                seen.add(uuid)
                frames.append(atoms)
    return dataset_node(frames)


def prior_dataset(elements, dft_compute: dict) -> tuple[orm.SinglefileData | None, list[str]]:
    """Frames already labelled (here or imported) that a run on `elements` can start from.

    Only registered datasets made of a subset of `elements` whose recorded DFT settings equal the run's
    (:data:`~aiida_autopipe.reporting.datasets.LABEL_SETTINGS_KEYS`) are used. Returns the merged dataset
    (stored, described; None when nothing fits) and one note per dataset used or skipped, for the report.
    """
    wanted = label_settings(dft_compute)
    usable, notes = {}, []
    for node in registered_datasets(elements):
        mismatch = settings_mismatch(wanted, node.base.extras.get(SETTINGS_EXTRA, None))
        if mismatch:
            notes.append(
                f"skipped dataset {node.pk} ({node.base.extras.get('chemical_system')}): "
                + "; ".join(mismatch)
            )
            continue
        usable[f"dataset_{node.pk}"] = node
        notes.append(
            f"reused dataset {node.pk} ({node.base.extras.get('chemical_system')}, "
            f"{node.base.extras.get('number_of_frames')} frames)"
        )
    if not usable:
        return None, notes
    merged = reusable_frames(orm.List(sorted(elements)), **usable)
    describe(merged)
    return merged, notes


def structures_to_label(structures: dict, prior: orm.SinglefileData | None) -> dict:
    """The structures whose composition (reduced formula) no prior frame has: only these need pw.x."""
    if prior is None:
        return dict(structures)
    with prior.open(mode="r") as handle:
        covered = covered_compositions(read_labelled_frames(handle))
    compositions = {
        key: composition_key(node.get_ase().get_chemical_symbols()) for key, node in structures.items()
    }
    return {key: structures[key] for key in uncovered(compositions, covered)}
