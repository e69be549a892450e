"""Provenance wrapper for DIRECT sampling: trajectory arrays in, the selected frames out as StructureData."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.core.descriptors import compute_descriptors
from aiida_autopipe.core.direct import direct_select
from aiida_autopipe.runners.surrogate import frame_atoms

SELECTION_DEFAULTS = {
    "budget": 50,
    "k_per_cluster": 1,
    "variance_threshold": 0.9,
    "duplicate_tolerance": 1e-3,
    "seed": 0,
    "descriptor": {"kind": "soap", "r_cut": 5.0},
}


def frame_name(index: int) -> str:
    return f"frame_{index:07d}"


@calcfunction
def select_frames(trajectory: orm.ArrayData, parameters: orm.Dict) -> dict:
    """DIRECT-select frames of a surrogate trajectory; one calcfunction for all frames, not one per frame.

    Uses the trajectory's `descriptors` array when the runner computed them, else computes them here.
    Outputs `selection` (indices, cluster of each pick, summary) and one StructureData per selected frame
    (named `frame_<index>`), carrying the surrogate's energy in its attributes.
    """
    settings = {**SELECTION_DEFAULTS, **parameters.get_dict()}
    arrays = {name: trajectory.get_array(name) for name in trajectory.get_arraynames()}
    if "descriptors" in arrays:
        features = arrays["descriptors"]
        descriptor = "precomputed by the runner"
    else:
        options = dict(settings["descriptor"])
        features = compute_descriptors(
            arrays["positions"],
            arrays["numbers"],
            arrays["n_atoms"],
            arrays["cells"],
            arrays["pbc"],
            **options,
        )
        descriptor = options
    selection = direct_select(
        features,
        budget=int(settings["budget"]),
        k_per_cluster=int(settings["k_per_cluster"]),
        variance_threshold=float(settings["variance_threshold"]),
        seed=int(settings["seed"]),
        duplicate_tolerance=float(settings["duplicate_tolerance"]),
    )
    outputs = {
        "selection": orm.Dict(
            {
                **selection.summary(),
                "indices": selection.indices.tolist(),
                "cluster_of_selected": selection.cluster_of_selected.tolist(),
                "n_frames": len(features),
                "descriptor": descriptor,
            }
        )
    }
    for index in np.sort(selection.indices):
        atoms = frame_atoms(arrays, int(index))
        structure = orm.StructureData(ase=atoms)
        structure.base.attributes.set("surrogate_energy_eV", float(arrays["energies"][index]))
        structure.base.attributes.set("trajectory_frame", int(index))
        outputs[frame_name(int(index))] = structure
    return outputs
