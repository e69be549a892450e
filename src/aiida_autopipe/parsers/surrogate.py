"""``SurrogateParser``: trajectory arrays, run records, relaxed and generated structures of a job."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_autopipe.calcfunctions.structures import GENERATION_ATTRIBUTE, link_label
from aiida_autopipe.parsers.runner import RunnerParser
from aiida_autopipe.runners.surrogate import TRAJECTORY_FILE, frame_atoms

STATUS_EXIT_CODES = {
    "invalid_input": "ERROR_INVALID_INPUT",
    "surrogate_unavailable": "ERROR_SURROGATE_UNAVAILABLE",
}


class SurrogateParser(RunnerParser):
    """Map results.json's status to exit codes; store all frames as one ArrayData."""

    STDOUT = "surrogate.out"
    NO_RESULTS = "ERROR_MISSING_OUTPUT"

    def parse(self, **kwargs):
        names = set(self.retrieved.list_object_names())
        results = self.read_results(names)
        if isinstance(results, ExitCode):
            return results
        status = results.get("status")
        if status in STATUS_EXIT_CODES:
            self.out("output_parameters", orm.Dict(results))
            return getattr(self.exit_codes, STATUS_EXIT_CODES[status]).format(
                message=results.get("message", "")
            )
        try:
            content = self.retrieved.get_object_content(TRAJECTORY_FILE, mode="rb")
            arrays = dict(np.load(io.BytesIO(content)))
        except (OSError, ValueError, FileNotFoundError):
            return self.exit_codes.ERROR_READING_OUTPUT

        trajectory = orm.ArrayData()
        for name, array in arrays.items():
            trajectory.set_array(name, array)
        self.out("trajectory", trajectory)
        self.out("output_parameters", orm.Dict(results))
        relaxed = relaxed_structures(results, arrays)
        if relaxed:
            self.out("relaxed_structures", relaxed)
        generated = generated_structures(results, arrays)
        if generated:
            self.out("generated_structures", generated)
        if status == "all_unstable":
            return self.exit_codes.ERROR_ALL_RUNS_UNSTABLE
        return None


def relaxed_structures(results: dict, arrays: dict[str, np.ndarray]) -> dict[str, orm.StructureData]:
    """Last frame of every relaxation that did not blow up, keyed by the seed structure's label."""
    structures = {}
    for record in results.get("runs", []):
        if record["kind"] == "relax" and record["status"] != "unstable" and record["n_frames"]:
            atoms = frame_atoms(arrays, record["first_frame"] + record["n_frames"] - 1)
            structures[record["structure_label"]] = orm.StructureData(ase=atoms)
    return structures


def generated_structures(results: dict, arrays: dict[str, np.ndarray]) -> dict[str, orm.StructureData]:
    """Every structure a melt_quench or normal_modes run made, keyed by its label and tagged with how it was
    made (the same attribute as the surrogate-free seed structures)."""
    structures = {}
    for record in results.get("runs", []):
        for made in record.get("structures", []):
            node = orm.StructureData(ase=frame_atoms(arrays, made["frame"]))
            tags = {key: made[key] for key in ("method", "label", "parent", "temperature", "details")}
            node.base.attributes.set(GENERATION_ATTRIBUTE, {**tags, "strain": None})
            structures[link_label(made["label"])] = node
    return structures
