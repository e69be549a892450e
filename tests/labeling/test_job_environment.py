"""The pw Code's job environment: one BLAS/OpenMP thread per rank unless the job asks for more."""

import subprocess

import pytest
from aiida import orm
from labeling_helpers import PW_EXECUTABLE

from aiida_autopipe.engines.codes import JOB_POLL_INTERVAL, ensure_code, ensure_localhost


def thread_variables(prepend_text, environment):
    """OMP, OpenBLAS and MKL thread counts a job script starting with ``prepend_text`` would run pw.x with."""
    script = f"{prepend_text}\necho $OMP_NUM_THREADS $OPENBLAS_NUM_THREADS $MKL_NUM_THREADS"
    output = subprocess.run(
        ["bash", "-c", script], env=environment, capture_output=True, text=True, check=True
    )
    return output.stdout.split()


@pytest.fixture
def pw_on_localhost(aiida_profile_clean, tmp_path):
    computer = ensure_localhost(tmp_path, ["mpirun", "-np", "{tot_num_mpiprocs}"], cores=2)
    ensure_code("pw", computer, PW_EXECUTABLE)
    return orm.load_code(f"pw@{computer.label}")


def test_pw_jobs_default_to_one_thread_and_keep_an_explicit_request(pw_on_localhost):
    prepend_text = pw_on_localhost.prepend_text
    assert thread_variables(prepend_text, {"PATH": "/usr/bin:/bin"}) == ["1", "1", "1"]
    # `resources.pw.omp_threads` arrives as an exported OMP_NUM_THREADS before the Code's lines
    assert thread_variables(prepend_text, {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "4"}) == [
        "4",
        "4",
        "4",
    ]


def test_localhost_polls_often_without_a_login_shell(pw_on_localhost):
    computer = pw_on_localhost.computer
    assert computer.get_minimum_job_poll_interval() == JOB_POLL_INTERVAL
    auth = computer.get_authinfo(computer.backend.default_user).get_auth_params()
    assert auth["use_login_shell"] is False and auth["safe_interval"] == 0


def test_a_changed_job_environment_retires_the_old_code(aiida_profile_clean, tmp_path):
    """A pw Code stored before the thread environment existed is replaced, not silently kept."""
    computer = ensure_localhost(tmp_path, ["mpirun", "-np", "{tot_num_mpiprocs}"], cores=2)
    old = orm.InstalledCode(label="pw", computer=computer, filepath_executable=PW_EXECUTABLE).store()
    report = ensure_code("pw", computer, PW_EXECUTABLE)
    assert report.created
    assert old.label == f"pw-{old.pk}"
    assert "OPENBLAS_NUM_THREADS" in orm.load_code(f"pw@{computer.label}").prepend_text
