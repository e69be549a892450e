"""Provenance wrapper for the periodic embedding: halting frame + per-atom gamma -> clusters to label.

Each cluster is a StructureData whose attributes (named in calcfunctions.cluster_attributes) carry what
labelling and training need, so no extra node per cluster: ``autopipe_force_weights`` (1 core, 0 buffer and
caps), ``autopipe_regions`` ('core', 'buffer', 'cap'), ``autopipe_tot_charge`` (pw.x ``tot_charge``; non-zero
only where the ionic neutralisation fell back to a uniform background) and ``autopipe_charge_method``. The
cut-out itself takes well under a second; the buffer relaxation with a surrogate (minutes on a CPU) runs in
the OTF MD job instead (see the runner).
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.calcfunctions.cluster_attributes import (
    CHARGE_METHOD_ATTRIBUTE,
    EMBEDDING_ATTRIBUTE,
    FORCE_WEIGHTS_ATTRIBUTE,
    REGIONS_ATTRIBUTE,
    TOT_CHARGE_ATTRIBUTE,
)
from aiida_autopipe.core.embedding.embed import REGION_ARRAY, WEIGHT_ARRAY
from aiida_autopipe.runners.otf_md import EMBEDDING_DEFAULTS, GAMMA_ARRAY, embed_frame


def _plain(value):
    """extxyz gives NumPy scalars and arrays back; attributes take plain JSON types."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def cluster_structure(atoms) -> orm.StructureData:
    """An embedded cluster (ASE Atoms from `embed_frame`) as StructureData with its weights and decisions."""
    structure = orm.StructureData(ase=atoms)
    attributes = structure.base.attributes
    attributes.set(FORCE_WEIGHTS_ATTRIBUTE, [float(w) for w in atoms.arrays[WEIGHT_ARRAY]])
    attributes.set(REGIONS_ATTRIBUTE, [str(r) for r in atoms.arrays[REGION_ARRAY]])
    attributes.set(TOT_CHARGE_ATTRIBUTE, float(atoms.info.get("autopipe_tot_charge", 0.0)))
    attributes.set(CHARGE_METHOD_ATTRIBUTE, str(atoms.info.get("autopipe_charge_method", "not_applicable")))
    attributes.set(
        EMBEDDING_ATTRIBUTE,
        {
            key.removeprefix("autopipe_"): _plain(value)
            for key, value in atoms.info.items()
            if key.startswith("autopipe_") and key not in ("autopipe_tot_charge", "autopipe_charge_method")
        },
    )
    return structure


def cluster_summary(structure: orm.StructureData) -> dict:
    """What was done to one cluster, for the work chain's summary."""
    regions = structure.base.attributes.get(REGIONS_ATTRIBUTE)
    return {
        "n_atoms": len(regions),
        "n_core": regions.count("core"),
        "n_buffer": regions.count("buffer"),
        "n_caps": regions.count("cap"),
        "charge_method": structure.base.attributes.get(CHARGE_METHOD_ATTRIBUTE),
        "tot_charge": structure.base.attributes.get(TOT_CHARGE_ATTRIBUTE),
        **structure.base.attributes.get(EMBEDDING_ATTRIBUTE),
    }


@calcfunction
def embed_halting_frame(
    structure: orm.StructureData, gamma: orm.ArrayData, threshold: orm.Float, parameters: orm.Dict
) -> dict:
    """Cut the uncertain regions of a halted frame into periodic clusters (core + buffer + caps/counter-ions).

    ``parameters``: r_cut (Angstrom), bonding ('alloy', 'covalent', 'ionic', 'molecule'), buffer_width,
    vacuum, formal_charges. Outputs ``cluster_<i>`` (StructureData, see the module docstring); no buffer
    relaxation here.
    """
    embedding = {**EMBEDDING_DEFAULTS, **parameters.get_dict(), "relax": None}
    frames = embed_frame(structure.get_ase(), gamma.get_array(GAMMA_ARRAY), threshold.value, embedding)
    return {f"cluster_{index}": cluster_structure(atoms) for index, atoms in enumerate(frames)}
