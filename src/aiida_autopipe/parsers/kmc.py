"""``KmcParser``: results as a Dict, the recorded trajectory as one ArrayData, the status as an exit code."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from aiida import orm
from aiida.parsers import Parser

from aiida_autopipe.runners.files import RESULTS_FILE
from aiida_autopipe.runners.kmc import TRAJECTORY_FILE


class KmcParser(Parser):
    """Attach whatever the runner wrote, then map its status to an exit code."""

    def parse(self, **kwargs):
        names = set(self.retrieved.list_object_names())
        if RESULTS_FILE not in names:
            return self.exit_codes.ERROR_NO_RESULTS.format(stderr_tail=self._stderr_tail(names))
        try:
            results = json.loads(self.retrieved.get_object_content(RESULTS_FILE))
        except ValueError:
            return self.exit_codes.ERROR_READING_OUTPUT
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

    def _stderr_tail(self, names: set[str]) -> str:
        for name in ("_scheduler-stderr.txt", "kmc.out"):
            if name in names:
                tail = self.retrieved.get_object_content(name)[-500:]
                if tail.strip():
                    return tail
        return "no stderr retrieved"
