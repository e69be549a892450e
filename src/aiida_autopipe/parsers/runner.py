"""What the parsers of the project's runner scripts share: reading results.json, quoting stderr on a crash."""

from __future__ import annotations

import json

from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_autopipe.runners.files import RESULTS_FILE


class RunnerParser(Parser):
    """A parser for a runner that always writes results.json, and whose stdout file is `STDOUT`."""

    STDOUT = ""
    #: Exit code (with a `stderr_tail` placeholder) for a runner that wrote no results.json at all.
    NO_RESULTS = "ERROR_NO_RESULTS"

    def read_results(self, names: set[str]) -> dict | ExitCode:
        """The runner's results.json, or the exit code saying why it cannot be had."""
        if RESULTS_FILE not in names:
            return getattr(self.exit_codes, self.NO_RESULTS).format(stderr_tail=self.stderr_tail(names))
        try:
            return json.loads(self.retrieved.get_object_content(RESULTS_FILE))
        except ValueError:
            return self.exit_codes.ERROR_READING_OUTPUT

    def stderr_tail(self, names: set[str]) -> str:
        """The last 500 characters of the scheduler's stderr, or else of the runner's stdout."""
        for name in ("_scheduler-stderr.txt", self.STDOUT):
            if name in names:
                tail = self.retrieved.get_object_content(name)[-500:]
                if tail.strip():
                    return tail
        return "no stderr retrieved"
