"""`mlip-pipe setup` on a fresh AiiDA folder, run twice; then expand and a daemon submit, as a user would.

Embedded default: SQLite + ZeroMQ. The `services` set does the same against PostgreSQL + RabbitMQ, starting
its own PostgreSQL cluster when none answers on localhost:5432.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).parents[2] / "examples"

PROCESS_STATE = """
import sys
from aiida import load_profile, orm
load_profile(sys.argv[1])
node = orm.load_node(int(sys.argv[2]))
print(node.process_state.value if node.process_state else 'none', node.exit_status)
"""


def mlip_pipe(*args, env, cwd=None, check=True):
    result = subprocess.run([BIN / "mlip-pipe", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"mlip-pipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def wait_for_termination(env, profile, pk, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            [sys.executable, "-c", PROCESS_STATE, profile, str(pk)], env=env, capture_output=True, text=True
        ).stdout.split()
        if out and out[0] in ("finished", "excepted", "killed"):
            return out
        time.sleep(2)
    raise AssertionError(f"process {pk} did not terminate within {timeout} s")


def setup_expand_submit(env, profile, tmp_path, *extra):
    first = mlip_pipe("setup", "--profile", profile, *extra, env=env)
    assert "created" in first.stdout
    for code in ("pw@localhost", "pacemaker@localhost", "autopipe-surrogate@localhost"):
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
    pk = int(submitted.stdout.split("ActiveLearningWorkChain<")[1].split(">")[0])
    state = wait_for_termination(env, profile, pk)
    listing = subprocess.run(
        [BIN / "verdi", "-p", profile, "process", "list", "-a", "-p", "1"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert str(pk) in listing and "ActiveLearningWorkChain" in listing
    subprocess.run([BIN / "verdi", "-p", profile, "daemon", "stop"], env=env, capture_output=True)
    return state


@pytest.fixture
def fresh_aiida(tmp_path):
    return {**os.environ, "AIIDA_PATH": str(tmp_path / "aiida")}


def test_embedded_setup_is_idempotent_and_the_daemon_runs_a_submitted_workchain(fresh_aiida, tmp_path):
    state = setup_expand_submit(fresh_aiida, "embedded", tmp_path)
    assert state[0] == "finished"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def rabbitmq():
    """RabbitMQ on localhost:5672, started here when installed but not running; a clear failure otherwise."""
    if not _port_open(5672):
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        for _ in range(30):
            if _port_open(5672):
                break
            time.sleep(2)
        else:
            pytest.fail(
                "RabbitMQ is not on localhost:5672 and could not be started: apt-get install rabbitmq-server"
            )


@pytest.mark.services
def test_postgres_rabbitmq_setup_and_daemon_submit(fresh_aiida, tmp_path, rabbitmq, request):
    extra = ["--postgres"]
    if not _port_open(5432):
        cluster = request.getfixturevalue("postgres_cluster")
        fresh_aiida["AUTOPIPE_POSTGRES_PORT"] = str(cluster.dsn["port"])
    state = setup_expand_submit(fresh_aiida, f"pg-{os.getpid()}", tmp_path, *extra)
    assert state[0] == "finished"
