"""AiiDA overhead per label: LabelingWorkChain through the daemon against raw pw.x on the same inputs (Si8).

The profile, Computer and Code are registered exactly as `mlip-pipe setup` does (engines.profile,
engines.codes: SQLite with the ZeroMQ broker, core.direct over core.local, pw.x with its thread environment),
and labels go to a one-worker daemon once its worker listens. Raw pw.x is the job's own script
(_aiidasubmit.sh: same prepend_text, environment, command line) run by hand on a fresh copy of its input
folder.

By default each label is a LabelingWorkChain of its own, followed right away by its raw run, so both see
nearly the same machine load. Printed per label: both wall times, pw.x's own CPU time in both (the same work),
the difference, and the CPU time the daemon spent on the label (with its shells): on a loaded machine every
wait stretches, while that CPU time is what the label costs an idle one, except for the scheduler polls
(engines.codes.JOB_POLL_INTERVAL), whose number grows with the job's wall time. A per-phase table (node
creation times, job-folder file times) shows where each label's wall time went; the time outside the pw.x job
is the overhead least disturbed by load changes between the two runs.

With --batch, all structures go to one LabelingWorkChain, one pw.x run at a time (`max_concurrent: 1`), the
way the pipeline labels; its jobs are then rerun by hand one after the other. The overhead per label is the
batch's wall time minus the raw runs', divided by the number of labels.

With --protocol, the labels are the ones the product makes for Si8 on this machine: the offline
PseudoDojo family's Si and its cutoff hint (the fallback without SSSP) and the protocol's k-point density,
instead of the cheap default setting (Debian's Si.pbe-rrkj.UPF at --ecutwfc, --kpoints-density).

    uv run python bench/labeling_overhead.py [--structures 3] [--ecutwfc 30] [--kpoints-density 0.25]
        [--ranks 1] [--batch] [--protocol fast|balanced|stringent]
"""

import argparse
import itertools
import logging
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import tempfile
import time

os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="autopipe-bench-aiida-"))
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

import numpy as np
import psutil

DEBIAN_PSEUDO = pathlib.Path("/usr/share/espresso/pseudo/Si.pbe-rrkj.UPF")
PW = shutil.which("pw.x") or "/usr/bin/pw.x"
#: Seconds a submitted label may wait for the daemon before its task is sent again.
STUCK_SECONDS = 60


def make_profile(workdir, pseudo):
    """Profile, localhost Computer and pw Code as `mlip-pipe setup` makes them, plus a family of one UPF."""
    from aiida.plugins import DataFactory, GroupFactory

    from aiida_autopipe.engines.codes import ensure_code, ensure_localhost
    from aiida_autopipe.engines.profile import ensure_profile

    ensure_profile("bench", "sqlite")
    computer = ensure_localhost(workdir / "scratch", ["mpirun", "-np", "{tot_num_mpiprocs}"], os.cpu_count())
    ensure_code("pw", computer, PW)
    folder = workdir / "pseudo"
    folder.mkdir()
    shutil.copy(pseudo, folder / pseudo.name)
    family = GroupFactory("pseudo.family.cutoffs").create_from_folder(
        folder, "bench-si", pseudo_type=DataFactory("pseudo.upf")
    )
    return f"pw@{computer.label}", family


def displaced_si8(seed):
    """The cubic diamond cell with every atom displaced by up to 0.1 Angstrom."""
    from aiida import orm
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.positions += np.random.default_rng(seed).uniform(-0.1, 0.1, size=(8, 3))
    return orm.StructureData(ase=atoms)


def wait_for_worker(timeout=120):
    """Return once the daemon worker listens for tasks: a label submitted before that would count the worker's
    own start (Python, AiiDA, the broker connection), paid once per daemon start, as overhead of the first
    label. That label still pays the worker's first imports of the workflow modules."""
    from aiida.manage import get_manager

    broker = get_manager().get_broker()
    # The broker writes its status file seconds after it starts; AiiDA warns at each probe until then.
    broker_logger = logging.getLogger("aiida.broker.zeromq")
    level = broker_logger.level
    broker_logger.setLevel(logging.ERROR)
    try:
        deadline = time.perf_counter() + timeout
        while broker.probe_service_status().get("task_subscribers", 0) < 1:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"no daemon worker listened for tasks within {timeout} s")
            time.sleep(0.5)
    finally:
        broker_logger.setLevel(level)


