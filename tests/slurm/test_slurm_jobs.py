"""The pipeline's jobs through a real Slurm: labels and a surrogate run complete, a killed pw.x is recovered.

The resources come from the full config (`expand_config` with a `resources` section naming the Slurm
Computer and its partition), turned into `metadata.options` by the same function the workflows use.
"""

import subprocess
import threading
import time

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_autopipe.core.config.expand import Environment, PseudoFamilyFacts, expand_config
from aiida_autopipe.core.config.resources import scheduler_options, surrogate_device
from aiida_autopipe.engines.slurm import PARTITION, SLURM_COMPUTER
from aiida_autopipe.workflows.labeling import LabelingWorkChain
from aiida_autopipe.workflows.pw_base import CRASH_EXIT_CODES, RECOVERY_EXTRA

pytestmark = [pytest.mark.slurm, pytest.mark.pw]


def full_config(family_label):
    """The full config of a silicon run whose jobs go to the local Slurm's partition."""
    environment = Environment(
        physical_cores=2,
        is_root=True,
        pw_executable="/usr/bin/pw.x",
        pseudo_family=PseudoFamilyFacts(family_label, "test", "Debian's Si file", {"Si": (16.0, 64.0)}),
    )
    user = {
        "system": {"elements": ["Si"]},
        "dft_compute": {"mpi_ranks": 1, "kpoints_density": 0.5, "max_walltime_seconds": 300},
        "resources": {"computer": SLURM_COMPUTER, "queue": PARTITION, "surrogate": {"omp_threads": 1}},
    }
    return expand_config(user, environment)


def labeling_inputs(config, structure, kpoints_density=None):
    dft_compute = config.dft_compute.model_dump()
    if kpoints_density:
        dft_compute["kpoints_density"] = kpoints_density
    dft_compute["scheduler_options"] = scheduler_options(config.resources.model_dump(), "pw")
    return {
        "structures": {"si2": structure},
        "dft_compute": orm.Dict(dft_compute),
        "pw_code": orm.load_code(f"pw@{SLURM_COMPUTER}"),
    }


def silicon():
    from ase.build import bulk

    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43))


def pw_calculations(labeling):
    """The PwCalculations under a LabelingWorkChain, in launch order."""
    return sorted(
        (node for node in labeling.called_descendants if node.process_type.endswith("quantumespresso.pw")),
        key=lambda node: node.pk,
    )


def submit_script(calculation):
    return calculation.base.repository.get_object_content("_aiidasubmit.sh")


def test_labeling_runs_through_slurm(slurm_computer, silicon_family):
    config = full_config(silicon_family.label)
    _, node = run_get_node(LabelingWorkChain, **labeling_inputs(config, silicon()))

    assert node.is_finished_ok, node.exit_status
    assert set(node.outputs.labels) == {"si2"}
    (calculation,) = pw_calculations(node)
    assert calculation.computer.label == SLURM_COMPUTER
    assert calculation.get_job_id().isdigit()
    script = submit_script(calculation)
    assert f"#SBATCH --partition={PARTITION}" in script
    assert "#SBATCH --time=00:05:00" in script
    assert "#SBATCH --ntasks-per-node=1" in script


@pytest.mark.surrogate
def test_surrogate_job_runs_through_slurm(slurm_computer):
    """CHGNet (shipped in its wheel) drives a few MD steps of 2-atom Si in a Slurm job on the CPU."""
    from aiida_autopipe.calculations.surrogate import SurrogateCalculation

    resources = full_config("unused").resources.model_dump()
    md = {"kind": "md", "ensemble": "nvt", "temperatures": [600], "steps": 4, "save_every": 2}
    parameters = {
        "tasks": [md],
        "seed": 1,
        "surrogate": {"requested": "chgnet", "device": surrogate_device(resources)},
        "torch_threads": resources["surrogate"]["omp_threads"],
    }
    outputs, node = run_get_node(
        SurrogateCalculation,
        code=orm.load_code(f"autopipe-surrogate@{SLURM_COMPUTER}"),
        structures={"si2": silicon()},
        parameters=orm.Dict(parameters),
        metadata={"options": scheduler_options(resources, "surrogate")},
    )
    assert node.is_finished_ok, node.exit_message
    assert node.computer.label == SLURM_COMPUTER and node.get_job_id().isdigit()
    assert outputs["output_parameters"]["surrogate"]["device"] == "cpu"
    assert len(outputs["trajectory"].get_array("energies")) == 3
    assert "#SBATCH --cpus-per-task=1" in submit_script(node)


class CancelFirstRunningJob(threading.Thread):
    """Watches squeue and scancels the first new job after it has run `after` seconds, as an admin would."""

    def __init__(self, after=2.0, timeout=120.0):
        super().__init__(daemon=True)
        self.after, self.timeout = after, timeout
        self.cancelled = None

    @staticmethod
    def jobs():
        listing = subprocess.run(["squeue", "-h", "-o", "%i %t"], capture_output=True, text=True).stdout
        return dict(line.split() for line in listing.splitlines())

    def run(self):
        deadline = time.monotonic() + self.timeout
        earlier = set(self.jobs())  # never touch jobs that were there before the test
        while time.monotonic() < deadline:
            running = [job for job, state in self.jobs().items() if state == "R" and job not in earlier]
            if running:
                time.sleep(self.after)
                subprocess.run(["scancel", running[0]], check=True)
                self.cancelled = running[0]
                return
            time.sleep(0.2)


def test_job_cancelled_by_slurm_is_recovered(slurm_computer, silicon_family):
    """scancel kills pw.x mid-SCF (a 21x21x21 mesh keeps it busy for several seconds): the crash handler
    restarts it from scratch and the structure is still labelled."""
    config = full_config(silicon_family.label)
    watcher = CancelFirstRunningJob()
    watcher.start()
    _, node = run_get_node(LabelingWorkChain, **labeling_inputs(config, silicon(), kpoints_density=0.1))
    watcher.join()

    assert watcher.cancelled is not None, "no job was seen running"
    killed, rerun = pw_calculations(node)
    assert killed.get_job_id() == watcher.cancelled
    # pw.x died mid-SCF: its parser finds incomplete output (no sacct here to tell a cancelled job apart)
    crash_statuses = {code.status for code in CRASH_EXIT_CODES}
    assert killed.exit_status in crash_statuses, (killed.exit_status, killed.exit_message)
    assert rerun.is_finished_ok and rerun.get_job_id() != killed.get_job_id()
    (pw_base,) = [child for child in node.called if child.process_label == "AutopipePwBaseWorkChain"]
    assert [entry["handler"] for entry in pw_base.base.extras.get(RECOVERY_EXTRA)] == ["handle_crashed_run"]
    assert node.is_finished_ok and set(node.outputs.labels) == {"si2"}
