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
    "autopipe-validate": ("autopipe-validate", "autopipe.validation"),
}

#: Threads per pw.x process unless the job's `environment_variables` set OMP_NUM_THREADS. Debian's pw.x links
#: the pthread OpenBLAS, which starts a worker per core of its affinity mask: one under mpirun's default core
#: binding, but every core for a single-rank job (run without mpirun) and for each of several concurrent jobs,
#: which then compete for the same cores. pw.x's parallelism is its MPI ranks and the concurrent jobs.
PW_PREPEND_TEXT = "\n".join(
    [
        'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"',
        'export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$OMP_NUM_THREADS}"',
        'export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"',
    ]
)

#: Code label -> lines its jobs run before the executable.
CODE_PREPEND_TEXT = {"pw": PW_PREPEND_TEXT}

#: Seconds between two scheduler polls of a Computer on this machine. A poll cost the daemon worker about
#: 27 ms of CPU (fork, shell, `ps`, four commits per job), which competes with pw.x for the cores, while a
#: finished job waits half an interval on average to be noticed: for a 45-100 s pw.x run on 2 busy cores,
#: 0.5 s cost 2.6 s per label, 1 s 1.7 s, 2 s 1.6 s. With a core to spare, 1 s notices a job 0.5 s sooner
#: than 2 s for about 0.5 s more worker CPU per 40 s label, which reusing the parser's XML schema saved
#: (workflows.pw_base); hour-long jobs would favour longer intervals. One poll covers every job.
JOB_POLL_INTERVAL = 1.0


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


def ensure_localhost(
    workdir: Path,
    mpirun_command: list[str],
    cores: int,
    label: str = LOCALHOST,
    scheduler_type: str = "core.direct",
) -> orm.Computer:
    """A Computer on this machine (local transport; the direct scheduler, or `core.slurm` for the local
    Slurm of `engines.slurm`), created once and kept up to date."""
    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = orm.Computer(
            label=label,
            hostname="localhost",
            description=f"This machine, through {scheduler_type} (set up by mlip-pipe setup)",
            transport_type="core.local",
            scheduler_type=scheduler_type,
            workdir=str(workdir),
        ).store()
    # No login shell: here it ran pyenv's start-up on every submit and poll (0.4 s each), and the daemon's own
    # environment is already the user's. No wait between transport openings: the transport is this machine.
    computer.configure(safe_interval=0, use_login_shell=False)
    computer.set_minimum_job_poll_interval(JOB_POLL_INTERVAL)
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
    prepend_text = CODE_PREPEND_TEXT.get(label, "")
    if code is not None and (str(code.filepath_executable), code.prepend_text) == (str(path), prepend_text):
        return CodeReport(label, str(path), created=False)
    if code is not None:
        # A Code is immutable once stored: a moved executable or a new job environment gets a new Code and
        # the old label is retired.
        code.label = f"{label}-{code.pk}"
    orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(path),
        default_calc_job_plugin=plugin,
        description=f"{name} for aiida-autopipe",
        prepend_text=prepend_text,
    ).store()
    return CodeReport(label, str(path), created=True)
