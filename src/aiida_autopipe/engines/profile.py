"""Create or reuse the AiiDA profile that records every run.

Embedded default: SQLite storage and aiida-core's built-in ZeroMQ broker, so the daemon, `submit` and
`verdi process pause/kill` work with nothing installed. Production: PostgreSQL plus RabbitMQ, with RabbitMQ's
consumer timeout disabled, since a pw.x run can outlast its 30-minute default and would then be redelivered.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from aiida.manage.configuration import Profile, create_profile, get_config, load_profile
from aiida.plugins import BrokerFactory

from aiida_autopipe.core.errors import InputError

STORAGE_BACKENDS = {"sqlite": "core.sqlite_dos", "postgres": "core.psql_dos"}
BROKER_BACKENDS = {"sqlite": "core.zeromq", "postgres": "core.rabbitmq"}
CACHED_CALCULATIONS = ["aiida.calculations:quantumespresso.pw"]


@dataclass(frozen=True)
class PostgresServer:
    """Where the PostgreSQL server is and which role may create databases."""

    host: str = "localhost"
    port: int = 5432
    admin_user: str = "postgres"
    admin_password: str | None = None


@dataclass(frozen=True)
class ProfileReport:
    name: str
    storage: str
    broker: str
    created: bool
    note: str = ""


def ensure_profile(
    name: str, storage: str = "sqlite", postgres: PostgresServer | None = None
) -> ProfileReport:
    """Load profile `name`, creating it first if it does not exist; it becomes the default profile."""
    if storage not in STORAGE_BACKENDS:
        raise InputError("aiida.storage", f"unknown storage '{storage}'", "use 'sqlite' or 'postgres'")
    config = get_config(create=True)
    created = name not in config.profile_names
    note = ""
    if created:
        if storage == "postgres":
            storage_config = _create_postgres_database(name, postgres or PostgresServer())
            broker_config = BrokerFactory(BROKER_BACKENDS[storage]).get_default_config()
            note = disable_rabbitmq_consumer_timeout()
        else:
            storage_config = {}
            broker_config = BrokerFactory(BROKER_BACKENDS[storage]).get_default_config()
        profile = create_profile(
            config,
            name=name,
            email=f"{getpass.getuser()}@localhost",
            storage_backend=STORAGE_BACKENDS[storage],
            storage_config=storage_config,
            broker_backend=BROKER_BACKENDS[storage],
            broker_config=broker_config,
        )
        # Children of a workchain are polled; a 1 s interval keeps the pipeline responsive.
        config.set_option("runner.poll.interval", 1, scope=profile.name)
        config.set_option("warnings.rabbitmq_version", False, scope=profile.name)
        # A pw.x run with the same inputs as a finished one is never repeated: after a restart, or when a
        # frame is picked twice, its label is copied from the earlier run.
        config.set_option("caching.enabled_for", CACHED_CALCULATIONS, scope=profile.name)
        config.set_default_profile(profile.name, overwrite=True)
        config.store()
    profile: Profile = load_profile(name, allow_switch=True)
    if created and storage == "sqlite":
        enable_write_ahead_log(Path(profile.storage_config["filepath"]) / "database.sqlite")
    existing = {v: k for k, v in STORAGE_BACKENDS.items()}.get(
        profile.storage_backend, profile.storage_backend
    )
    if not created and existing != storage:
        raise InputError(
            "aiida.storage",
            f"profile '{name}' exists with {existing} storage, not {storage}",
            f"choose another profile name, or run with --{existing}"
            if existing == "postgres"
            else "drop --postgres",
        )
    return ProfileReport(name, existing, profile.process_control_backend or "none", created, note)


def enable_write_ahead_log(database: Path) -> None:
    """Switch SQLite to its write-ahead log, before any other process opens the file.

    A label makes about 440 commits; with the default rollback journal each one rewrote and synced a journal
    file, and they took 6.0 s of a label here, against 2.0 s with the log (2 cores, load 12). Readers no
    longer block the daemon's writes either. SQLite stores the mode in the file, so once is enough.
    """
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(database)) as connection:
        connection.execute("PRAGMA journal_mode=wal")


def _create_postgres_database(profile_name: str, server: PostgresServer) -> dict:
    """A fresh role and database for the profile, with the C.UTF-8 locale every Debian machine has."""
    import psycopg
    from aiida.manage.configuration.settings import AiiDAConfigDir

    role = f"aiida_{profile_name}".replace("-", "_")
    password = secrets.token_hex(15)
    connection_string = f"host={server.host} port={server.port} user={server.admin_user} dbname=postgres"
    if server.admin_password:
        connection_string += f" password={server.admin_password}"
    try:
        connection = psycopg.connect(connection_string, autocommit=True)
    except psycopg.OperationalError as error:
        raise InputError(
            "aiida.storage",
            f"cannot connect to PostgreSQL at {server.host}:{server.port} ({str(error).splitlines()[0]})",
            "start PostgreSQL, or drop --postgres to use the embedded SQLite storage",
        ) from None
    with connection:
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        connection.execute(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{password}'")
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (role,)).fetchone():
            connection.execute(
                f'CREATE DATABASE "{role}" OWNER "{role}" ENCODING \'UTF8\' '
                "LC_COLLATE='C.UTF-8' LC_CTYPE='C.UTF-8' TEMPLATE=template0"
            )
    return {
        "database_hostname": server.host,
        "database_port": server.port,
        "database_name": role,
        "database_username": role,
        "database_password": password,
        "repository_uri": (AiiDAConfigDir.get() / "repository" / profile_name).as_uri(),
    }


RABBITMQ_ADVANCED_CONFIG = "[{rabbit, [{consumer_timeout, undefined}]}]."


def disable_rabbitmq_consumer_timeout() -> str:
    """Turn off RabbitMQ's consumer timeout in the running server; returns what was done or what to do.

    The setting is server-wide: it takes effect at once through `rabbitmqctl eval` and survives a restart only
    through RabbitMQ's advanced.config, which this writes when it may and none exists yet.
    """
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        return f"rabbitmqctl not found: add {RABBITMQ_ADVANCED_CONFIG} to RabbitMQ's advanced.config"
    result = subprocess.run(
        [rabbitmqctl, "eval", "application:set_env(rabbit, consumer_timeout, undefined)."],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        return f"could not reach RabbitMQ ({result.stderr.strip()[:120]}); add {RABBITMQ_ADVANCED_CONFIG}"
    advanced = Path("/etc/rabbitmq/advanced.config")
    if advanced.exists() or not os.access(advanced.parent, os.W_OK):
        keep = f"put {RABBITMQ_ADVANCED_CONFIG} in {advanced} to keep it"
        return f"RabbitMQ consumer_timeout disabled until the server restarts; {keep}"
    advanced.write_text(RABBITMQ_ADVANCED_CONFIG + "\n")
    return f"RabbitMQ consumer_timeout disabled, now and in {advanced}"