def pw_cpu_seconds(text):
    """pw.x's own CPU time from the PWSCF line of its output (h, m and s parts: '6m 1.24s CPU')."""
    cpu = re.search(r"PWSCF\s+:(.*?)CPU", text).group(1)
    return sum(
        float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
        for value, unit in re.findall(r"([\d.]+)([hms])", cpu)
    )


def raw_pw(calculation, workdir):
    """Wall time and pw.x CPU time of the job's own script (same prepend_text, environment and command line),
    run by hand in a fresh copy of the job's input folder."""
    source = pathlib.Path(calculation.outputs.remote_folder.get_remote_path())
    folder = workdir / f"raw-{calculation.pk}"
    folder.mkdir()
    for name in ("aiida.in", "_aiidasubmit.sh"):
        shutil.copy(source / name, folder / name)
    shutil.copytree(source / "pseudo", folder / "pseudo")
    (folder / "out").mkdir()
    start = time.perf_counter()
    subprocess.run(["bash", "-e", "_aiidasubmit.sh"], cwd=folder, check=True)
    return time.perf_counter() - start, pw_cpu_seconds((folder / "aiida.out").read_text())


def daemon_cpu_seconds():
    """CPU seconds used so far by the daemon's workers and the shells they waited for (submit, poll)."""
    from aiida.engine.daemon.client import get_daemon_client

    total = 0.0
    for worker in psutil.Process(get_daemon_client().get_daemon_pid()).children(recursive=True):
        times = worker.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


#: Stages of a label, in order: (name, what ends it). Their seconds add up to the AiiDA wall time.
PHASES = (
    ("to worker + labeling", "the daemon worker ran the LabelingWorkChain, which stored its restart chain"),
    ("restart chain launch", "the PwCalculation was stored"),
    ("upload + submit", "the job script started (mtime of _scheduler-stdout.txt)"),
    ("pw.x job", "pw.x wrote its last line (mtime of aiida.out)"),
    ("detect + retrieve", "the retrieved folder was stored"),
    ("parse", "the parser's outputs were stored"),
    ("back to labeling", "assemble_label started"),
    ("label + summary", "the LabelingWorkChain terminated"),
)


def job_seconds(calculation):
    """(start, end) of the pw.x job: the job script started (mtime of _scheduler-stdout.txt) and pw.x wrote
    its last line (mtime of aiida.out)."""
    folder = pathlib.Path(calculation.outputs.remote_folder.get_remote_path())
    return (folder / "_scheduler-stdout.txt").stat().st_mtime, (folder / "aiida.out").stat().st_mtime


def phase_seconds(labeling, key, calculation, submitted_at, terminated_at):
    """Seconds spent in each of PHASES, from node creation times and the job folder's file times."""
    restart_chain = calculation.caller
    assembly = labeling.outputs.labels[key].creator
    marks = [
        submitted_at,
        restart_chain.ctime.timestamp(),
        calculation.ctime.timestamp(),
        *job_seconds(calculation),
        calculation.outputs.retrieved.ctime.timestamp(),
        calculation.outputs.output_parameters.ctime.timestamp(),
        assembly.ctime.timestamp(),
        terminated_at,
    ]
    return [end - start for start, end in itertools.pairwise(marks)]


def label(code, structures, family, args):
    """Submit one LabelingWorkChain of `structures` to the daemon, one pw.x run at a time, and wait for it:
    (the node, when it was submitted, its wall time from submit to termination, when it terminated)."""
    from aiida.engine import submit
    from aiida.engine.processes.control import revive_processes
    from plumpy import ProcessState

    from aiida_autopipe.workflows.labeling import LabelingWorkChain

    dft_compute = {"max_concurrent": 1, "mpi_ranks": args.ranks}
    if not args.protocol:
        dft_compute["kpoints_density"] = args.kpoints_density
    builder = LabelingWorkChain.get_builder_from_protocol(
        code, structures, family.label, protocol=args.protocol, overrides={"dft_compute": dft_compute}
    )
    submitted_at = time.time()
    start = time.perf_counter()
    node = submit(builder)
    while not node.is_terminated:
        time.sleep(0.1)
        if node.process_state == ProcessState.CREATED and time.perf_counter() - start > STUCK_SECONDS:
            # Once here a task submitted right after the daemon started never reached the worker.
            print(f"labeling still not started after {STUCK_SECONDS} s: re-sending its task", flush=True)
            revive_processes([node])
            submitted_at = time.time()
            start = time.perf_counter()
    wall = time.perf_counter() - start
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return node, submitted_at, wall, time.time()


