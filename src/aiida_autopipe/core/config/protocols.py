"""What a protocol (`fast`, `balanced`, `stringent`) sets in the full config.

The labeling and training protocols (workflows/protocols/*.yaml, in aiida-quantumespresso's layout) give, per
protocol, values of `dft_compute` and `mlip_training` keys. Choosing a protocol is the user's explicit trade
of cost against accuracy, so its values replace the heuristics' for those keys; input.yaml still wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aiida_autopipe.core.errors import InputError

PROTOCOLS = ("fast", "balanced", "stringent")
PROTOCOL_DIR = Path(__file__).parents[2] / "workflows" / "protocols"
#: Config section -> the protocol file whose per-protocol entries set its keys.
SECTION_PROTOCOLS = {"dft_compute": "labeling.yaml", "mlip_training": "training.yaml"}


def protocol_values(name: str | None) -> dict[str, Any]:
    """Dotted config keys -> the values protocol `name` sets (none for None or a protocol that sets none)."""
    if name is None:
        return {}
    if name not in PROTOCOLS:
        raise InputError("protocol", f"unknown protocol {name!r}", f"use one of {', '.join(PROTOCOLS)}")
    values = {}
    for section, filename in SECTION_PROTOCOLS.items():
        protocol = yaml.safe_load((PROTOCOL_DIR / filename).read_text())["protocols"][name]
        for key, value in (protocol.get(section) or {}).items():
            values[f"{section}.{key}"] = value
    return values
