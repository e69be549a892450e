"""`mlip-pipe`: set up, expand a config, launch and watch the pipeline. No physics lives here.

`mlip-pipe input.yaml` is short for `mlip-pipe run input.yaml`. Bad input ends with one line naming the field
and the fix, exit code 2, and nothing stored in the profile.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from aiida_autopipe.core.errors import InputError

EXIT_BAD_INPUT = 2


def user_errors(command):
    """Turn an InputError into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aiida-autopipe")
def cli():
    """Autonomous active learning of ACE potentials on AiiDA.

    \b
    mlip-pipe setup                   profile, pw.x, Computer, Codes, pseudopotentials
    mlip-pipe setup lammps --source X build LAMMPS with ML-PACE, register lammps@localhost
    mlip-pipe expand input.yaml       write exec_config_dump.yaml (every decision, no run)
    mlip-pipe input.yaml              expand and run the whole pipeline (same as `run`)
    mlip-pipe status PK               where a run stands
    mlip-pipe report PK               figures and a markdown summary of a run
    mlip-pipe export PK / import FILE share labelled datasets and potentials as AiiDA archives
    mlip-pipe datasets --elements X,Y labelled datasets made of those elements
    """


protocol_option = click.option(
    "--protocol",
    type=click.Choice(["fast", "balanced", "stringent"]),
    default="balanced",
    show_default=True,
    help="Cost against accuracy: its values replace the heuristics' where input.yaml gives none.",
)
profile_option = click.option(
    "--profile", "profile_name", default="autopipe", show_default=True, help="AiiDA profile to create or use."
)


def postgres_option(command):
    """--postgres and where the server is (environment variables AUTOPIPE_POSTGRES_HOST/PORT also work)."""
    command = click.option(
        "--postgres-port", default=5432, show_default=True, envvar="AUTOPIPE_POSTGRES_PORT", type=int
    )(command)
    command = click.option(
        "--postgres-host", default="localhost", show_default=True, envvar="AUTOPIPE_POSTGRES_HOST"
    )(command)
    return click.option(
        "--postgres",
        is_flag=True,
        help="PostgreSQL storage and RabbitMQ broker instead of SQLite and ZeroMQ.",
    )(command)


def _storage(postgres: bool, host: str, port: int) -> dict:
    from aiida_autopipe.engines.profile import PostgresServer

    if not postgres:
        return {"storage": "sqlite"}
    return {"storage": "postgres", "postgres": PostgresServer(host=host, port=port)}


@cli.group(invoke_without_command=True)
@profile_option
@postgres_option
@click.option("--pw", "pw_executable", type=click.Path(dir_okay=False), help="pw.x to use instead of PATH's.")
@click.option("--no-install", is_flag=True, help="Never run apt-get; print the command instead.")
@click.option("--slurm", is_flag=True, help="Also start a local Slurm and register the Codes on it.")
@click.pass_context
@user_errors
def setup(ctx, profile_name, postgres, postgres_host, postgres_port, pw_executable, no_install, slurm):
    """Create or reuse the profile and register engines; safe to run again.

    `mlip-pipe setup lammps` builds and registers a LAMMPS with ML-PACE (run `mlip-pipe setup` first).
    """
    if ctx.invoked_subcommand is not None:
        return
    from aiida_autopipe.engines.setup import run_setup

    report = run_setup(
        profile_name=profile_name,
        **_storage(postgres, postgres_host, postgres_port),
        install_engines=not no_install,
        pw_executable=pw_executable,
        slurm=slurm,
    )
    for line in report.lines:
        click.echo(line)


@setup.command("lammps")
@click.option("--source", help="LAMMPS sources: a folder, a tarball or a URL (default: Debian's, via apt).")
@click.option("--pace-source", help="python-ace's sdist or its lib/ace folder (default: pip download).")
@click.option("--prefix", type=click.Path(file_okay=False), help="Install prefix (default: user data dir).")
@click.option("-j", "--jobs", type=int, help="Parallel compile jobs (default: all cores).")
@click.option("--mpi", is_flag=True, help="Build with MPI (default: serial).")
@click.option("--executable", type=click.Path(dir_okay=False), help="Register this ML-PACE lmp, no build.")
@click.pass_context
@user_errors
def setup_lammps_command(ctx, source, pace_source, prefix, jobs, mpi, executable):
    """Build LAMMPS with ML-PACE (pace/extrapolation) with cmake and register it as lammps@localhost."""
    from aiida import load_profile
    from aiida.common.exceptions import ProfileConfigurationError

    from aiida_autopipe.engines.lammps import register_lammps_code, setup_lammps

    profile_name = ctx.parent.params["profile_name"]
    try:
        load_profile(profile_name, allow_switch=True)
    except ProfileConfigurationError as exc:
        raise InputError("--profile", f"no profile '{profile_name}'", "run `mlip-pipe setup` first") from exc
    record, lines = setup_lammps(
        source, pace_source, Path(prefix) if prefix else None, jobs, mpi, executable=executable
    )
    code, created = register_lammps_code(record["executable"])
    for line in [*lines, f"code: {code.full_label} -> {record['executable']}{' (new)' if created else ''}"]:
        click.echo(line)


