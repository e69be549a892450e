"""Gather the facts about this machine and profile that the config heuristics need, storing nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from aiida_autopipe.core.config.expand import (
    Environment,
    PseudoFamilyFacts,
    SurrogateFacts,
    resolve_directory,
)
from aiida_autopipe.engines.setup import physical_cores


def detect_environment(
    profile_name: str, user_data: dict[str, Any] | None = None, base_dir: Path | None = None
) -> Environment:
    """Cores, user, pw.x and the pseudopotential family; read-only, even on a fresh machine."""
    from aiida.manage.configuration import get_config, load_profile

    from aiida_autopipe.engines.lammps import find_pace_lammps

    user_data = user_data or {}
    config = get_config(create=True)
    pseudo_family = None
    storage = "sqlite"
    if profile_name in config.profile_names:
        profile = load_profile(profile_name, allow_switch=True)
        storage = "postgres" if profile.storage_backend == "core.psql_dos" else "sqlite"
        pseudo_family = _pseudo_family_facts(user_data, base_dir or Path.cwd())
    lammps_executable, lammps_reason = find_pace_lammps()
    return Environment(
        physical_cores=physical_cores(),
        is_root=os.geteuid() == 0,
        pw_executable=shutil.which("pw.x"),
        pseudo_family=pseudo_family,
        surrogate=resolve_surrogate_facts(user_data),
        profile_name=profile_name,
        storage=storage,
        cuda_devices=cuda_device_count(),
        lammps_executable=lammps_executable,
        lammps_reason=lammps_reason,
    )


def cuda_device_count() -> int:
    """GPUs torch sees here: the default of `resources.<runner>.gpus`."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def user_pseudo_dir(user_data: dict[str, Any], base_dir: Path) -> Path | None:
    """The folder of the user's own UPF files, if input.yaml names one."""
    name = (user_data.get("dft_compute") or {}).get("pseudo_dir")
    return None if name is None else resolve_directory(name, base_dir, "dft_compute.pseudo_dir")


def user_cutoffs(user_data: dict[str, Any]) -> tuple[float, float] | None:
    """(ecutwfc, ecutrho) in Ry when input.yaml sets both: the cutoffs of its UPF files that suggest none."""
    section = user_data.get("dft_compute") or {}
    if section.get("ecutwfc") is None or section.get("ecutrho") is None:
        return None
    return float(section["ecutwfc"]), float(section["ecutrho"])


def _pseudo_family_facts(user_data: dict[str, Any], base_dir: Path) -> PseudoFamilyFacts | None:
    from aiida_autopipe.core.pseudopotentials import family_from_directory, pseudo_cache_dir
    from aiida_autopipe.engines.pseudo_family import find_pseudo_family

    pseudo_dir = user_pseudo_dir(user_data, base_dir)
    if pseudo_dir is not None:
        staging = pseudo_cache_dir() / "local"
        staging.mkdir(parents=True, exist_ok=True)
        family = family_from_directory(pseudo_dir, staging, user_cutoffs(user_data))
        cutoffs = {el: (values["cutoff_wfc"], values["cutoff_rho"]) for el, values in family.cutoffs.items()}
        reason = f"built from the UPF files in dft_compute.pseudo_dir ({pseudo_dir}), as input.yaml asks"
        return PseudoFamilyFacts(label=family.label, source=family.source, reason=reason, cutoffs_ry=cutoffs)
    requested = (user_data.get("dft_compute") or {}).get("pseudo_family")
    choice = find_pseudo_family(requested)
    if choice is None:
        return None
    return PseudoFamilyFacts(
        label=choice.label, source=choice.source, reason=choice.reason, cutoffs_ry=choice.cutoffs
    )


def resolve_surrogate_facts(user_data: dict[str, Any]) -> SurrogateFacts:
    """Which universal potential exploration really uses here, and why (MACE-MP offline -> CHGNet)."""
    from aiida_autopipe.core.surrogate import resolve_surrogate

    active = ((user_data.get("simulation") or {}).get("active_learning")) or {}
    requested = active.get("surrogate_model") or "mace_mp"
    choice = resolve_surrogate(requested)
    resolved = (
        requested
        if choice.requested == requested and choice.name in requested
        else f"{choice.name}:{choice.model}"
    )
    return SurrogateFacts(requested=requested, resolved=resolved, reason=choice.reason)
