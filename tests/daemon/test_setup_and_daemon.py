"""`mlip-pipe setup` on a fresh AiiDA folder, twice; then expand, submit, pause, play, kill, as a user would.

Embedded default: SQLite + ZeroMQ. The `services` set does the same against PostgreSQL + RabbitMQ, starting
its own PostgreSQL cluster when none answers on localhost:5432.
"""

import os

import pytest
import yaml
from daemon_helpers import EXAMPLES, mlip_pipe, submitted_pk, verdi, wait_for_process


def setup_expand_submit(env, profile, tmp_path, *extra):
    """Set up twice (idempotent), expand the seed's FePt input, then submit the pipeline to the daemon and
    drive it with `verdi process pause/play/kill` once it has expanded its config."""
    first = mlip_pipe("setup", "--profile", profile, *extra, env=env)
    assert "created" in first.stdout
    for code in (
        "pw@localhost",
        "pacemaker@localhost",
        "autopipe-surrogate@localhost",
        "autopipe-otf-md@localhost",
    ):
        assert code in first.stdout
    second = mlip_pipe("setup", "--profile", profile, *extra, env=env)
    assert "reused" in second.stdout and "(new)" not in second.stdout

    mlip_pipe("expand", str(EXAMPLES / "fept" / "input.yaml"), "--profile", profile, env=env, cwd=tmp_path)
    config = yaml.safe_load((tmp_path / "exec_config_dump.yaml").read_text())
    assert config["system"]["structure_type"] == "alloy"
    assert config["dft_compute"]["magnetism"] == "ferromagnetic"
    assert config["dft_compute"]["pseudo_family"]

    submitted = mlip_pipe(
        str(EXAMPLES / "fept" / "input.yaml"), "--submit", "--profile", profile, *extra, env=env, cwd=tmp_path
    )
    pk = submitted_pk(submitted.stdout)
    wait_for_process(env, profile, pk, lambda state: state["expanded"])
    listing = verdi(env, profile, "process", "list", "-a", "-p", "1").stdout
    assert str(pk) in listing and "ActiveLearningWorkChain" in listing

    assert verdi(env, profile, "process", "pause", str(pk)).returncode == 0
    wait_for_process(env, profile, pk, lambda state: state["paused"])
    assert verdi(env, profile, "process", "play", str(pk)).returncode == 0
    wait_for_process(env, profile, pk, lambda state: not state["paused"])
    assert verdi(env, profile, "process", "kill", str(pk)).returncode == 0
    final = wait_for_process(
        env, profile, pk, lambda state: state["state"] in ("killed", "finished", "excepted")
    )
    verdi(env, profile, "daemon", "stop")
    return final


def test_embedded_setup_is_idempotent_and_the_daemon_runs_a_submitted_workchain(fresh_aiida, tmp_path):
    state = setup_expand_submit(fresh_aiida, "embedded", tmp_path)
    assert state["state"] == "killed"


@pytest.mark.services
def test_postgres_rabbitmq_setup_and_daemon_submit(postgres_env, tmp_path):
    state = setup_expand_submit(postgres_env, f"pg-{os.getpid()}", tmp_path, "--postgres")
    assert state["state"] == "killed"
