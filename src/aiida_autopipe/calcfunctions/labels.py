"""Provenance wrappers that turn a converged pw.x run into a training label."""

import numpy as np
from aiida import orm
from aiida.engine import calcfunction
from aiida_quantumespresso.calculations.functions.create_kpoints_from_distance import (
    create_kpoints_from_distance,
)

from aiida_autopipe.core.dft_parameters import stress_gpa_to_ase

LABEL_UNITS = {
    "energy": "eV",
    "forces": "eV/Angstrom",
    "stress": "eV/Angstrom^3 (ASE sign: negative under compression)",
    "total_magnetization": "Bohr magneton per cell",
    "absolute_magnetization": "Bohr magneton per cell",
    "positions": "Angstrom",
    "cells": "Angstrom",
}


@calcfunction
def kpoint_meshes(distance: orm.Float, **structures: orm.StructureData) -> dict:
    """One k-point mesh per structure, at most `distance` (1/Angstrom) apart, by aiida-quantumespresso's own
    rule (``create_kpoints_from_distance``, no forced parity).

    One calcfunction for a whole batch instead of one per pw.x run: each costs about 20 database commits on
    the path between two pw.x jobs, while the graph still records how every mesh followed from its structure.
    """
    no_parity = orm.Bool(False)
    return {
        key: create_kpoints_from_distance.__wrapped__(structure, distance, no_parity)
        for key, structure in structures.items()
    }


@calcfunction
def relabel_kinds(structure: orm.StructureData, kind_names: orm.List) -> orm.StructureData:
    """Return the structure with one kind name per site, as pw.x needs per-kind starting magnetisations."""
    relabelled = orm.StructureData(cell=structure.cell, pbc=structure.pbc)
    for site, kind_name in zip(structure.sites, kind_names.get_list(), strict=True):
        symbol = structure.get_kind(site.kind_name).symbol
        relabelled.append_atom(position=site.position, symbols=symbol, name=kind_name)
    return relabelled


@calcfunction
def assemble_label(
    structure: orm.StructureData,
    output_parameters: orm.Dict,
    output_trajectory: orm.TrajectoryData,
    provenance: orm.Dict,
) -> orm.TrajectoryData:
    """Return a one-frame TrajectoryData holding the structure and its label in eV, eV/A, eV/A^3.

    Its inputs are the outputs of one converged PwCalculation, so every label links back to the pw.x run. The
    ``provenance`` Dict carries what the labeling workflow decided (magnetic state, stage) and is copied into
    the label's attributes.
    """
    parameters = output_parameters.get_dict()
    symbols = [structure.get_kind(site.kind_name).symbol for site in structure.sites]
    positions = np.array([site.position for site in structure.sites])

    label = orm.TrajectoryData()
    label.set_trajectory(
        symbols=symbols, positions=positions[None], cells=np.array(structure.cell)[None], pbc=structure.pbc
    )
    label.set_array("energy", np.array([parameters["energy"]]))
    label.set_array("forces", output_trajectory.get_array("forces")[-1:].copy())
    stress = np.array(stress_gpa_to_ase(output_trajectory.get_array("stress")[-1]))
    label.set_array("stress", stress[None])
    label.set_array("total_magnetization", _magnetization(parameters, "total_magnetization"))
    label.set_array("absolute_magnetization", _magnetization(parameters, "absolute_magnetization"))
    label.base.attributes.set("units", LABEL_UNITS)
    label.base.attributes.set("kind_names", [site.kind_name for site in structure.sites])
    for key, value in provenance.get_dict().items():
        label.base.attributes.set(key, value)
    return label


def _magnetization(parameters, key):
    """Magnetisation of the final SCF step: a scalar (collinear), the vector norm (non-collinear), 0 (no
    spin)."""
    value = parameters.get(key, 0.0)
    if isinstance(value, list):
        value = float(np.linalg.norm(value))
    return np.array([value])
