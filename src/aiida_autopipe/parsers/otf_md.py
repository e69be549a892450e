"""``OtfMdParser``: results, the gamma trace, the halting frame with its per-atom gamma, embedded clusters."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_autopipe.calcfunctions.embedding import cluster_structure
from aiida_autopipe.parsers.runner import RunnerParser
from aiida_autopipe.runners.otf_md import (
    CLUSTERS_FILE,
    FINAL_FRAME_FILE,
    GAMMA_ARRAY,
    HALTING_FRAME_FILE,
)

STATUS_EXIT_CODES = {
    "invalid_input": "ERROR_INVALID_INPUT",
    "unstable": "ERROR_MD_UNSTABLE",
    "embedding_failed": "ERROR_EMBEDDING_FAILED",
}


class OtfMdParser(RunnerParser):
    """Map the runner's status to exit codes; the max-gamma trace goes to an ArrayData, not the Dict."""

    STDOUT = "otf_md.out"

    def parse(self, **kwargs):
        names = set(self.retrieved.list_object_names())
        results = self.read_results(names)
        if isinstance(results, ExitCode):
            return results
        trace = orm.ArrayData()
        trace.set_array("steps", np.array(results.pop("gamma_trace_steps", []), dtype=int))
        trace.set_array("max_gamma", np.array(results.pop("gamma_trace_max", []), dtype=float))
        self.out("output_parameters", orm.Dict(results))
        self.out("gamma_trace", trace)
        status = results.get("status")
        if status == "invalid_input":
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=results.get("message", ""))

        if FINAL_FRAME_FILE not in names:
            return self.exit_codes.ERROR_MISSING_FINAL_FRAME
        try:
            final = self._frames(FINAL_FRAME_FILE)[0]
        except (ValueError, IndexError):
            return self.exit_codes.ERROR_READING_OUTPUT
        self.out("final_structure", orm.StructureData(ase=final))
        if results.get("halted"):
            if HALTING_FRAME_FILE not in names:
                return self.exit_codes.ERROR_MISSING_HALTING_FRAME
            try:
                halting = self._frames(HALTING_FRAME_FILE)[0]
                gamma = np.asarray(halting.arrays[GAMMA_ARRAY], dtype=float)
            except (ValueError, IndexError, KeyError):
                return self.exit_codes.ERROR_READING_OUTPUT
            gamma_node = orm.ArrayData()
            gamma_node.set_array(GAMMA_ARRAY, gamma)
            self.out("halting_structure", orm.StructureData(ase=halting))
            self.out("halting_gamma", gamma_node)
        if status in STATUS_EXIT_CODES:  # after the frames, so a failed embedding still hands them back
            return getattr(self.exit_codes, STATUS_EXIT_CODES[status]).format(
                message=results.get("message", "")
            )
        if CLUSTERS_FILE in names:
            clusters = self._frames(CLUSTERS_FILE)
            self.out(
                "clusters", {f"cluster_{i}": cluster_structure(atoms) for i, atoms in enumerate(clusters)}
            )
        return None

    def _frames(self, name: str) -> list:
        from ase.io import read

        return read(io.StringIO(self.retrieved.get_object_content(name)), index=":", format="extxyz")
