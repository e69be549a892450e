"""A single-node Slurm on this machine, and the AiiDA Computer that submits to it.

Debian's `slurm-wlm` starts nothing at install and this machine class has no systemd or cgroups, so the
daemons are started by hand with a minimal configuration: munged, slurmctld and slurmd on localhost, process
tracking without cgroups, no accounting. Every step reuses what already runs, so calling it again is cheap.
It serves the Slurm tests and anyone who wants to try the cluster path before using a real cluster.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aiida_autopipe.core.errors import InputError

#: Label of the AiiDA Computer that submits through this machine's Slurm.
SLURM_COMPUTER = "slurm-localhost"
PARTITION = "debug"
STATE_DIR = Path("/var/tmp/autopipe-slurm")
MUNGE_RUN_DIR = Path("/run/munge")

SLURM_CONF = """\
# Written by aiida_autopipe.engines.slurm: one node, no cgroups, no accounting.
ClusterName=autopipe
SlurmctldHost={host}
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass(frozen=True)
class SlurmCluster:
    """A running local Slurm: its node name, CPU count, partition and configuration file."""

    host: str
    cpus: int
    partition: str
    config: Path


def slurm_installed() -> bool:
    """Whether Debian's slurm-wlm and munge are installed (their daemons are on PATH)."""
    return all(shutil.which(name) for name in ("munged", "slurmctld", "slurmd", "sinfo", "sbatch"))


def write_config(cpus: int, state_dir: Path = STATE_DIR, config_dir: Path = Path("/etc/slurm")) -> Path:
    """slurm.conf for this host with `cpus` CPUs; rewritten only when it changes."""
    host = socket.gethostname().split(".")[0]
    for sub in ("ctld", "d"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    text = SLURM_CONF.format(host=host, state=state_dir, cpus=cpus, partition=PARTITION)
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "slurm.conf"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def _running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", name], capture_output=True).returncode == 0


def _start_munged() -> None:
    """munged as the munge user, with the key Debian's package generated at install."""
    if _running("munged"):
        return
    MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN_DIR, "munge", "munge")
    MUNGE_RUN_DIR.chmod(0o755)
    subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, capture_output=True)


def wait_until_idle(timeout: float = 60) -> str:
    """Block until the node reports `idle` (or `mixed`/`alloc`: already working), return its state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        result = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True)
        state = result.stdout.strip()
        if result.returncode == 0 and state.rstrip("*") in ("idle", "mix", "alloc"):
            return state
        if state.rstrip("*") in ("down", "drain", "unk"):
            subprocess.run(
                ["scontrol", "update", f"NodeName={socket.gethostname().split('.')[0]}", "State=RESUME"],
                capture_output=True,
            )
        time.sleep(1)
    raise RuntimeError(f"the Slurm node did not become idle within {timeout:.0f} s (state: {state!r})")


def start_local_slurm(cpus: int | None = None) -> SlurmCluster:
    """Write the configuration and start munged, slurmctld and slurmd; return once the node is idle.

    Needs root (the daemons and /etc/slurm) and `apt-get install slurm-wlm munge`.
    """
    if not slurm_installed():
        raise InputError(
            "slurm", "slurm-wlm is not installed", "run `apt-get install slurm-wlm munge` (as root)"
        )
    if os.geteuid() != 0:
        raise InputError(
            "slurm", "starting Slurm's daemons needs root", "run `mlip-pipe setup --slurm` as root"
        )
    cpus = cpus or os.cpu_count() or 1
    config = write_config(cpus)
    _start_munged()
    for daemon in ("slurmctld", "slurmd"):
        if not _running(daemon):
            subprocess.run([daemon], check=True, capture_output=True)
    wait_until_idle()
    return SlurmCluster(socket.gethostname().split(".")[0], cpus, PARTITION, config)
