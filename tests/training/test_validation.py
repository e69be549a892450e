"""The `mlip_training` section is checked before anything runs."""

import pytest


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"model": "mace"}, "only `ace`"),
        ({"r_cut": -1.0}, "r_cut"),
        ({"body_order": 1}, "body_order"),
        ({"polynomial_degree": "big"}, "polynomial_degree"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"loss_weights": {"energy": 1, "virial": 3}}, "loss_weights"),
    ],
)
def test_bad_mlip_training_is_rejected(section, message):
    from aiida import orm

    from aiida_autopipe.workflows.training import validate_mlip_training

    assert message in validate_mlip_training(orm.Dict(section), None)


def test_defaults_are_valid():
    from aiida import orm

    from aiida_autopipe.workflows.training import validate_mlip_training

    assert validate_mlip_training(orm.Dict({}), None) is None
