"""Build ActiveLearningWorkChain inputs from an input.yaml and launch it, in the foreground or the daemon."""

from __future__ import annotations

from pathlib import Path

from aiida import orm
from aiida.engine import run_get_node, submit

from aiida_autopipe.core.config.expand import (
    environment_to_dict,
    load_user_config,
    read_structure,
    resolve_structure_file,
)
from aiida_autopipe.engines.environment import detect_environment


def build_inputs(input_file: str | Path, profile_name: str | None = None) -> dict:
    """The user's input, the machine facts and the structure file (as a node), ready for the workchain."""
    from aiida.manage import get_manager

    user_data, base_dir = load_user_config(input_file)
    profile = profile_name or get_manager().get_profile().name
    inputs = {
        "user_config": orm.Dict(user_data),
        "environment": orm.Dict(environment_to_dict(detect_environment(profile, user_data, base_dir))),
    }
    structure_file = (user_data.get("system") or {}).get("structure_file")
    if structure_file:
        atoms = read_structure(resolve_structure_file(structure_file, base_dir))
        inputs["structure"] = orm.StructureData(ase=atoms)
    return inputs


def launch_active_learning(
    input_file: str | Path, submit_to_daemon: bool = False, protocol: str = "balanced"
) -> orm.WorkflowNode:
    """Run (or submit) the pipeline for `input_file`; the daemon is started when submitting needs it."""
    from aiida_autopipe.workflows.active_learning import ActiveLearningWorkChain

    inputs = {**build_inputs(input_file), "protocol": orm.Str(protocol)}
    if submit_to_daemon:
        ensure_daemon()
        return submit(ActiveLearningWorkChain, **inputs)
    _, node = run_get_node(ActiveLearningWorkChain, **inputs)
    return node


def ensure_daemon(workers: int = 1) -> None:
    """Start the profile's daemon if it is not running (with ZeroMQ this also starts the broker)."""
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client()
    if not client.is_daemon_running:
        client.start_daemon(number_workers=workers)
