"""Bad input: one line naming the field and the fix, exit code 2, and nothing stored in the profile."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

MLIP_PIPE = str(Path(sys.executable).parent / "mlip-pipe")
VERDI = str(Path(sys.executable).parent / "verdi")

COUNT_ROWS = textwrap.dedent(
    """
    import sys
    from aiida import load_profile, orm
    load_profile(sys.argv[1])
    print(sum(orm.QueryBuilder().append(cls).count() for cls in (orm.Node, orm.Computer, orm.Group)))
    """
)

BAD_INPUTS = {
    "unknown element": ("system:\n  elements: [Fe, Xq]\n", "system.elements", "'Xq' is not a chemical element"),
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
    "typo in a key": ("system:\n  composition: Si\nsimulaton:\n  temperature: [300, 600]\n", "simulaton", "simulation"),
    "typo in a nested key": ("system:\n  compositon: Si\n", "system.compositon", "did you mean 'composition'"),
    "missing structure file": ("system:\n  structure_file: nowhere.cif\n", "system.structure_file", "does not exist"),
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


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A real SQLite + ZeroMQ profile in a private AiiDA folder, with nothing in it yet."""
    aiida_path = tmp_path_factory.mktemp("aiida")
    env = {**os.environ, "AIIDA_PATH": str(aiida_path)}
    subprocess.run(
        [VERDI, "presto", "--profile-name", "bad-input", "--use-zeromq"], env=env, check=True, capture_output=True
    )
    return env


def count_rows(env) -> int:
    result = subprocess.run([sys.executable, "-c", COUNT_ROWS, "bad-input"], env=env, capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_field(case, profile, tmp_path):
    text, field, phrase = BAD_INPUTS[case]
    (tmp_path / "input.yaml").write_text(text)
    before = count_rows(profile)
    result = subprocess.run(
        [MLIP_PIPE, "input.yaml", "--profile", "bad-input"], cwd=tmp_path, env=profile, capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {field}"), lines[0]
    assert phrase in lines[0] and "fix:" in lines[0]
    assert count_rows(profile) == before
    assert not (tmp_path / "exec_config_dump.yaml").exists()


def test_missing_input_file_is_named(profile, tmp_path):
    result = subprocess.run(
        [MLIP_PIPE, "expand", "absent.yaml"], cwd=tmp_path, env=profile, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: input: file 'absent.yaml' does not exist")