@cli.command()
@click.argument("input_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="exec_config_dump.yaml", show_default=True, help="Where to write it.")
@protocol_option
@profile_option
@user_errors
def expand(input_file, output, protocol, profile_name):
    """Write the full config with every heuristic's decision; runs nothing, stores nothing."""
    config = _expand(input_file, profile_name, protocol)
    from aiida_autopipe.core.config.expand import dump_full_config

    path = dump_full_config(config, output)
    system, dft = config.system, config.dft_compute
    click.echo(
        f"{path}: {'-'.join(system.elements)} {system.structure_type}, magnetism {dft.magnetism}, "
        f"{dft.pseudo_family} at {dft.ecutwfc:g}/{dft.ecutrho:g} Ry, "
        f"T steps {config.simulation.temperature_steps}"
    )


@cli.command()
@click.argument("input_file", type=click.Path(dir_okay=False))
@click.option("--submit", is_flag=True, help="Hand the run to the daemon and return at once.")
@protocol_option
@click.option("-o", "--output", default="exec_config_dump.yaml", show_default=True, help="Full config dump.")
@profile_option
@postgres_option
@user_errors
def run(input_file, submit, protocol, output, profile_name, postgres, postgres_host, postgres_port):
    """Expand INPUT_FILE and launch ActiveLearningWorkChain (in the foreground unless --submit)."""
    from aiida_autopipe.core.config.expand import check_user_config, load_user_config
    from aiida_autopipe.engines.environment import user_cutoffs, user_pseudo_dir
    from aiida_autopipe.engines.pseudo_family import ensure_pseudo_family
    from aiida_autopipe.engines.setup import run_setup

    user_data, base_dir = load_user_config(input_file)
    check_user_config(user_data, base_dir)
    run_setup(profile_name=profile_name, **_storage(postgres, postgres_host, postgres_port))
    pseudo_dir = user_pseudo_dir(user_data, base_dir)
    if pseudo_dir is not None:
        ensure_pseudo_family(pseudo_dir=pseudo_dir, user_cutoffs=user_cutoffs(user_data))
    config = _expand(input_file, profile_name, protocol)
    from aiida_autopipe.core.config.expand import dump_full_config
    from aiida_autopipe.engines.codes import configure_launch
    from aiida_autopipe.workflows.launch import launch_active_learning

    configure_launch(config.dft_compute.command, config.dft_compute.mpi_ranks)
    dump_full_config(config, output)
    click.echo(f"full config written to {output}")
    node = launch_active_learning(input_file, submit_to_daemon=submit, protocol=protocol)
    if submit:
        click.echo(
            f"submitted ActiveLearningWorkChain<{node.pk}>; watch it with `verdi process report {node.pk}`"
        )
    else:
        click.echo(f"ActiveLearningWorkChain<{node.pk}> finished with exit status {node.exit_status}")
        sys.exit(0 if node.is_finished_ok else 1)


@cli.command()
@click.argument("pk", type=int)
@profile_option
def status(pk, profile_name):
    """State of run PK and of its children."""
    from aiida import load_profile, orm
    from aiida.cmdline.utils.ascii_vis import format_call_graph

    load_profile(profile_name, allow_switch=True)
    node = orm.load_node(pk)
    click.echo(format_call_graph(node))


def _expand(input_file: str, profile_name: str, protocol: str):
    from aiida_autopipe.core.config.expand import expand_config, load_user_config
    from aiida_autopipe.engines.environment import detect_environment

    user_data, base_dir = load_user_config(input_file)
    environment = detect_environment(profile_name, user_data, base_dir)
    return expand_config(user_data, environment, base_dir, protocol=protocol)


# report, export, import, datasets: defined on `cli` in their own module (imported after `cli` exists).
import aiida_autopipe.cli.sharing  # noqa: E402, F401


def main(argv: list[str] | None = None) -> None:
    """Entry point; a bare input file means `run` (the seed's `mlip-pipe input.yaml`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if (
        argv
        and argv[0] not in cli.commands
        and not argv[0].startswith("-")
        and Path(argv[0]).suffix
        in (
            ".yaml",
            ".yml",
        )
    ):
        argv.insert(0, "run")
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    cli.main(args=argv, prog_name="mlip-pipe")
