"""The localhost Computer and the Codes every module launches.

The workflows only ever see a Computer and Codes, so moving to a Slurm cluster means registering another
Computer and pointing the same Code labels at it; nothing in the workflows changes.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from aiida import orm
from aiida.common.exceptions import NotExistent

from aiida_autopipe.core.errors import InputError

LOCALHOST = "localhost"

#: Code label -> (executable name, CalcJob plugin it runs). Labels are what workflows look codes up by.
#: pacemaker's helpers run inside the same PacemakerCalculation job, so they have no plugin of their own.
CODES = {
    "pw": ("pw.x", "quantumespresso.pw"),
    "pacemaker": ("pacemaker", "autopipe.pacemaker"),
    "pace_yaml2yace": ("pace_yaml2yace", None),
    "pace_activeset": ("pace_activeset", None),
    "pace_timing": ("pace_timing", None),
    "autopipe-surrogate": ("autopipe-surrogate", "autopipe.surrogate"),
    "autopipe-otf-md": ("autopipe-otf-md", "autopipe.otf_md"),
    "autopipe-kmc": ("autopipe-kmc", "autopipe.kmc"),
}


@dataclass(frozen=True)
class CodeReport:
    label: str
    executable: str
    created: bool


def mpirun_template(command: list[str]) -> list[str]:
    """AiiDA's mpirun command from the config's launch command: its MPI part with the rank count templated.

    ['mpirun', '--allow-run-as-root', '-np', '2', 'pw.x'] -> ['mpirun', '--allow-run-as-root', '-np',
    '{tot_num_mpiprocs}']; a command without a launcher gives the plain default.
    """
    launcher = command[:-1]
    if not launcher:
        return ["mpirun", "-np", "{tot_num_mpiprocs}"]
    template = list(launcher)
    for flag in ("-np", "-n"):
        if flag in template and template.index(flag) + 1 < len(template):
            template[template.index(flag) + 1] = "{tot_num_mpiprocs}"
            return template
    return [*template, "-np", "{tot_num_mpiprocs}"]


def ensure_localhost(workdir: Path, mpirun_command: list[str], cores: int) -> orm.Computer:
    """The localhost Computer (direct scheduler, local transport), created once and kept up to date."""
    try:
        computer = orm.load_computer(LOCALHOST)
    except NotExistent:
        computer = orm.Computer(
            label=LOCALHOST,
            hostname="localhost",
            description="This machine, through the direct scheduler (set up by mlip-pipe setup)",
            transport_type="core.local",
            scheduler_type="core.direct",
            workdir=str(workdir),
        ).store()
        computer.configure(safe_interval=0)
    computer.set_minimum_job_poll_interval(1)
    computer.set_default_mpiprocs_per_machine(cores)
    computer.set_mpirun_command(mpirun_command)
    return computer


def configure_launch(command: list[str], ranks: int) -> orm.Computer:
    """Make the localhost Computer launch MPI runs the way the full config's `dft_compute.command` says."""
    computer = orm.load_computer(LOCALHOST)
    computer.set_mpirun_command(mpirun_template(command))
    computer.set_default_mpiprocs_per_machine(ranks)
    return computer


def find_executable(name: str) -> str | None:
    """`name` on PATH, or in this Python's bin folder (where the project's own scripts live)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def ensure_code(label: str, computer: orm.Computer, executable: str | None = None) -> CodeReport:
    """An InstalledCode `label@computer` for one of `CODES`, at the given or the discovered executable."""
    name, plugin = CODES[label]
    path = executable or find_executable(name)
    if path is None or not Path(path).is_file():
        raise InputError(
            f"codes.{label}",
            f"executable '{executable or name}' not found",
            "install it (pw.x: `apt-get install quantum-espresso`) or give its absolute path",
        )
    try:
        code = orm.load_code(f"{label}@{computer.label}")
    except NotExistent:
        code = None
    if code is not None and str(code.filepath_executable) == str(path):
        return CodeReport(label, str(path), created=False)
    if code is not None:
        # A Code is immutable once stored: a moved executable gets a new Code and the old label is retired.
        code.label = f"{label}-{code.pk}"
    orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(path),
        default_calc_job_plugin=plugin,
        description=f"{name} for aiida-autopipe",
    ).store()
    return CodeReport(label, str(path), created=True)
