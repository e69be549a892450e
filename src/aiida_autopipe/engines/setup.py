"""`mlip-pipe setup`: everything a fresh machine needs before the first run, idempotent.

Profile, pw.x, the localhost Computer, the Codes and a pseudopotential family. Each step reuses what exists,
so running it again (as `mlip-pipe run` does) costs a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from aiida_autopipe.core.config import heuristics
from aiida_autopipe.engines.codes import CODES, ensure_code, ensure_localhost, mpirun_template
from aiida_autopipe.engines.profile import PostgresServer, ensure_profile
from aiida_autopipe.engines.quantum_espresso import ensure_pw

#: `core.slurm`, also reading wall-time and memory kills below stderr's first line (engines/slurm_scheduler).
SLURM_SCHEDULER = "autopipe.slurm"
#: Elements the default offline family must cover, so the common demos run without another download.
CORE_ELEMENTS = ("H", "Li", "C", "O", "Mg", "Al", "Si", "Fe", "Ni", "Cu", "Pt")


@dataclass
class SetupReport:
    """What set-up found or did, one line per step, for the terminal and the full config."""

    lines: list[str] = field(default_factory=list)

    def add(self, step: str, message: str) -> None:
        self.lines.append(f"{step:<12} {message}")


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads do not speed up pw.x)."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def run_setup(
    profile_name: str = "autopipe",
    storage: str = "sqlite",
    postgres: PostgresServer | None = None,
    install_engines: bool = True,
    pw_executable: str | None = None,
    slurm: bool = False,
) -> SetupReport:
    """Create or reuse the profile, engines, Computer, Codes and pseudopotential family.

    With `slurm`, also start this machine's single-node Slurm and register the same Codes on the
    `slurm-localhost` Computer (Slurm), so a run can be pointed at it with `resources.computer`.
    """
    from aiida.manage.configuration.settings import AiiDAConfigDir

    from aiida_autopipe.engines.pseudo_family import ensure_pseudo_family

    report = SetupReport()
    profile = ensure_profile(profile_name, storage, postgres)
    report.add(
        "profile",
        f"{profile.name} ({profile.storage} storage, {profile.broker} broker)"
        + (" created" if profile.created else " reused"),
    )
    if profile.note:
        report.add("broker", profile.note)

    if pw_executable is None:
        pw = ensure_pw(install=install_engines)
        report.add("pw.x", f"{pw.executable or 'MISSING'}: {pw.action}")
        pw_executable = pw.executable

    cores = physical_cores()
    launch = heuristics.launch_command("pw.x", heuristics.mpi_ranks(cores), os.geteuid() == 0)
    computer = ensure_localhost(
        AiiDAConfigDir.get() / "scratch" / profile.name, mpirun_template(launch), cores
    )
    report.add(
        "computer",
        f"{computer.label} (core.direct, {cores} cores, mpirun: {' '.join(mpirun_template(launch))})",
    )

    computers = [computer]
    if slurm:
        from aiida_autopipe.engines.slurm import SLURM_COMPUTER, start_local_slurm

        cluster = start_local_slurm()
        slurm_computer = ensure_localhost(
            AiiDAConfigDir.get() / "scratch" / f"{profile.name}-slurm",
            mpirun_template(launch),
            cores,
            label=SLURM_COMPUTER,
            scheduler_type=SLURM_SCHEDULER,
        )
        computers.append(slurm_computer)
        report.add(
            "computer",
            f"{slurm_computer.label} ({SLURM_SCHEDULER}, node {cluster.host}, {cluster.cpus} CPUs, "
            f"partition {cluster.partition})",
        )

    for target in computers:
        for label in CODES:
            executable = pw_executable if label == "pw" else None
            if label == "pw" and executable is None:
                report.add("code", "pw: skipped, pw.x not available")
                continue
            code = ensure_code(label, target, executable)
            new = " (new)" if code.created else ""
            report.add("code", f"{code.label}@{target.label} -> {code.executable}{new}")

    family = ensure_pseudo_family(list(CORE_ELEMENTS))
    report.add("pseudo", f"{family.label}: {family.reason}")
    report.add("device", describe_accelerator())
    return report


def describe_accelerator() -> str:
    """Which device the surrogate and MD runners will use here."""
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"CUDA available ({names}): surrogate and MD runners use the GPU"
    return f"no GPU seen by torch {torch.__version__}: surrogate and MD runners use the CPU"
