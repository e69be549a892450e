"""`mlip-pipe report / export / import / datasets`: look at a finished run and share its labelled data.

Registered on the main `mlip-pipe` group by :mod:`aiida_autopipe.cli.main`; no physics here.
"""

from __future__ import annotations

import click

from aiida_autopipe.cli.main import cli, profile_option, user_errors
from aiida_autopipe.core.errors import InputError

#: What AiiDA records as the process type of an ActiveLearningWorkChain (its entry point).
ACTIVE_LEARNING_PROCESS_TYPE = "aiida.workflows:autopipe.active_learning"


def _load_profile(profile_name: str) -> None:
    from aiida import load_profile
    from aiida.common.exceptions import ConfigurationError

    try:
        load_profile(profile_name, allow_switch=True)
    except ConfigurationError as error:
        raise InputError(
            "--profile", f"no AiiDA profile named {profile_name!r}", "run `mlip-pipe setup` or name another"
        ) from error


def _load_run(pk: int, profile_name: str):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    _load_profile(profile_name)
    try:
        node = orm.load_node(pk)
    except NotExistent as error:
        raise InputError("PK", f"no node with pk {pk}", "see `verdi process list -a`") from error
    if not is_active_learning_run(node):
        kind = (node.process_label if isinstance(node, orm.ProcessNode) else None) or type(node).__name__
        raise InputError(
            "PK",
            f"node {pk} is a {kind}, not an active-learning run",
            "give the PK of an ActiveLearningWorkChain (see `verdi process list -a`)",
        )
    return node


def is_active_learning_run(node) -> bool:
    """An ActiveLearningWorkChain, or a work chain with the outputs a finished one has (a subclass, a
    stand-in)."""
    from aiida import orm

    if node.process_type == ACTIVE_LEARNING_PROCESS_TYPE:
        return True
    return isinstance(node, orm.WorkflowNode) and {"dataset", "metrics"} <= set(node.outputs)


def _elements(value: str | None) -> list[str] | None:
    if not value:
        return None
    from ase.data import chemical_symbols

    symbols = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [symbol for symbol in symbols if symbol not in chemical_symbols[1:]]
    if unknown:
        raise InputError("--elements", f"{', '.join(unknown)} is not an element", "write symbols like Fe,Pt")
    return symbols


@cli.command()
@click.argument("pk", type=int)
@click.option("--out", "out_dir", default=None, help="Folder for the figures and report.md [report_PK].")
@profile_option
@user_errors
def report(pk, out_dir, profile_name):
    """PNG figures and a markdown summary of run PK."""
    node = _load_run(pk, profile_name)
    from aiida_autopipe.reporting.report import write_report

    path = write_report(node, out_dir or f"report_{pk}")
    click.echo(f"report written to {path}")


@cli.command()
@click.argument("pk", type=int)
@click.option("--out", "out_file", default=None, help="Archive to write [autopipe_PK.aiida].")
@click.option("--whole-run", is_flag=True, help="Also include the work chain and every child process.")
@profile_option
@user_errors
def export(pk, out_file, whole_run, profile_name):
    """AiiDA archive of run PK's dataset and potential, with their provenance, and the dataset as extxyz."""
    node = _load_run(pk, profile_name)
    from aiida_autopipe.reporting.archive import export_run

    path = export_run(node, out_file or f"autopipe_{pk}.aiida", whole_run=whole_run)
    dataset = node.outputs.dataset
    extxyz = path.with_suffix(".extxyz")
    extxyz.write_bytes(dataset.get_content(mode="rb"))
    click.echo(
        f"{path}: dataset {dataset.pk} ({dataset.base.extras.get('chemical_system')}, "
        f"{dataset.base.extras.get('number_of_frames')} frames) and potential of run {pk}; "
        f"the labelled frames also in {extxyz}"
    )


@cli.command("import")
@click.argument("archives", nargs=-1, required=True, type=click.Path())
@profile_option
@user_errors
def import_(archives, profile_name):
    """Import ARCHIVES and register their labelled datasets by chemical system."""
    _load_profile(profile_name)
    from aiida_autopipe.reporting.archive import import_archives

    for dataset in import_archives(archives):
        extras = dataset.base.extras
        click.echo(
            f"dataset {dataset.pk}: {extras.get('chemical_system')}, {extras.get('number_of_frames')} frames"
        )


@cli.command()
@click.option("--elements", default=None, help="Comma-separated elements, e.g. Fe,Pt: subsets of them only.")
@profile_option
@user_errors
def datasets(elements, profile_name):
    """Registered labelled datasets (made of a subset of --elements when given)."""
    wanted = _elements(elements)
    _load_profile(profile_name)
    from aiida_autopipe.reporting.registry import registered_datasets

    found = registered_datasets(wanted)
    if not found:
        click.echo("no registered dataset" + (f" within {'-'.join(wanted)}" if wanted else ""))
    for node in found:
        extras = node.base.extras
        settings = extras.get("dft_settings", {}) or {}
        click.echo(
            f"{node.pk}\t{extras.get('chemical_system')}\t{extras.get('number_of_frames')} frames\t"
            f"{extras.get('number_of_atoms')} atoms\t{settings.get('pseudo_family', '?')} "
            f"{settings.get('ecutwfc', '?')} Ry"
        )
