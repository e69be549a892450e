"""Sphinx directive `config-reference`: the configuration reference, generated from the pydantic schema.

Every key of the full config with its type, its description and the heuristic that fills it, so the
documentation cannot drift from the code.
"""

from __future__ import annotations

import inspect

from docutils import nodes
from docutils.parsers.rst import Directive
from pydantic import BaseModel

from aiida_autopipe.core.config import heuristics, schema

#: Key -> heuristic function that fills it (its docstring's first line is shown).
FILLED_BY = {
    "system.melting_point_guess": heuristics.melting_point_guess,
    "simulation.temperature_steps": heuristics.temperature_steps,
    "simulation.timestep_fs": heuristics.timestep_fs,
    "exploration.surrogate_md_steps": heuristics.surrogate_md_steps,
    "exploration.initial_label_budget": heuristics.initial_label_budget,
    "dft_compute.mpi_ranks": heuristics.mpi_ranks,
    "dft_compute.command": heuristics.launch_command,
    "dft_compute.magnetism": heuristics.magnetism,
    "dft_compute.smearing": heuristics.smearing,
    "dft_compute.degauss": heuristics.smearing,
    "dft_compute.max_concurrent": heuristics.max_concurrent_labels,
    "mlip_training.r_cut": heuristics.r_cut,
}


def _rows(model: type[BaseModel], prefix: str):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _rows(annotation, f"{key}.")
            continue
        heuristic = FILLED_BY.get(key)
        filled = inspect.getdoc(heuristic).splitlines()[0] if heuristic else ""
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        yield key, type_name, field.description or "", filled


class ConfigReference(Directive):
    """Render one table per section of the full config."""

    def run(self):
        result = []
        for section, field in schema.FullConfig.model_fields.items():
            if section == "decisions":
                continue
            table = nodes.table()
            group = nodes.tgroup(cols=4)
            table += group
            for width in (25, 15, 35, 35):
                group += nodes.colspec(colwidth=width)
            head = nodes.thead()
            head += _row(["key", "type", "meaning", "filled by"])
            group += head
            body = nodes.tbody()
            for row in _rows(field.annotation, f"{section}."):
                body += _row(row)
            group += body
            title = nodes.rubric(text=f"{section}: {inspect.getdoc(field.annotation).splitlines()[0]}")
            result += [title, table]
        return result


def _row(cells):
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += nodes.paragraph(text=str(cell))
        row += entry
    return row


def setup(app):
    app.add_directive("config-reference", ConfigReference)
    return {"parallel_read_safe": True}
