"""The labelled dataset: one extxyz node that grows generation by generation, linked to every label.

Each label is a one-frame TrajectoryData made from a PwCalculation's outputs, so the dataset built here
traces back to every pw.x run that fed it. Its extras (elements, frame and atom counts) make it findable with
a QueryBuilder, also after it was imported from someone else's archive.
"""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from ase import Atoms

from aiida_autopipe.calcfunctions.cluster_attributes import FORCE_WEIGHTS_ATTRIBUTE
from aiida_autopipe.core.pacemaker_input import read_labelled_frames, write_labelled_frames

DATASET_FILENAME = "dataset.extxyz"


def frame_from_label(label: orm.TrajectoryData, force_weights: np.ndarray | None = None) -> Atoms:
    """An ASE frame in the labelled-extxyz format from a one-frame label (eV, eV/A, eV/A^3)."""
    atoms = Atoms(
        symbols=label.symbols,
        positions=label.get_array("positions")[0],
        cell=label.get_array("cells")[0],
        pbc=True,
    )
    atoms.info["energy"] = float(label.get_array("energy")[0])
    atoms.info["stress"] = np.asarray(label.get_array("stress")[0])
    atoms.info["label_uuid"] = label.uuid
    atoms.arrays["forces"] = np.asarray(label.get_array("forces")[0])
    if force_weights is not None:
        atoms.arrays["force_weight"] = np.asarray(force_weights, dtype=float)
        # The energy of a cut-out cluster includes its buffer and caps: only its core forces are labels.
        atoms.info["energy_weight"] = 0.0 if np.any(force_weights == 0) else 1.0
    return atoms


def dataset_node(frames: list[Atoms]) -> orm.SinglefileData:
    """An unstored extxyz SinglefileData with its searchable extras set once stored."""
    handle = io.StringIO()
    write_labelled_frames(frames, handle)
    node = orm.SinglefileData(io.BytesIO(handle.getvalue().encode()), filename=DATASET_FILENAME)
    return node


def describe(node: orm.SinglefileData) -> dict:
    """Elements and counts of a stored dataset, set as extras so datasets can be found by chemistry."""
    with node.open(mode="r") as handle:
        frames = read_labelled_frames(handle)
    elements = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
    extras = {
        "autopipe_dataset": True,
        "elements": elements,
        "chemical_system": "-".join(elements),
        "number_of_frames": len(frames),
        "number_of_atoms": int(sum(len(atoms) for atoms in frames)),
    }
    node.base.extras.set_many(extras)
    return extras


@calcfunction
def extend_dataset(previous: orm.SinglefileData | None = None, **labels: orm.Data) -> orm.SinglefileData:
    """The previous dataset (if any) plus one frame per label.

    A `<key>_source` StructureData beside label `<key>` is the structure it was computed for; its
    `autopipe_force_weights` attribute (set on embedded clusters) masks buffer and cap atoms.
    """
    frames = []
    if previous is not None:
        with previous.open(mode="r") as handle:
            frames.extend(read_labelled_frames(handle))
    for key in sorted(labels):
        if key.endswith("_source"):
            continue
        source = labels.get(f"{key}_source")
        weights = None if source is None else source.base.attributes.get(FORCE_WEIGHTS_ATTRIBUTE, None)
        frames.append(frame_from_label(labels[key], None if weights is None else np.asarray(weights)))
    return dataset_node(frames)
