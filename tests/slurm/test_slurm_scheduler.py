"""Slurm's kill messages are read anywhere in stderr, not only on the first line where aiida-core looks."""

import pytest
from aiida.engine import CalcJob
from aiida.schedulers.plugins.slurm import SlurmScheduler

from aiida_autopipe.engines.slurm_scheduler import AutopipeSlurmScheduler

MPI_WARNING = "-" * 74 + "\nWARNING: a warning\n"
WALLTIME = "slurmstepd: error: *** JOB 17 ON node CANCELLED AT 2026-11-22T00:31:02 DUE TO TIME LIMIT ***\n"
MEMORY = "slurmstepd: error: Detected 1 oom_kill event in StepId=17.batch. Some processes may be killed.\n"


@pytest.mark.parametrize(
    ("stderr", "exit_code"),
    [
        (MPI_WARNING + WALLTIME, "ERROR_SCHEDULER_OUT_OF_WALLTIME"),
        (MPI_WARNING + MEMORY, "ERROR_SCHEDULER_OUT_OF_MEMORY"),
        (WALLTIME, "ERROR_SCHEDULER_OUT_OF_WALLTIME"),
    ],
)
def test_kill_messages_are_found_below_the_first_line(stderr, exit_code):
    assert AutopipeSlurmScheduler().parse_output(stderr=stderr) == CalcJob.exit_codes[exit_code]


def test_aiida_core_misses_a_time_limit_below_the_first_line():
    """The reason for the subclass; if aiida-core fixes it, the subclass can go."""
    assert SlurmScheduler().parse_output(stderr=MPI_WARNING + WALLTIME) is None


def test_an_ordinary_stderr_is_no_scheduler_error():
    assert AutopipeSlurmScheduler().parse_output(stderr=MPI_WARNING) is None
