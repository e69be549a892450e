"""From the full config's `resources` section to AiiDA's `metadata.options` of one Code's jobs.

The same options work for the direct scheduler on a workstation and for Slurm: the direct scheduler ignores
the queue, account and `#SBATCH` lines, Slurm turns them into its request.
"""

from __future__ import annotations

from typing import Any

#: Roles with their own entry in `resources`, one per kind of job.
ROLES = ("pw", "surrogate", "pacemaker", "otf_md")


def scheduler_options(resources: dict[str, Any], role: str) -> dict[str, Any]:
    """`metadata.options` for the jobs of `role`: ranks, threads per rank, wall-time, queue, account, GPUs."""
    job = resources[role]
    options: dict[str, Any] = {
        "resources": {
            "num_machines": 1,
            "num_mpiprocs_per_machine": job["mpi_ranks"],
            "num_cores_per_mpiproc": job["omp_threads"],
        },
        "max_wallclock_seconds": job["walltime_seconds"],
        "withmpi": job["mpi_ranks"] > 1,
        "environment_variables": {"OMP_NUM_THREADS": str(job["omp_threads"])},
    }
    if resources.get("queue"):
        options["queue_name"] = resources["queue"]
    if resources.get("account"):
        options["account"] = resources["account"]
    if job["gpus"]:
        options["custom_scheduler_commands"] = f"#SBATCH --gres=gpu:{job['gpus']}"
    return options


def surrogate_device(resources: dict[str, Any], role: str = "surrogate") -> str:
    """The runner's torch device: 'auto' (CUDA when torch sees a GPU) if the job asks for GPUs, else 'cpu'."""
    return "auto" if resources[role]["gpus"] > 0 else "cpu"
