"""Sphinx directive `config-reference`: the configuration reference, generated from the pydantic schema.

Every key of the full config with its type, its description, the value it takes by default and the reason
recorded for it (a heuristic's first docstring line where one fills it), so the documentation cannot drift
from the code. The defaults are those of a real expansion of `REFERENCE_INPUT` on `REFERENCE_MACHINE`.
"""

from __future__ import annotations

import inspect

from docutils import nodes
from docutils.parsers.rst import Directive
from pydantic import BaseModel

from aiida_autopipe.core.config import heuristics, schema
from aiida_autopipe.core.config.expand import Environment, PseudoFamilyFacts, expand_config

#: The input whose expansion gives the "default" column: silicon, nothing else written.
REFERENCE_INPUT = {"system": {"elements": ["Si"]}}
#: A 2-core workstation without GPU, as root, with SSSP installed.
REFERENCE_MACHINE = Environment(
    physical_cores=2,
    is_root=True,
    pw_executable="/usr/bin/pw.x",
    pseudo_family=PseudoFamilyFacts(
        "SSSP/1.3/PBE/efficiency", "aiida-pseudo", "SSSP is installed", {"Si": (30.0, 240.0)}
    ),
)

#: Key -> heuristic function that fills it (its docstring's first line is shown).
FILLED_BY = {
    "system.melting_point_guess": heuristics.melting_point_guess,
    "simulation.temperature_steps": heuristics.temperature_steps,
    "simulation.timestep_fs": heuristics.timestep_fs,
    "exploration.surrogate_md_steps": heuristics.surrogate_md_steps,
    "exploration.liquid_seeds": heuristics.liquid_seeds,
    "exploration.initial_label_budget": heuristics.initial_label_budget,
    "dft_compute.mpi_ranks": heuristics.mpi_ranks,
    "dft_compute.command": heuristics.launch_command,
    "dft_compute.magnetism": heuristics.magnetism,
    "dft_compute.smearing": heuristics.smearing,
    "dft_compute.degauss": heuristics.smearing,
    "dft_compute.max_concurrent": heuristics.max_concurrent_labels,
    "mlip_training.r_cut": heuristics.r_cut,
    "resources.surrogate.gpus": heuristics.runner_gpus,
    "resources.otf_md.gpus": heuristics.runner_gpus,
}
for _role in ("surrogate", "pacemaker", "otf_md"):
    FILLED_BY[f"resources.{_role}.omp_threads"] = heuristics.runner_threads
for _role in ("pw", "surrogate", "pacemaker", "otf_md"):
    FILLED_BY[f"resources.{_role}.walltime_seconds"] = heuristics.job_walltime_seconds


#: Keys the expansion records no decision for: optional inputs and facts that come with another key.
NOT_DECIDED = {
    "system.structure_file": "optional: only when given in input.yaml",
    "dft_compute.pseudo_dir": "optional: only when given in input.yaml",
    "dft_compute.pseudo_family_source": "comes with dft_compute.pseudo_family",
}


def _reference():
    """(values, reasons) of the reference expansion: the full config as a mapping, decisions by key."""
    config = expand_config(REFERENCE_INPUT, REFERENCE_MACHINE)
    return config.model_dump(mode="json"), {d.key: d.reason for d in config.decisions}


def _lookup(values: dict, key: str):
    for part in key.split("."):
        values = values[part]
    return values


def _reason(reasons: dict, key: str) -> str:
    """The recorded reason of `key`, or of the nearest parent key recorded as a whole (e.g. a mapping)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        reason = reasons.get(".".join(parts[:end]))
        if reason is not None:
            return reason
    return ""


def _rows(model: type[BaseModel], prefix: str, values: dict, reasons: dict):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _rows(annotation, f"{key}.", values, reasons)
            continue
        heuristic = FILLED_BY.get(key)
        filled = inspect.getdoc(heuristic).splitlines()[0] if heuristic else _reason(reasons, key)
        filled = filled or NOT_DECIDED.get(key, "")
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        default = _lookup(values, key)
        yield key, type_name, field.description or "", _format(default), filled


def _format(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value < 1e-3:
        return f"{value:g}"
    return str(value)


class ConfigReference(Directive):
    """Render one table per section of the full config."""

    def run(self):
        result = []
        values, reasons = _reference()
        for section, field in schema.FullConfig.model_fields.items():
            if section == "decisions":
                continue
            table = nodes.table()
            group = nodes.tgroup(cols=5)
            table += group
            for width in (22, 12, 28, 13, 25):
                group += nodes.colspec(colwidth=width)
            head = nodes.thead()
            head += _row(["key", "type", "meaning", "default", "filled by"])
            group += head
            body = nodes.tbody()
            for row in _rows(field.annotation, f"{section}.", values, reasons):
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
