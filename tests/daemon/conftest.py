"""Fixtures for the daemon tests: a fresh AiiDA folder per test, and RabbitMQ/PostgreSQL for `services`."""

import os
import subprocess
import time

import pytest
from daemon_helpers import port_open


@pytest.fixture
def fresh_aiida(tmp_path):
    return {**os.environ, "AIIDA_PATH": str(tmp_path / "aiida")}


@pytest.fixture
def rabbitmq():
    """RabbitMQ on localhost:5672, started here when installed but not running; a clear failure otherwise."""
    if not port_open(5672):
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        for _ in range(30):
            if port_open(5672):
                break
            time.sleep(2)
        else:
            pytest.fail(
                "RabbitMQ is not on localhost:5672 and could not be started: apt-get install rabbitmq-server"
            )


@pytest.fixture
def postgres_env(fresh_aiida, rabbitmq, request):
    """`fresh_aiida`, pointed at aiida's throw-away PostgreSQL cluster when none answers on localhost:5432."""
    if not port_open(5432):
        cluster = request.getfixturevalue("postgres_cluster")
        fresh_aiida["AUTOPIPE_POSTGRES_PORT"] = str(cluster.dsn["port"])
    return fresh_aiida
