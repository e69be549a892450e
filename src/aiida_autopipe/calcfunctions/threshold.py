"""Provenance wrappers for the dynamic gamma threshold (REQ-E-01): training-set gammas, then the threshold.

The threshold of each generation is a stored Dict linked to the gammas it came from, so the history of the
threshold (lenient early, strict when mature) can be queried and plotted per generation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.core.pacemaker_input import read_labelled_frames
from aiida_autopipe.core.threshold import DEFAULT_CEILING, DEFAULT_FLOOR, resolve_threshold

GAMMA_ARRAY = "gamma"


def per_atom_gammas(potential_path: str, active_set_path: str, frames) -> np.ndarray:
    """Per-atom gamma of every atom of `frames` (ACE alone: the reference has no extrapolation grade)."""
    from aiida_autopipe.core.baseline import make_ace_calculator

    calculator = make_ace_calculator(potential_path, active_set_path)
    gammas = []
    for atoms in frames:
        copy = atoms.copy()
        calculator.calculate(copy, properties=("energy",))
        gammas.append(np.array(calculator.results["gamma"], dtype=float))
    return np.concatenate(gammas) if gammas else np.zeros(0)


@calcfunction
def training_set_gammas(
    potential: orm.SinglefileData, active_set: orm.SinglefileData, dataset: orm.SinglefileData
) -> orm.ArrayData:
    """Per-atom gamma of the current potential over its training set (labelled extxyz)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for node, name in ((potential, "potential.yaml"), (active_set, "potential.asi")):
            paths[name] = Path(tmp) / name
            paths[name].write_bytes(node.get_content(mode="rb"))
        with dataset.as_path() as dataset_path:
            frames = read_labelled_frames(dataset_path)
        gammas = per_atom_gammas(str(paths["potential.yaml"]), str(paths["potential.asi"]), frames)
    result = orm.ArrayData()
    result.set_array(GAMMA_ARRAY, gammas)
    return result


@calcfunction
def generation_threshold(
    setting: orm.Dict, generation: orm.Int, gammas: orm.ArrayData | None = None
) -> orm.Dict:
    """The threshold of one generation with how it was obtained (`ThresholdRecord`).

    ``setting``: ``uncertainty_threshold`` ('dynamic_<P>percentile' or a fixed gamma), optional
    ``gamma_floor`` and ``gamma_ceiling``. ``gammas`` (array ``gamma``) is needed for a dynamic setting.
    """
    values = setting.get_dict()
    record = resolve_threshold(
        values["uncertainty_threshold"],
        gammas.get_array(GAMMA_ARRAY) if gammas is not None else None,
        generation=generation.value,
        floor=float(values.get("gamma_floor", DEFAULT_FLOOR)),
        ceiling=float(values.get("gamma_ceiling", DEFAULT_CEILING)),
    )
    return orm.Dict(record.as_dict())
