"""``KmcParser``: results as a Dict, the recorded trajectory as one ArrayData, uncertain saddles with their
per-atom gamma, the status as an exit code."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_autopipe.parsers.runner import RunnerParser
from aiida_autopipe.runners.kmc import GAMMA_ARRAY, TRAJECTORY_FILE, UNCERTAIN_SADDLES_FILE


class KmcParser(RunnerParser):
    """Attach whatever the runner wrote, then map its status to an exit code."""

    STDOUT = "kmc.out"

    def parse(self, **kwargs):
        names = set(self.retrieved.list_object_names())
        results = self.read_results(names)
        if isinstance(results, ExitCode):
            return results
        self.out("output_parameters", orm.Dict(results))
        if results.get("status") == "invalid_input":
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=results.get("message", ""))
        if TRAJECTORY_FILE not in names:
            return self.exit_codes.ERROR_MISSING_TRAJECTORY
        try:
            content = self.retrieved.get_object_content(TRAJECTORY_FILE, mode="rb")
            with np.load(io.BytesIO(content)) as arrays:
                trajectory = orm.ArrayData({name: arrays[name] for name in arrays.files})
        except (OSError, ValueError, zipfile.BadZipFile):
            return self.exit_codes.ERROR_READING_OUTPUT
        self.out("trajectory", trajectory)
        if UNCERTAIN_SADDLES_FILE in names:
            exit_code = self._attach_uncertain_saddles()
            if exit_code:
                return exit_code
        if results.get("status") == "stalled":
            return self.exit_codes.ERROR_STALLED.format(message=results.get("message", ""))
        return None

    def _attach_uncertain_saddles(self):
        from ase.io import read

        text = self.retrieved.get_object_content(UNCERTAIN_SADDLES_FILE)
        try:
            saddles = read(io.StringIO(text), index=":", format="extxyz") if text.strip() else []
            gammas = [np.asarray(saddle.arrays[GAMMA_ARRAY], dtype=float) for saddle in saddles]
        except (ValueError, KeyError):
            return self.exit_codes.ERROR_READING_OUTPUT
        structures, gamma_nodes = {}, {}
        for index, (saddle, gamma) in enumerate(zip(saddles, gammas, strict=True)):
            structures[f"saddle_{index}"] = orm.StructureData(ase=saddle)
            gamma_nodes[f"saddle_{index}"] = orm.ArrayData({GAMMA_ARRAY: gamma})
        self.out("uncertain_saddles", structures)
        self.out("uncertain_gammas", gamma_nodes)
        return None
