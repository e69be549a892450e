"""Reliability under faults, on a fresh PostgreSQL + RabbitMQ profile with real pw.x on tiny Si cells.

1. daemon: examples/si_wiring submitted to the daemon, which is SIGKILLed (arbiter and workers) three times,
   each time once a new pw.x run has finished while another is in flight, and restarted: the run must finish
   with every finished label kept (frames = successful pw.x runs) and no pw.x run repeated (one PwCalculation
   per distinct input hash, none copied from the cache).
2. concurrency: one LabelingWorkChain over N (100) distinct Si2 cells with max_concurrent N, so all N
   AutopipePwBaseWorkChain children and their pw.x jobs are alive at once on a 2-worker daemon (12 Ry, one k
   point: about a second of pw.x each on an idle core). All must be labelled; wall time and the peak number of
   children alive at once (from their creation and last-change times) are printed.
3. pw.x faults, each a LabelingWorkChain on a displaced Si8 cell whose job script injects the fault (see
   tests/labeling/fault_injection.py): pw.x SIGKILLed mid-run, a full disk in the job's working directory
   (a tiny tmpfs mounted as a Computer's work directory, as root; otherwise `ulimit -f`, and the table says
   which), stdout truncated and the XML overwritten with garbage after the run. A fault hitting only the first
   attempt must be handled (a restart handler fires, the clean rerun gives the label); one hitting every
   attempt must be reported (structure listed in failed_structures). Neither may ever become a label.

    uv run python bench/faults.py [--only daemon,concurrency,faults] [--children 100] [--workers 2]

Needs PostgreSQL on localhost:5432 (or AUTOPIPE_POSTGRES_PORT) and RabbitMQ on 5672 (started here if
installed). Everything goes to a fresh AIIDA_PATH; the profile's PostgreSQL database is left for inspection.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
AIIDA_PATH = tempfile.mkdtemp(prefix="autopipe-faults-aiida-")
os.environ["AIIDA_PATH"] = AIIDA_PATH
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
sys.path[:0] = [str(ROOT / "tests" / "daemon"), str(ROOT / "tests" / "labeling")]

import numpy as np  # noqa: E402
from daemon_helpers import (  # noqa: E402
    TINY_INPUT,
    kill_daemon,
    mlip_pipe,
    port_open,
    pw_calculations,
    run_summary,
    submitted_pk,
    verdi,
)
from fault_injection import (  # noqa: E402
    PW_PROCESS_TYPE,
    corrupt_xml,
    file_size_limit,
    fill_disk,
    job_stderr,
    kill_pw_mid_run,
    labelling_outcome,
    pw_runs,
    truncate_stdout,
)

TERMINATED = ("finished", "excepted", "killed")
PARTS = ("daemon", "concurrency", "faults")


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_services():
    if not port_open(5672):
        subprocess.run(["rabbitmq-server", "-detached"], check=False, capture_output=True)
        for _ in range(30):
            if port_open(5672):
                break
            time.sleep(2)
    port = int(os.environ.get("AUTOPIPE_POSTGRES_PORT", 5432))
    missing = [
        name for name, open_ in (("RabbitMQ", port_open(5672)), ("PostgreSQL", port_open(port))) if not open_
    ]
    if missing:
        sys.exit(f"{' and '.join(missing)} not reachable on localhost: start them first")


def set_up_profile(profile):
    """`mlip-pipe setup --postgres`, as a user would, then load the profile here for submitting and checks."""
    mlip_pipe("setup", "--profile", profile, "--postgres", env=dict(os.environ))
    verdi(dict(os.environ), profile, "config", "set", "warnings.rabbitmq_version", "False")
    from aiida import load_profile

    load_profile(profile)


def restart_daemon(profile, workers, stop_first=True):
    """(Re)start the daemon with `workers` workers; after a SIGKILL there is nothing left to stop."""
    env = dict(os.environ)
    if stop_first:
        verdi(env, profile, "daemon", "stop")
    started = verdi(env, profile, "daemon", "start", str(workers))
    assert started.returncode == 0, started.stderr


def process_state(pk):
    """The process state straight from the database (a projection, never a cached node)."""
    from aiida import orm

    query = orm.QueryBuilder().append(orm.ProcessNode, filters={"id": pk}, project="attributes.process_state")
    return query.one()[0]


def pw_states(top_pk):
    """(finished-ok pks, in-flight pks) of the pw.x CalcJobs below `top_pk`: the call tree walked afresh, the
    states projected straight from the database (never a cached node)."""
    from aiida import orm

    pks = [
        node.pk for node in orm.load_node(top_pk).called_descendants if node.process_type == PW_PROCESS_TYPE
    ]
    if not pks:
        return [], []
    query = orm.QueryBuilder().append(
        orm.CalcJobNode,
        filters={"id": {"in": pks}},
        project=["id", "attributes.process_state", "attributes.exit_status"],
    )
    finished, running = [], []
    for pk, state, exit_status in query.all():
        if state == "finished" and exit_status == 0:
            finished.append(pk)
        elif state not in TERMINATED:
            running.append(pk)
    return finished, running


def wait_terminated(pk, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_state(pk) in TERMINATED:
            return True
        time.sleep(2)
    return False


def labelled_pw_work_chains(top_pk):
    """AutopipePwBaseWorkChains under the run's labeling children that finished OK: one frame each."""
    from aiida import orm

    top = orm.load_node(top_pk)
    return [
        node.pk
        for node in top.called_descendants
        if node.process_label == "AutopipePwBaseWorkChain" and node.is_finished_ok
    ]


