"""The Computer's MPI launch follows the config's command; Codes are registered once and reused."""

import pytest

from aiida_autopipe.engines.codes import configure_launch, ensure_code, ensure_localhost, mpirun_template


@pytest.mark.parametrize(
    ("command", "template"),
    [
        (
            ["mpirun", "--allow-run-as-root", "-np", "2", "pw.x"],
            ["mpirun", "--allow-run-as-root", "-np", "{tot_num_mpiprocs}"],
        ),
        (["srun", "-n", "64", "pw.x"], ["srun", "-n", "{tot_num_mpiprocs}"]),
        (["mpiexec", "pw.x"], ["mpiexec", "-np", "{tot_num_mpiprocs}"]),
        (["pw.x"], ["mpirun", "-np", "{tot_num_mpiprocs}"]),
    ],
)
def test_mpirun_template_keeps_the_launcher_and_templates_the_rank_count(command, template):
    assert mpirun_template(command) == template


def test_codes_are_created_once_and_the_launch_follows_the_config(aiida_profile_clean, tmp_path):
    computer = ensure_localhost(tmp_path, ["mpirun", "-np", "{tot_num_mpiprocs}"], cores=2)
    first = ensure_code("pacemaker", computer)
    again = ensure_code("pacemaker", computer)
    assert first.created and not again.created
    configure_launch(["mpirun", "--allow-run-as-root", "-np", "2", "pw.x"], ranks=2)
    assert computer.get_mpirun_command() == ["mpirun", "--allow-run-as-root", "-np", "{tot_num_mpiprocs}"]
    assert computer.get_default_mpiprocs_per_machine() == 2


def test_missing_executable_is_a_clear_error(aiida_profile_clean, tmp_path):
    from aiida_autopipe.core.errors import InputError

    computer = ensure_localhost(tmp_path, ["mpirun", "-np", "{tot_num_mpiprocs}"], cores=1)
    with pytest.raises(InputError, match=r"codes\.pw: executable '/nowhere/pw.x' not found"):
        ensure_code("pw", computer, "/nowhere/pw.x")
