"""``KmcParser``: results as a Dict, the recorded trajectory as one ArrayData, the status as an exit code."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_autopipe.parsers.runner import RunnerParser
from aiida_autopipe.runners.kmc import TRAJECTORY_FILE


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
        if results.get("status") == "stalled":
            return self.exit_codes.ERROR_STALLED.format(message=results.get("message", ""))
        return None
