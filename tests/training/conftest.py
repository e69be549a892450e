"""Fixtures for the training tests: real pw.x Si labels, pacemaker's executables as AiiDA codes.

Fits are shared per module (each costs tens of seconds on two shared cores), so the computer and codes are
module-scoped too, made here rather than with aiida-core's function-scoped factories.
"""

import sys
import uuid
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "si_pwx_labels.extxyz"
BIN = Path(sys.executable).parent
TOOLS = {
    "code": "pacemaker",
    "yaml2yace_code": "pace_yaml2yace",
    "activeset_code": "pace_activeset",
    "timing_code": "pace_timing",
}
#: Tiny basis and few BFGS iterations: enough to learn something, fast enough for CI (pyace uses numerical
#: gradients, so the cost grows with the number of coefficients).


@pytest.fixture(scope="session")
def si_frames():
    from aiida_autopipe.core.pacemaker_input import read_labelled_frames

    return read_labelled_frames(DATA)


@pytest.fixture(scope="module")
def pacemaker_codes(aiida_profile, tmp_path_factory):
    """pacemaker, pace_yaml2yace, pace_activeset and pace_timing on a local computer of this module."""
    from aiida import orm

    computer = orm.Computer(
        label=f"training-{uuid.uuid4().hex[:8]}",
        hostname="localhost",
        transport_type="core.local",
        scheduler_type="core.direct",
        workdir=str(tmp_path_factory.mktemp("training-work")),
    ).store()
    computer.set_minimum_job_poll_interval(0.0)
    computer.set_default_mpiprocs_per_machine(1)
    computer.configure()
    return {
        port: orm.InstalledCode(
            computer=computer,
            filepath_executable=str(BIN / executable),
            label=f"{executable}-{uuid.uuid4().hex[:6]}",
            default_calc_job_plugin="autopipe.pacemaker",
        ).store()
        for port, executable in TOOLS.items()
    }


@pytest.fixture(scope="module")
def si_dataset(aiida_profile):
    from aiida import orm

    return orm.SinglefileData(DATA).store()
