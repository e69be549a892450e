"""Share a run's results as an AiiDA archive, and bring other people's datasets into this profile.

The archive holds the dataset, the potential files, the metrics and the full config with their provenance
(aiida's default traversal: each node's creating process and its inputs, back to every pw.x run), so an
imported dataset still traces to the calculations that labelled it.
"""

from __future__ import annotations

from pathlib import Path

from aiida import orm
from aiida.common.exceptions import IncompatibleStorageSchema
from aiida.tools.archive import create_archive, import_archive
from aiida.tools.archive.abstract import get_format

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.reporting.registry import REGISTERED_EXTRA, register_dataset, register_run

#: Outputs of ActiveLearningWorkChain that an archive carries (those the run made).
SHARED_OUTPUTS = (
    "dataset",
    "potential_yaml",
    "potential_yace",
    "active_set",
    "lammps_snippet",
    "reference",
    "metrics",
    "full_config",
)


def export_run(node: orm.ProcessNode, path: str | Path, whole_run: bool = False) -> Path:
    """Archive the run's dataset (registered first, so its extras say what it is), potential and records.

    `whole_run` also includes the work chain itself and so every child process and its outputs.
    """
    if "dataset" not in node.outputs:
        raise InputError(
            "PK", f"{node.process_label}<{node.pk}> has no `dataset` output", "export a finished run"
        )
    register_run(node)
    entities = [node.outputs[name] for name in SHARED_OUTPUTS if name in node.outputs]
    if whole_run:
        entities.append(node)
    return create_archive(entities, filename=Path(path), overwrite=True)


def check_archive(path) -> None:
    """Refuse, before anything is imported, a file that is not a readable archive holding a shared dataset."""
    path = Path(path)
    fix = "give an archive written by `mlip-pipe export`, copied completely"
    if not path.exists():
        raise InputError("ARCHIVE", f"{path} does not exist", "give the path of an .aiida archive")
    if not path.is_file():
        raise InputError("ARCHIVE", f"{path} is a folder", "give the path of an .aiida archive file")
    if path.stat().st_size == 0:
        raise InputError("ARCHIVE", f"{path} is empty", fix)
    try:
        with get_format().open(path, mode="r") as reader:
            query = orm.QueryBuilder(backend=reader.get_backend())
            query.append(orm.SinglefileData, filters={f"extras.{REGISTERED_EXTRA}": True})
            datasets = query.count()
    except IncompatibleStorageSchema as error:
        raise InputError(
            "ARCHIVE",
            f"{path} has an archive version this AiiDA cannot read ({first_line(error)})",
            "run `verdi archive migrate` on it, or upgrade aiida-core",
        ) from error
    except Exception as error:  # zipfile, sqlite and aiida each raise their own kinds for a damaged file
        raise InputError(
            "ARCHIVE", f"{path} is not an AiiDA archive or is truncated ({first_line(error)})", fix
        ) from error
    if datasets == 0:
        raise InputError(
            "ARCHIVE", f"{path} holds no autopipe dataset", "export the run with `mlip-pipe export PK`"
        )


def first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def import_archives(paths) -> list[orm.SinglefileData]:
    """Check every archive first (so one bad file imports nothing), then import each and register the
    shared datasets it holds; returns them."""
    for path in paths:
        check_archive(path)
    registered = []
    for path in paths:
        group_pk = import_archive(path)
        if group_pk is None:
            continue
        query = orm.QueryBuilder()
        query.append(orm.Group, filters={"id": group_pk}, tag="group")
        query.append(
            orm.SinglefileData,
            with_group="group",
            filters={f"extras.{REGISTERED_EXTRA}": True},
            project="*",
        )
        for (dataset,) in query.iterall():
            register_dataset(dataset)
            registered.append(dataset)
    return registered
