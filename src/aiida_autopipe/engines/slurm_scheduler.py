"""aiida-core's Slurm scheduler, reading Slurm's kill messages anywhere in the job's stderr.

Without `sacct` (no accounting, as on the single-node Slurm of `mlip-pipe setup --slurm` and on many small
clusters), aiida-core 2.9 recognises a wall-time or memory kill only when Slurm's message is the first line
of stderr (`re.match`). Any earlier line, such as an MPI warning, hides it, and the job is then handled as a
crash instead of by the wall-time or out-of-memory handler.
"""

from __future__ import annotations

import re

from aiida.engine import CalcJob, ExitCode
from aiida.schedulers.plugins.slurm import SlurmScheduler

#: Slurm's messages (lower case) and the exit code each means.
KILL_MESSAGES = (
    (re.compile(r"exceeded .*memory limit|oom[-_ ]kill event"), "ERROR_SCHEDULER_OUT_OF_MEMORY"),
    (re.compile(r"cancelled at .* due to time limit"), "ERROR_SCHEDULER_OUT_OF_WALLTIME"),
)


class AutopipeSlurmScheduler(SlurmScheduler):
    """`core.slurm`, plus a search of every stderr line for Slurm's wall-time and memory kills."""

    def parse_output(self, detailed_job_info=None, stdout=None, stderr=None) -> ExitCode | None:
        exit_code = super().parse_output(detailed_job_info, stdout, stderr)
        if exit_code is not None or not stderr:
            return exit_code
        text = stderr.lower()
        for pattern, name in KILL_MESSAGES:
            if pattern.search(text):
                return CalcJob.exit_codes[name]
        return None
