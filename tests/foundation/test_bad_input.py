"""Bad input: one line naming the field and the fix, exit code 2, and nothing stored in the profile."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_autopipe.cli.main import cli

MLIP_PIPE = str(Path(sys.executable).parent / "mlip-pipe")

BAD_INPUTS = {
    "unknown element": (
        "system:\n  elements: [Fe, Xq]\n",
        "system.elements",
        "'Xq' is not a chemical element",
    ),
    "unparsable composition": ("system:\n  composition: 'Fe-Pt'\n", "system.composition", "cannot parse"),
    "empty element list": ("system:\n  elements: []\n  composition: Si\n", "system.elements", "empty"),
    "reversed temperatures": (
        "system:\n  composition: Si\nsimulation:\n  temperature: [1000, 300]\n",
        "simulation.temperature",
        "increasing order",
    ),
    "non-positive temperature": (
        "system:\n  composition: Si\nsimulation:\n  temperature: [0, 300]\n",
        "simulation.temperature",
        "greater than 0",
    ),
    "typo in a key": (
        "system:\n  composition: Si\nsimulaton:\n  temperature: [300, 600]\n",
        "simulaton",
        "simulation",
    ),
    "typo in a nested key": (
        "system:\n  compositon: Si\n",
        "system.compositon",
        "did you mean 'composition'",
    ),
    "missing structure file": (
        "system:\n  structure_file: nowhere.cif\n",
        "system.structure_file",
        "does not exist",
    ),
    "shell metacharacters in command": (
        "system:\n  composition: Si\ndft_compute:\n  command: 'mpirun -np 2 pw.x; rm -rf /'\n",
        "dft_compute.command",
        "shell metacharacters",
    ),
    "command substitution in command": (
        "system:\n  composition: Si\ndft_compute:\n  command: ['pw.x', '$(reboot)']\n",
        "dft_compute.command",
        "shell metacharacters",
    ),
    "elements disagree with composition": (
        "system:\n  elements: [Fe]\n  composition: FePt\n",
        "system.elements",
        "do not match",
    ),
    "negative generation count": (
        "system:\n  composition: Si\nsimulation:\n  active_learning:\n    max_generations: -2\n",
        "simulation.active_learning.max_generations",
        "greater than 0",
    ),
    "not a mapping": ("- just\n- a list\n", "input", "mapping"),
    "invalid yaml": ("system: [unclosed\n", "input", "not valid YAML"),
    "empty input file": ("", "input", "does not hold a mapping"),
    "no system section": ("simulation:\n  temperature: [300, 600]\n", "system", "is required"),
    "all amounts zero": (
        "system:\n  composition: {Fe: 0, Pt: 0}\n",
        "system.composition",
        "all amounts are zero",
    ),
    "negative amount": ("system:\n  composition: {Fe: -1, Pt: 1}\n", "system.composition", "negative amount"),
    "lower-case symbol": ("system:\n  elements: [si]\n", "system.elements", "'si' is not a chemical element"),
    "element without data": ("system:\n  elements: [Og]\n", "system.elements", "no tabulated atomic radius"),
    "empty structure file": (
        "system:\n  structure_file: empty.cif\n",
        "system.structure_file",
        "cannot read",
    ),
    "garbage structure file": (
        "system:\n  structure_file: garbage.cif\n",
        "system.structure_file",
        "cannot read",
    ),
    "composition and structure file": (
        "system:\n  composition: Si\n  structure_file: si.xyz\n",
        "system.composition",
        "both a composition and a structure_file",
    ),
    "unknown generation knob": (
        "system:\n  composition: Si\n  generation: {min_atoms: 8}\n",
        "system.generation",
        "unknown keys ['min_atoms']",
    ),
    "unknown structure type": (
        "system:\n  composition: Si\n  structure_type: metallic\n",
        "system.structure_type",
        "'metallic'",
    ),
    "negative cutoff": (
        "system:\n  composition: Si\ndft_compute:\n  ecutwfc: -30\n",
        "dft_compute.ecutwfc",
        "greater than 0",
    ),
    "zero k-point density": (
        "system:\n  composition: Si\ndft_compute:\n  kpoints_density: 0\n",
        "dft_compute.kpoints_density",
        "greater than 0",
    ),
    "unknown smearing": (
        "system:\n  composition: Si\ndft_compute:\n  smearing: fermi\n",
        "dft_compute.smearing",
        "'fermi'",
    ),
    "unknown magnetism": (
        "system:\n  composition: Fe\ndft_compute:\n  magnetism: ferrimagnetic\n",
        "dft_compute.magnetism",
        "'ferrimagnetic'",
    ),
    "missing pseudopotential folder": (
        "system:\n  composition: Si\ndft_compute:\n  pseudo_dir: /nonexistent/upf\n",
        "dft_compute.pseudo_dir",
        "does not exist",
    ),
    "section not a mapping": ("system:\n  composition: Si\ndft_compute: 42\n", "dft_compute", "dictionary"),
    "negative loss weight": (
        "system:\n  composition: Si\nmlip_training:\n  loss_weights: {energy: 1, force: -100, stress: 10}\n",
        "mlip_training.loss_weights.force",
        "greater than or equal to 0",
    ),
    "test fraction of one": (
        "system:\n  composition: Si\nmlip_training:\n  test_fraction: 1.0\n",
        "mlip_training.test_fraction",
        "less than 1",
    ),
    "unsupported model": (
        "system:\n  composition: Si\nmlip_training:\n  model: nequip\n",
        "mlip_training.model",
        "'nequip'",
    ),
    "percentile out of range": (
        "system:\n  composition: Si\nsimulation:\n  active_learning:\n"
        "    uncertainty_threshold: dynamic_50percentile\n",
        "simulation.active_learning.uncertainty_threshold",
        "percentile 50",
    ),
    "unknown surrogate": (
        "system:\n  composition: Si\nsimulation:\n  active_learning:\n    surrogate_model: gpt4\n",
        "simulation.active_learning.surrogate_model",
        "unknown surrogate 'gpt4'",
    ),
    "missing surrogate model file": (
        "system:\n  composition: Si\nsimulation:\n  active_learning:\n    surrogate_model: mine.model\n",
        "simulation.active_learning.surrogate_model",
        "does not exist",
    ),
    "temperature as text": (
        "system:\n  composition: Si\nsimulation:\n  temperature: hot\n",
        "simulation.temperature",
        "valid list",
    ),
    "three temperatures": (
        "system:\n  composition: Si\nsimulation:\n  temperature: [300, 600, 900]\n",
        "simulation.temperature",
        "[T_min, T_max]",
    ),
    "pressure not a number": (
        "system:\n  composition: Si\nsimulation:\n  pressure: [high]\n",
        "simulation.pressure",
        "valid number",
    ),
}

#: Files beside input.yaml that some cases point at.
STRUCTURE_FILES = {
    "empty.cif": "",
    "garbage.cif": "this is not a crystal\n",
    "si.xyz": "2\n\nSi 0 0 0\nSi 1.36 1.36 1.36\n",
}


def count_rows() -> int:
    return sum(
        orm.QueryBuilder().append(cls).count() for cls in (orm.Node, orm.Computer, orm.Group, orm.User)
    )


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_field(case, aiida_profile, tmp_path, monkeypatch):
    text, field, phrase = BAD_INPUTS[case]
    (tmp_path / "input.yaml").write_text(text)
    for name, content in STRUCTURE_FILES.items():
        (tmp_path / name).write_text(content)
    monkeypatch.chdir(tmp_path)
    before = count_rows()
    result = CliRunner().invoke(cli, ["run", "input.yaml", "--profile", aiida_profile.name])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {field}"), lines[0]
    assert phrase in lines[0] and "fix:" in lines[0]
    assert count_rows() == before
    assert not (tmp_path / "exec_config_dump.yaml").exists()


def test_the_installed_command_prints_one_line_and_exits_2(tmp_path):
    """The real console script, in a fresh process with no profile at all."""
    (tmp_path / "input.yaml").write_text(BAD_INPUTS["unknown element"][0])
    env = {**os.environ, "AIIDA_PATH": str(tmp_path / "aiida")}
    result = subprocess.run([MLIP_PIPE, "input.yaml"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: system.elements: 'Xq' is not a chemical element")
    )
    assert not (tmp_path / "aiida").exists() or not list((tmp_path / "aiida").rglob("*.sqlite*"))


def test_missing_input_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["expand", "absent.yaml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: input: file 'absent.yaml' does not exist")
