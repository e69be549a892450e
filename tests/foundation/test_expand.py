"""Expanding input.yaml into the full config: heuristics fill every key, the user's values win."""

from pathlib import Path

import pytest
import yaml

from aiida_autopipe.core.config.expand import dump_full_config, expand_config, load_user_config
from aiida_autopipe.core.config.schema import FullConfig

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_seed_fept_input_expands_to_a_ferromagnetic_alloy(environment):
    user, base = load_user_config(EXAMPLES / "fept" / "input.yaml")
    config = expand_config(user, environment, base)
    assert config.system.structure_type == "alloy"
    assert config.system.composition == {"Fe": 0.5, "Pt": 0.5}
    assert config.dft_compute.magnetism == "ferromagnetic"
    assert (config.dft_compute.ecutwfc, config.dft_compute.ecutrho) == (90.0, 360.0)
    assert config.dft_compute.command == ["mpirun", "--allow-run-as-root", "-np", "2", "/usr/bin/pw.x"]
    assert config.simulation.temperature_steps == [300.0, 475.0, 650.0, 825.0, 1000.0]
    assert config.mlip_training.loss_weights.model_dump() == {"energy": 1.0, "force": 100.0, "stress": 10.0}
    assert config.simulation.active_learning.uncertainty_threshold == "dynamic_95percentile"


def test_every_filled_key_has_a_recorded_decision(environment):
    config = expand_config({"system": {"composition": "Si"}}, environment)
    recorded = {decision.key for decision in config.decisions}
    for section in ("system", "simulation", "exploration", "dft_compute", "mlip_training"):
        for key, value in getattr(config, section).model_dump().items():
            if key in ("active_learning", "pseudo_family_source") or value is None:
                continue
            assert f"{section}.{key}" in recorded, f"{section}.{key} has no recorded decision"
    family = next(d for d in config.decisions if d.key == "dft_compute.pseudo_family")
    assert family.source == "environment" and family.reason == "made up for the tests"


def test_user_values_win_over_heuristics(environment):
    user = {
        "system": {"composition": "FePt", "structure_type": "ionic"},
        "dft_compute": {"magnetism": "none", "degauss": 0.01, "command": "pw.x -nk 1"},
        "mlip_training": {"r_cut": 6.5, "loss_weights": {"force": 50}},
        "simulation": {"temperature": [300, 600], "active_learning": {"max_generations": 3}},
    }
    config = expand_config(user, environment)
    assert config.system.structure_type == "ionic"
    assert config.dft_compute.magnetism == "none"
    assert config.dft_compute.degauss == 0.01
    assert config.dft_compute.command == ["pw.x", "-nk", "1"]
    assert config.mlip_training.r_cut == 6.5
    assert config.mlip_training.loss_weights.model_dump() == {"energy": 1.0, "force": 50.0, "stress": 10.0}
    assert config.simulation.active_learning.max_generations == 3
    sources = {d.key: d.source for d in config.decisions}
    assert sources["system.structure_type"] == "user" and sources["dft_compute.magnetism"] == "user"


def test_structure_file_replaces_the_composition(environment):
    user, base = load_user_config(EXAMPLES / "structure_file" / "input.yaml")
    config = expand_config(user, environment, base)
    assert config.system.elements == ["Mg", "O"]
    assert config.system.composition == {"Mg": 0.5, "O": 0.5}
    assert config.system.structure_type == "ionic"
    assert Path(config.system.structure_file).is_absolute()


def test_dump_round_trips_through_the_schema(environment, tmp_path):
    config = expand_config({"system": {"composition": "FePt"}}, environment)
    path = dump_full_config(config, tmp_path / "exec_config_dump.yaml")
    assert FullConfig.model_validate(yaml.safe_load(path.read_text())) == config


def test_missing_family_element_is_named(environment):
    from aiida_autopipe.core.errors import InputError

    with pytest.raises(InputError, match=r"dft_compute\.pseudo_family: .*no pseudopotential for F, Li"):
        expand_config({"system": {"composition": "LiF"}}, environment)


def test_own_upf_folder_becomes_the_family_with_its_suggested_cutoffs(aiida_profile, tmp_path):
    import shutil

    from aiida_autopipe.engines.environment import detect_environment

    folder = tmp_path / "my_pseudos"
    folder.mkdir()
    shutil.copy("/usr/share/espresso/pseudo/Si.pbe-nl-rrkjus_psl.1.0.0.UPF", folder)
    user = {"system": {"composition": "Si"}, "dft_compute": {"pseudo_dir": "my_pseudos"}}
    environment = detect_environment(aiida_profile.name, user, tmp_path)
    config = expand_config(user, environment, tmp_path)
    assert config.dft_compute.pseudo_family.startswith("autopipe/local/PBE/")
    assert config.dft_compute.pseudo_dir == str(folder)
    assert (config.dft_compute.ecutwfc, config.dft_compute.ecutrho) == environment.pseudo_family.cutoffs_ry[
        "Si"
    ]
    assert config.dft_compute.ecutwfc > 20


def test_own_upf_files_without_cutoff_hints_take_the_cutoffs_of_the_input(
    aiida_profile, tmp_path, monkeypatch
):
    import shutil

    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.engines.environment import detect_environment

    monkeypatch.setenv("AUTOPIPE_PSEUDO_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "lda"
    folder.mkdir()
    for name in ("Al.pz-vbc.UPF", "Mg.pz-n-vbc.UPF"):  # Debian's files carry no suggested cutoffs
        shutil.copy(f"/usr/share/espresso/pseudo/{name}", folder)
    user = {"system": {"composition": "Al7Mg"}, "dft_compute": {"pseudo_dir": "lda"}}
    with pytest.raises(InputError, match=r"dft_compute\.pseudo_dir: .*suggests no cutoff") as error:
        detect_environment(aiida_profile.name, user, tmp_path)
    assert "dft_compute.ecutwfc" in error.value.fix

    user["dft_compute"].update(ecutwfc=16, ecutrho=64)
    environment = detect_environment(aiida_profile.name, user, tmp_path)
    config = expand_config(user, environment, tmp_path)
    assert config.dft_compute.pseudo_family.startswith("autopipe/local/LDA/")
    assert (config.dft_compute.ecutwfc, config.dft_compute.ecutrho) == (16, 64)
    assert environment.pseudo_family.cutoffs_ry == {"Al": (16.0, 64.0), "Mg": (16.0, 64.0)}
