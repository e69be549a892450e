"""Gather the facts about this machine and profile that the config heuristics need, storing nothing."""

from __future__ import annotations

import os
import shutil
from typing import Any

from aiida_autopipe.core.config.expand import Environment, PseudoFamilyFacts
from aiida_autopipe.engines.setup import physical_cores


def detect_environment(profile_name: str, user_data: dict[str, Any] | None = None) -> Environment:
    """Cores, user, pw.x and the installed pseudopotential family; read-only, even on a fresh machine."""
    from aiida.manage.configuration import get_config, load_profile

    config = get_config(create=True)
    pseudo_family = None
    storage = "sqlite"
    if profile_name in config.profile_names:
        profile = load_profile(profile_name, allow_switch=True)
        storage = "postgres" if profile.storage_backend == "core.psql_dos" else "sqlite"
        pseudo_family = _pseudo_family_facts(user_data or {})
    return Environment(
        physical_cores=physical_cores(),
        is_root=os.geteuid() == 0,
        pw_executable=shutil.which("pw.x"),
        pseudo_family=pseudo_family,
        profile_name=profile_name,
        storage=storage,
    )


def _pseudo_family_facts(user_data: dict[str, Any]) -> PseudoFamilyFacts | None:
    from aiida_autopipe.engines.pseudo_family import find_pseudo_family

    requested = (user_data.get("dft_compute") or {}).get("pseudo_family")
    choice = find_pseudo_family(requested)
    if choice is None:
        return None
    return PseudoFamilyFacts(
        label=choice.label, source=choice.source, reason=choice.reason, cutoffs_ry=choice.cutoffs
    )
