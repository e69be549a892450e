"""Record the expansion of input.yaml into the full config in the provenance graph."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.core.config.expand import environment_from_dict, expand_config


@calcfunction
def expand_user_config(
    user_config: orm.Dict,
    environment: orm.Dict,
    structure: orm.StructureData | None = None,
    protocol: orm.Str | None = None,
):
    """The full config from the user's input, the machine facts and the protocol; `structure` replaces a
    structure file."""
    atoms = structure.get_ase() if structure is not None else None
    full = expand_config(
        user_config.get_dict(),
        environment_from_dict(environment.get_dict()),
        atoms=atoms,
        protocol=protocol.value if protocol is not None else None,
    )
    return orm.Dict(full.model_dump(mode="json"))