def repeated_runs(calculations):
    """Groups of PwCalculation pks that share one input hash: the same pw.x run done more than once."""
    groups = {}
    for calc in calculations:
        groups.setdefault(calc["hash"], []).append(calc["pk"])
    return [pks for pks in groups.values() if len(pks) > 1]


def daemon_kills(profile, workers, kills, timeout, kill_wait):
    """Part 1: `kills` SIGKILLs of the daemon during examples/si_wiring, each once a new pw.x run has finished
    while another is in flight (or, when that does not come within `kill_wait` s, wherever the run is)."""
    env = dict(os.environ)
    restart_daemon(profile, workers)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="autopipe-faults-run-"))
    submitted = mlip_pipe(
        str(TINY_INPUT),
        "--submit",
        "--profile",
        profile,
        "--postgres",
        "--protocol",
        "fast",
        env=env,
        cwd=workdir,
    )
    pk = submitted_pk(submitted.stdout)
    log(f"daemon: examples/si_wiring submitted as ActiveLearningWorkChain<{pk}>")
    kill_moments = []
    finished_at_last_kill = 0
    for number in range(1, kills + 1):
        deadline = time.monotonic() + kill_wait
        mid_labeling = False
        while time.monotonic() < deadline and process_state(pk) not in TERMINATED:
            finished, running = pw_states(pk)
            if len(finished) > finished_at_last_kill and running:
                mid_labeling = True
                break
            time.sleep(0.2)
        if process_state(pk) in TERMINATED:
            log(f"daemon: the run ended before kill {number}")
            break
        finished, running = pw_states(pk)
        killed = kill_daemon(profile)
        kill_moments.append({"finished": finished, "running": running, "killed": killed, "mid": mid_labeling})
        finished_at_last_kill = len(finished)
        log(f"daemon: kill {number}: {killed} daemon processes; pw.x done {finished}, in flight {running}")
        time.sleep(2)
        restart_daemon(profile, workers, stop_first=False)

    ended = wait_terminated(pk, timeout)
    state = process_state(pk)
    summary = run_summary(env, profile, pk) if state == "finished" else {"exit_status": None, "frames": None}
    calculations = pw_calculations(env, profile, pk)
    hashes = [calc["hash"] for calc in calculations]
    by_pk = {calc["pk"]: calc for calc in calculations}
    seen_at_kills = {pk_ for moment in kill_moments for pk_ in moment["finished"] + moment["running"]}
    labelled = labelled_pw_work_chains(pk)
    checks = {
        f"{kills} kills during the run": len(kill_moments) == kills
        and all(moment["killed"] >= 2 for moment in kill_moments),
        "run finished OK": ended and state == "finished" and summary["exit_status"] == 0,
        "no finished label lost (frames = pw.x work chains OK; runs seen at kills OK)": summary["frames"]
        == len(labelled)
        and all(by_pk[pk_]["ok"] for pk_ in seen_at_kills),
        "no pw.x run repeated (distinct input hashes, none cached)": len(hashes) == len(set(hashes))
        and not any(calc["cached"] for calc in calculations),
    }
    detail = (
        f"run <{pk}>: {len(calculations)} pw.x runs ({sum(calc['ok'] for calc in calculations)} OK), "
        f"{len(set(hashes))} distinct inputs, {len(labelled)} pw.x work chains OK, "
        f"{summary['frames']} frames; "
        f"kills after {[len(m['finished']) for m in kill_moments]} finished runs, with "
        f"{[len(m['running']) for m in kill_moments]} in flight "
        f"({sum(m['mid'] for m in kill_moments)} of {len(kill_moments)} mid-labeling); "
        f"repeated pw.x runs (same inputs): {repeated_runs(calculations) or 'none'}"
    )
    return [("daemon SIGKILL x3 during si_wiring", name, passed, detail) for name, passed in checks.items()]


