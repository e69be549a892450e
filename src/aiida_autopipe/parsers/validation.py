"""``ValidationParser``: the validation report as a Dict, the RDF curves and parity values as ArrayData."""

from __future__ import annotations

import io

import numpy as np
from aiida import orm
from aiida.engine import ExitCode

from aiida_autopipe.parsers.runner import RunnerParser
from aiida_autopipe.runners.validate import PARITY_FILE, RDF_FILE


class ValidationParser(RunnerParser):
    """The report always comes out (also when a section failed); the arrays when the runner wrote them."""

    STDOUT = "validation.out"

    def parse(self, **kwargs):
        names = set(self.retrieved.list_object_names())
        results = self.read_results(names)
        if isinstance(results, ExitCode):
            return results
        if results.get("status") == "invalid_input":
            return self.exit_codes.ERROR_INVALID_INPUT.format(message=results.get("message", ""))
        if "report" not in results:
            return self.exit_codes.ERROR_READING_OUTPUT
        self.out("report", orm.Dict({"status": results["status"], **results["report"]}))
        for link, filename in (("rdf", RDF_FILE), ("parity", PARITY_FILE)):
            if filename in names:
                arrays = self._arrays(filename)
                if arrays is None:
                    return self.exit_codes.ERROR_READING_OUTPUT
                self.out(link, arrays)
        if results.get("status") == "section_failed":
            return self.exit_codes.ERROR_SECTION_FAILED.format(message=results.get("message", ""))
        return None

    def _arrays(self, filename: str) -> orm.ArrayData | None:
        try:
            content = self.retrieved.get_object_content(filename, mode="rb")
            with np.load(io.BytesIO(content)) as data:
                node = orm.ArrayData()
                for name in data.files:
                    node.set_array(name, data[name])
        except (OSError, ValueError):
            return None
        return node
