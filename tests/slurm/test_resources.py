"""The `resources` section: its heuristics, and the scheduler options the workflows derive from it."""

from aiida_autopipe.core.config import heuristics
from aiida_autopipe.core.config.expand import Environment, PseudoFamilyFacts, expand_config
from aiida_autopipe.core.config.resources import scheduler_options, surrogate_device


def expand(user_resources=None, cuda_devices=0):
    environment = Environment(
        physical_cores=4,
        is_root=False,
        pw_executable="/usr/bin/pw.x",
        pseudo_family=PseudoFamilyFacts("family", "test", "test", {"Si": (30.0, 240.0)}),
        cuda_devices=cuda_devices,
    )
    user = {"system": {"elements": ["Si"]}, "dft_compute": {"mpi_ranks": 4}}
    if user_resources is not None:
        user["resources"] = user_resources
    return expand_config(user, environment)


def test_runner_gpus_follow_what_torch_sees():
    assert heuristics.runner_gpus(0) == 0
    assert heuristics.runner_gpus(4) == 1


def test_walltime_per_role():
    assert heuristics.job_walltime_seconds("pw", 1800) == 1800
    assert heuristics.job_walltime_seconds("pacemaker", 1800) == 12 * 3600
    assert heuristics.job_walltime_seconds("surrogate", 1800) == 4 * 3600


def test_defaults_on_a_cpu_workstation():
    config = expand()
    resources = config.resources
    assert resources.computer == "localhost" and resources.queue is None
    assert resources.pw.mpi_ranks == 4 and resources.pw.omp_threads == 1
    assert resources.pw.walltime_seconds == config.dft_compute.max_walltime_seconds
    assert resources.surrogate.mpi_ranks == 1 and resources.surrogate.omp_threads == 4
    assert resources.surrogate.gpus == 0 and resources.otf_md.gpus == 0
    reasons = {decision.key: decision for decision in config.decisions}
    assert reasons["resources.surrogate.gpus"].source == "heuristic"
    assert "0 seen" in reasons["resources.surrogate.gpus"].reason


def test_gpu_machine_gives_the_runners_one_gpu_and_the_user_wins():
    config = expand({"surrogate": {"gpus": 2}, "queue": "gpu", "account": "proj42"}, cuda_devices=1)
    resources = config.resources.model_dump()
    assert resources["otf_md"]["gpus"] == 1 and resources["pacemaker"]["gpus"] == 0
    options = scheduler_options(resources, "surrogate")
    assert options["custom_scheduler_commands"] == "#SBATCH --gres=gpu:2"
    assert options["queue_name"] == "gpu" and options["account"] == "proj42"
    assert surrogate_device(resources) == "auto"
    assert surrogate_device(resources, "pacemaker") == "cpu"


def test_scheduler_options_of_pw():
    options = scheduler_options(expand().resources.model_dump(), "pw")
    assert options["resources"] == {
        "num_machines": 1,
        "num_mpiprocs_per_machine": 4,
        "num_cores_per_mpiproc": 1,
    }
    assert options["withmpi"] is True and options["environment_variables"] == {"OMP_NUM_THREADS": "1"}
    assert "queue_name" not in options and "custom_scheduler_commands" not in options