def silicon(n_cells, seed, amplitude):
    from aiida import orm
    from ase.build import bulk

    atoms = bulk("Si", "diamond", a=5.43, cubic=n_cells > 1)
    atoms.positions += np.random.default_rng(seed).uniform(-amplitude, amplitude, atoms.positions.shape)
    return orm.StructureData(ase=atoms)


def silicon_family():
    from aiida import orm
    from aiida.plugins import GroupFactory

    family_class = GroupFactory("pseudo.family")
    for family in orm.QueryBuilder().append(family_class).all(flat=True):
        if "Si" in family.elements:
            return family.label
    raise RuntimeError("mlip-pipe setup installed no pseudopotential family with Si")


def dft_compute(ecutwfc, kpoints_density, **extra):
    return {
        "code": "pw@localhost",
        "pseudo_family": silicon_family(),
        "ecutwfc": ecutwfc,
        "ecutrho": 4 * ecutwfc,
        "kpoints_density": kpoints_density,
        "magnetism": "none",
        "conv_thr_per_atom": 1e-8,
        "max_walltime_seconds": 1800,
        **extra,
    }


def peak_alive(nodes):
    """Most nodes alive at one moment, from each one's creation and last-change (termination) times."""
    events = sorted([(node.ctime, 1) for node in nodes] + [(node.mtime, -1) for node in nodes])
    alive = peak = 0
    for _, step in events:
        alive += step
        peak = max(peak, alive)
    return peak


def concurrency(profile, workers, children, timeout):
    """Part 2: N labeling children at once on a `workers`-worker daemon."""
    from aiida import orm
    from aiida.engine import submit

    from aiida_autopipe.workflows.labeling import LabelingWorkChain

    restart_daemon(profile, workers)
    structures = {f"si2_{index:03d}": silicon(1, index, 0.05) for index in range(children)}
    # 2x2x2 k points: a Gamma-only Si2 cell sometimes has no SCF that converges at all (seen: 1 in 100)
    config = dft_compute(12.0, 1.0, max_concurrent=children)
    start = time.monotonic()
    node = submit(
        LabelingWorkChain,
        structures=structures,
        dft_compute=orm.Dict(config),
        pw_code=orm.load_code("pw@localhost"),
    )
    log(f"concurrency: LabelingWorkChain<{node.pk}> over {children} Si2 cells submitted")
    ended = wait_terminated(node.pk, timeout)
    wall = time.monotonic() - start
    node = orm.load_node(node.pk)
    pw_base = [child for child in node.called if child.process_label == "AutopipePwBaseWorkChain"]
    calculations = pw_runs(node)
    labels = len(node.outputs.labels) if "labels" in node.outputs else 0
    cpu = [
        float(run.outputs.output_parameters["wall_time_seconds"])
        for run in calculations
        if run.is_finished_ok and "wall_time_seconds" in run.outputs.output_parameters.get_dict()
    ]
    detail = (
        f"<{node.pk}>: {labels}/{children} labels, {len(calculations)} pw.x runs, "
        f"peak {peak_alive(pw_base)} children alive at once, wall {wall:.0f} s on {workers} workers"
        + (f", pw.x's own wall time median {np.median(cpu):.1f} s" if cpu else "")
    )
    passed = (
        ended
        and node.is_finished_ok
        and labels == children
        and all(run.is_finished_ok for run in calculations)
    )
    return [(f"{children} concurrent labeling children", "all labelled", passed, detail)]


