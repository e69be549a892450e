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
}


def count_rows() -> int:
    return sum(
        orm.QueryBuilder().append(cls).count() for cls in (orm.Node, orm.Computer, orm.Group, orm.User)
    )


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_field(case, aiida_profile, tmp_path, monkeypatch):
    text, field, phrase = BAD_INPUTS[case]
    (tmp_path / "input.yaml").write_text(text)
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
