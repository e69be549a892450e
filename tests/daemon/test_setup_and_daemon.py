"""`mlip-pipe setup` on a fresh AiiDA folder, twice; then expand, submit, pause, play, kill, as a user would.

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
print(node.process_state.value if node.process_state else 'none', node.paused, 'full_config' in node.outputs)
"""


def mlip_pipe(*args, env, cwd=None, check=True):
    result = subprocess.run([BIN / "mlip-pipe", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"mlip-pipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def process_state(env, profile, pk):
    out = subprocess.run(
        [sys.executable, "-c", PROCESS_STATE, profile, str(pk)], env=env, capture_output=True, text=True
    ).stdout.split()
    return {"state": out[0], "paused": out[1] == "True", "expanded": out[2] == "True"} if out else {}


def wait_for(env, profile, pk, condition, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = process_state(env, profile, pk)
        if state and condition(state):
            return state
        time.sleep(2)
    raise AssertionError(f"process {pk} never reached the expected state within {timeout} s: {state}")


def verdi(env, profile, *args):
    return subprocess.run([BIN / "verdi", "-p", profile, *args], env=env, capture_output=True, text=True)


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
    pk = int(submitted.stdout.split("ActiveLearningWorkChain<")[1].split(">")[0])
    wait_for(env, profile, pk, lambda state: state["expanded"])
    listing = verdi(env, profile, "process", "list", "-a", "-p", "1").stdout
    assert str(pk) in listing and "ActiveLearningWorkChain" in listing

    assert verdi(env, profile, "process", "pause", str(pk)).returncode == 0
    wait_for(env, profile, pk, lambda state: state["paused"])
    assert verdi(env, profile, "process", "play", str(pk)).returncode == 0
    wait_for(env, profile, pk, lambda state: not state["paused"])
    assert verdi(env, profile, "process", "kill", str(pk)).returncode == 0
    final = wait_for(env, profile, pk, lambda state: state["state"] in ("killed", "finished", "excepted"))
    verdi(env, profile, "daemon", "stop")
    return final


@pytest.fixture
def fresh_aiida(tmp_path):
    return {**os.environ, "AIIDA_PATH": str(tmp_path / "aiida")}


def test_embedded_setup_is_idempotent_and_the_daemon_runs_a_submitted_workchain(fresh_aiida, tmp_path):
    state = setup_expand_submit(fresh_aiida, "embedded", tmp_path)
    assert state["state"] == "killed"


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
    assert state["state"] == "killed"