def pw_calculation(labeling, key):
    """The PwCalculation behind one label."""
    from aiida import orm

    return orm.load_node(labeling.outputs.labels[key].base.attributes.get("pw_calculation"))


def aiida_pw_cpu_seconds(calculation):
    """pw.x's own CPU time in a PwCalculation's retrieved output."""
    return pw_cpu_seconds(calculation.outputs.retrieved.base.repository.get_object_content("aiida.out"))


def label_one_by_one(code, family, args, workdir):
    """One LabelingWorkChain per structure, each followed by its raw rerun: the rows and phases to print."""
    rows = []
    phases = []
    for seed in range(args.structures):
        cpu_before = daemon_cpu_seconds()
        structures = {"si8": displaced_si8(seed)}
        node, submitted_at, aiida_wall, terminated_at = label(code, structures, family, args)
        daemon_cpu = daemon_cpu_seconds() - cpu_before
        calculation = pw_calculation(node, "si8")
        phases.append(phase_seconds(node, "si8", calculation, submitted_at, terminated_at))
        aiida_cpu = aiida_pw_cpu_seconds(calculation)
        raw_wall, raw_cpu = raw_pw(calculation, workdir)
        rows.append((aiida_wall, aiida_cpu, raw_wall, raw_cpu, daemon_cpu, os.getloadavg()[0]))
        print(f"label {seed}: AiiDA {aiida_wall:.2f} s, raw pw.x {raw_wall:.2f} s", flush=True)
    return rows, phases


def label_batch(code, family, args, workdir):
    """All structures in one LabelingWorkChain, then their raw reruns one after the other; prints the
    comparison."""
    structures = {f"si8_{seed}": displaced_si8(seed) for seed in range(args.structures)}
    cpu_before = daemon_cpu_seconds()
    node, _, aiida_wall, _ = label(code, structures, family, args)
    daemon_cpu = daemon_cpu_seconds() - cpu_before
    calculations = [pw_calculation(node, key) for key in sorted(structures)]
    jobs = [end - start for start, end in map(job_seconds, calculations)]
    raw = [raw_pw(calculation, workdir) for calculation in calculations]
    raw_wall = sum(wall for wall, _ in raw)
    n_labels = len(structures)
    overhead = (aiida_wall - raw_wall) / n_labels
    print(f"{n_labels} labels in one LabelingWorkChain, one pw.x run at a time")
    print("label  pw.x job in AiiDA  raw pw.x wall  pw.x CPU (AiiDA / raw)")
    for index, (calculation, job, (wall, cpu)) in enumerate(zip(calculations, jobs, raw, strict=True)):
        aiida_cpu = aiida_pw_cpu_seconds(calculation)
        print(f"{index:5d}  {job:15.2f} s  {wall:11.2f} s  {aiida_cpu:9.2f} / {cpu:6.2f} s")
    print(f"batch wall time: AiiDA {aiida_wall:.2f} s, raw pw.x runs {raw_wall:.2f} s in all")
    print(
        f"AiiDA overhead per label (wall): {overhead:.2f} s = {100 * overhead / (raw_wall / n_labels):.1f} % "
        "of raw pw.x"
    )
    print(
        f"  = {(aiida_wall - sum(jobs)) / n_labels:.2f} s per label outside the pw.x jobs"
        f" {(sum(jobs) - raw_wall) / n_labels:+.2f} s of the jobs against raw pw.x (load differences)"
    )
    print(
        f"daemon CPU per label: {daemon_cpu / n_labels:.2f} s = {100 * daemon_cpu / raw_wall:.1f} % of raw "
        "pw.x wall"
    )


