"""Dataset groups and reuse across systems: the A and B datasets start an A-B run, each label once.

The frames are Module D's real pw.x Si labels with their species renamed to Ge and Sn: the energies mean
nothing for those elements, but what is tested here is only which frames are found, merged and skipped.
"""

import numpy as np
import pytest
from aiida import orm
from reporting_helpers import DFT_COMPUTE, SI_LABELS

from aiida_autopipe.calcfunctions.dataset import dataset_node
from aiida_autopipe.core.pacemaker_input import read_labelled_frames
from aiida_autopipe.reporting.registry import (
    group_label,
    prior_dataset,
    register_dataset,
    registered_datasets,
    structures_to_label,
)


def frames_of(symbols_per_frame, tag):
    frames = []
    for index, (atoms, symbols) in enumerate(
        zip(read_labelled_frames(SI_LABELS), symbols_per_frame, strict=False)
    ):
        atoms.set_chemical_symbols(symbols)
        atoms.info["label_uuid"] = f"{tag}-{index}"
        frames.append(atoms)
    return frames


def stored(frames):
    node = dataset_node(frames)
    node.store()
    return node


@pytest.fixture(scope="module")
def datasets(aiida_profile):
    germanium = frames_of([["Ge", "Ge"]] * 4, "ge")
    tin = frames_of([["Sn", "Sn"]] * 3, "sn")
    mixed = germanium[:2] + frames_of([["Ge", "Sn"]] * 2, "gesn")  # an earlier Ge-Sn run reused two Ge labels
    nodes = {
        "Ge": stored(germanium),
        "Sn": stored(tin),
        "Ge-Sn": stored(mixed),
        "C-Ge": stored(frames_of([["C", "Ge"]] * 2, "cge")),
        "Ge other settings": stored(frames_of([["Ge", "Ge"]] * 2, "ge-other")),
    }
    for name, node in nodes.items():
        settings = {**DFT_COMPUTE, "ecutwfc": 99.0} if name == "Ge other settings" else DFT_COMPUTE
        register_dataset(node, settings)
    return nodes


def test_datasets_sit_in_the_group_of_their_chemical_system(datasets):
    assert group_label(["Sn", "Ge"]) == "autopipe/datasets/Ge-Sn"
    group = orm.load_group("autopipe/datasets/Ge-Sn")
    assert [node.uuid for node in group.nodes] == [datasets["Ge-Sn"].uuid]
    register_dataset(datasets["Ge-Sn"], DFT_COMPUTE)  # idempotent
    assert group.count() == 1


def test_lookup_returns_only_subsets_of_the_elements(datasets):
    found = {node.uuid for node in registered_datasets(["Ge", "Sn"])}
    expected = {datasets[name].uuid for name in ("Ge", "Sn", "Ge-Sn", "Ge other settings")}
    assert found == expected
    assert {node.uuid for node in registered_datasets(["Sn"])} == {datasets["Sn"].uuid}


def test_prior_dataset_merges_compatible_frames_once_and_skips_other_settings(datasets):
    prior, notes = prior_dataset(["Sn", "Ge"], DFT_COMPUTE)
    with prior.open(mode="r") as handle:
        frames = read_labelled_frames(handle)
    assert prior.base.extras.get("number_of_frames") == 4 + 3 + 2  # the two reused Ge labels counted once
    assert prior.base.extras.get("elements") == ["Ge", "Sn"]
    assert sorted({atoms.info["label_uuid"].split("-")[0] for atoms in frames}) == ["ge", "gesn", "sn"]
    assert any("ecutwfc: 99.0 != 30.0" in note for note in notes)
    inputs = {link.link_label for link in prior.creator.base.links.get_incoming().all()}
    assert inputs >= {f"dataset_{datasets[name].pk}" for name in ("Ge", "Sn", "Ge-Sn")}

    structures = {
        "ge": _structure(["Ge"] * 4),
        "gesn": _structure(["Ge", "Sn"]),
        "ge3sn": _structure(["Ge"] * 3 + ["Sn"]),
    }
    assert sorted(structures_to_label(structures, prior)) == ["ge3sn"]
    assert structures_to_label(structures, None) == structures


def test_nothing_to_reuse_gives_no_prior_dataset(datasets):
    prior, notes = prior_dataset(["Pb"], DFT_COMPUTE)
    assert prior is None and notes == []


def _structure(symbols):
    structure = orm.StructureData(cell=np.eye(3) * 6.0)
    for index, symbol in enumerate(symbols):
        structure.append_atom(position=(1.4 * index, 0, 0), symbols=symbol)
    return structure
