"""get_builder_from_protocol of the labeling work chains: cutoffs from the family, protocol values,
validation."""

import pytest
from aiida import orm
from labeling_helpers import bcc_iron, silicon

from aiida_autopipe.workflows.labeling import LabelingWorkChain, validate_dft_compute
from aiida_autopipe.workflows.pw_base import AutopipePwBaseWorkChain


def test_labeling_builder_takes_the_largest_cutoff_of_all_elements(pw_code, pseudo_family):
    builder = LabelingWorkChain.get_builder_from_protocol(
        pw_code, {"si": silicon(), "fe": bcc_iron()}, pseudo_family.label, protocol="fast"
    )
    config = builder.dft_compute.get_dict()
    assert (config["ecutwfc"], config["ecutrho"]) == (25.0, 200.0)
    assert config["kpoints_density"] == 0.30
    assert config["pseudo_family"] == pseudo_family.label
    assert config["code"] == pw_code.full_label
    assert set(builder.structures) == {"si", "fe"}


@pytest.mark.parametrize(("protocol", "spacing"), [("balanced", 0.15), ("stringent", 0.10)])
def test_labeling_protocols_and_overrides(pw_code, pseudo_family, protocol, spacing):
    builder = LabelingWorkChain.get_builder_from_protocol(
        pw_code,
        {"si": silicon()},
        pseudo_family.label,
        protocol=protocol,
        overrides={"dft_compute": {"max_concurrent": 2}},
    )
    config = builder.dft_compute.get_dict()
    assert config["kpoints_density"] == spacing
    assert config["max_concurrent"] == 2
    assert (config["ecutwfc"], config["ecutrho"]) == (16.0, 64.0)


def test_pw_base_builder_carries_the_recovery_strategy(pw_code, pseudo_family):
    builder = AutopipePwBaseWorkChain.get_builder_from_protocol(
        pw_code, silicon(), overrides={"pseudo_family": pseudo_family.label, "recovery_strategy": "default"}
    )
    assert builder.recovery_strategy.value == "default"
    assert builder.pw.parameters["SYSTEM"]["ecutwfc"] == 16.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"magnetism": "ferrimagnetic"}, "magnetism"),
        ({"recovery_strategy": "gentle"}, "recovery_strategy"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"ecutwfc": -1.0}, "ecutwfc"),
    ],
)
def test_bad_dft_compute_is_rejected(aiida_profile, change, message):
    config = {"pseudo_family": "x", "ecutwfc": 30.0, "ecutrho": 240.0, **change}
    assert message in validate_dft_compute(orm.Dict(config), None)
    assert "pseudo_family" in validate_dft_compute(orm.Dict({"ecutwfc": 1.0, "ecutrho": 2.0}), None)