def mount_tiny_disk(path, megabytes):
    """A tmpfs of `megabytes` at `path` (root only); False where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], capture_output=True
    )
    return result.returncode == 0


def tiny_disk_code(mount, label):
    """pw.x on a Computer whose work directory is the tiny file system, registered as setup registers it."""
    import shutil

    from aiida_autopipe.engines.codes import ensure_code, ensure_localhost

    computer = ensure_localhost(mount, ["mpirun", "-np", "{tot_num_mpiprocs}"], os.cpu_count(), label=label)
    ensure_code("pw", computer, shutil.which("pw.x"))
    from aiida import orm

    return orm.load_code(f"pw@{label}")


def last_line(run):
    """What the job script's stderr ends with: bash's note of the signal that ended pw.x, or pw.x's error."""
    lines = job_stderr(run).strip().splitlines()
    return lines[-1].split(":")[-1].strip()[:60] if lines else ""


def stdout_size(run):
    """Size of the retrieved aiida.out (0 when pw.x wrote nothing, e.g. on a full disk)."""
    try:
        return len(run.outputs.retrieved.base.repository.get_object_content("aiida.out", mode="rb"))
    except (AttributeError, FileNotFoundError, KeyError):
        return None


def pw_faults(profile, workers, timeout, scratch):
    """Part 3: pw.x killed, disk full, corrupt outputs; each once (must be handled) or always (reported)."""
    from aiida import orm
    from aiida.engine import submit

    from aiida_autopipe.workflows.labeling import LabelingWorkChain

    restart_daemon(profile, workers)
    localhost = orm.load_code("pw@localhost")
    mounts = []
    cases = {}

    def disk_case(name, once):
        """A full disk: a tiny tmpfs as the work directory where it can be mounted, else `ulimit -f`."""
        mount = scratch / f"disk_{name}"
        if mount_tiny_disk(mount, 8):
            mounts.append(mount)
            return (
                "tmpfs of 8 MB as work dir",
                fill_disk(str(mount), once),
                tiny_disk_code(mount, f"tiny-{name}"),
            )
        return "ulimit -f 4 KiB fallback", file_size_limit(once), localhost

    def once(name):
        """A marker folder: the fault fires only in the job that creates it."""
        return str(scratch / f"fired_{name}")

    cases[("pw.x SIGKILL mid-run, first attempt", "handled")] = (kill_pw_mid_run(once("kill")), localhost)
    cases[("pw.x SIGKILL mid-run, every attempt", "reported")] = (kill_pw_mid_run(), localhost)
    method, fault, code = disk_case("once", once("disk"))
    cases[(f"disk full ({method}), first attempt", "handled")] = (fault, code)
    method, fault, code = disk_case("always", None)
    cases[(f"disk full ({method}), every attempt", "reported")] = (fault, code)
    cases[("file size limit (ulimit -f), first attempt", "handled")] = (
        file_size_limit(once("ulimit")),
        localhost,
    )
    cases[("aiida.out truncated after the run, first attempt", "handled")] = (
        truncate_stdout(once("truncate")),
        localhost,
    )
    cases[("aiida.out truncated after the run, every attempt", "reported")] = (truncate_stdout(), localhost)
    cases[("XML overwritten with garbage, every attempt", "reported")] = (corrupt_xml(), localhost)

    submitted = {}
    for index, ((title, expected), (fault, code)) in enumerate(cases.items()):
        config = dft_compute(12.0, 0.5, scheduler_options=fault, max_walltime_seconds=600)
        node = submit(
            LabelingWorkChain,
            structures={"si8": silicon(2, 1000 + index, 0.05)},
            dft_compute=orm.Dict(config),
            pw_code=code,
        )
        submitted[(title, expected)] = node.pk
        log(f"faults: {title} -> LabelingWorkChain<{node.pk}>")

    rows = []
    for (title, expected), pk in submitted.items():
        ended = wait_terminated(pk, timeout)
        node = orm.load_node(pk)
        outcome = labelling_outcome(node)["si8"] if ended else {}
        runs = pw_runs(node)
        label_run = None
        if outcome.get("labelled"):
            label_run = orm.load_node(node.outputs.labels["si8"].base.attributes.get("pw_calculation"))
        no_bad_label = label_run is None or (label_run.is_finished_ok and label_run.uuid == runs[-1].uuid)
        fault_seen = bool(outcome.get("failed_runs"))
        if expected == "handled":
            got = outcome.get("labelled") and "handle_crashed_run" in outcome.get("handlers", [])
        else:
            got = outcome.get("reported") and not outcome.get("labelled")
        passed = bool(ended and fault_seen and got and no_bad_label)
        result = "labelled by a clean rerun" if outcome.get("labelled") else "reported as failed"
        detail = (
            f"<{pk}>: runs exit {[run.exit_status for run in runs]}, "
            f"aiida.out bytes {[stdout_size(run) for run in runs]}, "
            f"job stderr {[last_line(run) for run in runs]}, handlers {outcome.get('handlers')}"
        )
        rows.append((title, f"expected {expected}: {result}", passed, detail))

    for mount in mounts:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--children", type=int, default=100, help="labeling children submitted at once")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers")
    parser.add_argument("--kills", type=int, default=3, help="daemon SIGKILLs during the si_wiring run")
    parser.add_argument(
        "--kill-wait", type=float, default=240, help="seconds to wait for a mid-labeling moment before a kill"
    )
    parser.add_argument("--profile", default=f"faults-{os.getpid()}")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each part")
    args = parser.parse_args()
    parts = [part.strip() for part in args.only.split(",") if part.strip()]

    start_services()
    log(f"AIIDA_PATH={AIIDA_PATH}, profile {args.profile} (PostgreSQL + RabbitMQ), load {os.getloadavg()}")
    set_up_profile(args.profile)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="autopipe-faults-"))
    rows = []
    timings = {}
    try:
        for part in parts:
            begin = time.monotonic()
            try:
                if part == "daemon":
                    rows += daemon_kills(args.profile, args.workers, args.kills, args.timeout, args.kill_wait)
                elif part == "concurrency":
                    rows += concurrency(args.profile, args.workers, args.children, args.timeout)
                elif part == "faults":
                    rows += pw_faults(args.profile, args.workers, args.timeout, scratch)
            except Exception as error:  # one broken part must not hide the others' results
                log(f"{part}: {type(error).__name__}: {error}")
                rows.append((part, f"bench error: {type(error).__name__}", False, str(error)[:300]))
            timings[part] = time.monotonic() - begin
    finally:
        verdi(dict(os.environ), args.profile, "daemon", "stop")

    print(f"\n{'fault':<58} {'outcome':<48} result")
    for fault, outcome, passed, _ in rows:
        print(f"{fault:<58} {outcome:<48} {'PASS' if passed else 'FAIL'}")
    print("\ndetails:")
    for fault, _, _, detail in rows:
        print(f"  {fault}: {detail}")
    print(f"\npart wall times (s): { {part: round(seconds) for part, seconds in timings.items()} }")
    print(f"load average at the end: {os.getloadavg()}")
    print(
        "reproduce: uv run python bench/faults.py"
        + (f" --only {args.only}" if set(parts) != set(PARTS) else "")
    )
    for part in parts:
        print(f"  one part: uv run python bench/faults.py --only {part}")
    sys.exit(0 if all(passed for _, _, passed, _ in rows) else 1)


if __name__ == "__main__":
    main()