def print_one_by_one(rows, phases):
    """The per-label table, the phases and the means of `label_one_by_one`."""
    print("label  AiiDA wall  raw pw.x wall  overhead  pw.x CPU (AiiDA / raw)  daemon CPU  load(1 min)")
    for index, (aiida_wall, aiida_cpu, raw_wall, raw_cpu, daemon_cpu, load) in enumerate(rows):
        print(
            f"{index:5d}  {aiida_wall:8.2f} s  {raw_wall:11.2f} s  {aiida_wall - raw_wall:+7.2f} s"
            f"  {aiida_cpu:9.2f} / {raw_cpu:6.2f} s  {daemon_cpu:8.2f} s  {load:9.2f}"
        )
    print("where each label's AiiDA wall time went (s); the pw.x job is the part raw pw.x also spends:")
    print(f"{'phase':22s}" + "".join(f"{f'label {index}':>9s}" for index in range(len(rows))) + "     mean")
    for column, (name, _) in enumerate(PHASES):
        seconds = [label_phases[column] for label_phases in phases]
        values = "".join(f"{value:9.2f}" for value in seconds)
        print(f"{name:22s}{values}{statistics.mean(seconds):9.2f}")
    job = [name for name, _ in PHASES].index("pw.x job")
    outside_job = statistics.mean(sum(label_phases) - label_phases[job] for label_phases in phases)
    job_minus_raw = statistics.mean(
        label_phases[job] - row[2] for label_phases, row in zip(phases, rows, strict=True)
    )
    aiida_mean = statistics.mean(row[0] for row in rows)
    raw_mean = statistics.mean(row[2] for row in rows)
    daemon_mean = statistics.mean(row[4] for row in rows)
    overhead = aiida_mean - raw_mean
    print(f"mean per label: AiiDA {aiida_mean:.2f} s, raw pw.x {raw_mean:.2f} s")
    print(
        f"AiiDA overhead per label (wall): {overhead:.2f} s = {100 * overhead / raw_mean:.1f} % of raw pw.x"
    )
    print(
        f"  = {outside_job:.2f} s outside the pw.x job (every phase but the job)"
        f" {job_minus_raw:+.2f} s of the job against raw pw.x (same script; load differences)"
    )
    print(
        f"daemon CPU per label: {daemon_mean:.2f} s = {100 * daemon_mean / raw_mean:.1f} % of raw pw.x wall"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=3)
    parser.add_argument("--ecutwfc", type=float, default=30.0)
    parser.add_argument("--kpoints-density", type=float, default=0.25)
    parser.add_argument("--ranks", type=int, default=1, help="MPI ranks per pw.x run")
    parser.add_argument("--batch", action="store_true", help="all structures in one LabelingWorkChain")
    parser.add_argument(
        "--protocol",
        choices=["fast", "balanced", "stringent"],
        help="label as the product does: offline PseudoDojo Si, its cutoff hint, the protocol's k-points",
    )
    args = parser.parse_args()

    from aiida import orm
    from aiida.engine.daemon.client import get_daemon_client

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="autopipe-bench-"))
    if args.protocol:
        from aiida_autopipe.core.pseudopotentials import provision_offline_family
        from aiida_autopipe.workflows.labeling import LabelingWorkChain

        offline = provision_offline_family()
        pseudo, cutoffs = offline.upf_dir / "Si.upf", offline.cutoffs["Si"]
        protocol_inputs = LabelingWorkChain.get_protocol_inputs(args.protocol)
        kpoints_density = protocol_inputs["dft_compute"]["kpoints_density"]
        setting = f"the {args.protocol} protocol with {offline.label} Si ({offline.cutoff_sources['Si']})"
    else:
        pseudo, kpoints_density, setting = DEBIAN_PSEUDO, args.kpoints_density, DEBIAN_PSEUDO.name
        cutoffs = {"cutoff_wfc": args.ecutwfc, "cutoff_rho": 4 * args.ecutwfc}
    code, family = make_profile(workdir, pseudo)
    family.set_cutoffs({"Si": cutoffs}, "normal", unit="Ry")
    print(
        f"Si8 displaced, {setting}: ecutwfc {cutoffs['cutoff_wfc']} Ry, "
        f"kpoints_density {kpoints_density} 1/A, {args.ranks} MPI rank(s)"
    )
    print(
        f"pw.x job environment (Code prepend_text): {orm.load_code(code).prepend_text.replace(chr(10), '; ')}"
    )
    daemon = get_daemon_client()
    daemon.start_daemon(number_workers=1, timeout=120)
    wait_for_worker()
    try:
        if args.batch:
            label_batch(code, family, args, workdir)
        else:
            print_one_by_one(*label_one_by_one(code, family, args, workdir))
    finally:
        daemon.stop_daemon(wait=True, timeout=120)
    print(
        f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
