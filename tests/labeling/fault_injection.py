"""Faults injected into real pw.x jobs through the job script, and what a LabelingWorkChain made of them.

Each fault is shell text for ``metadata.options`` (``prepend_text`` runs before pw.x, ``append_text`` after),
passed through ``dft_compute.scheduler_options`` exactly as a user's `resources.pw` section would be. Given a
``once`` folder, a fault fires only in the first job that creates that folder (``mkdir`` is atomic), so the
retry runs clean and the restart handler can be seen to work; without it every attempt fails and the structure
must end up reported as failed. Shared by tests/labeling/test_faults.py and bench/faults.py.
"""

from __future__ import annotations

from aiida import orm

PW_PROCESS_TYPE = "aiida.calculations:quantumespresso.pw"


def _guarded(action: str, once: str | None) -> str:
    return f"if mkdir {once} 2>/dev/null; then\n{action}\nfi" if once else action


def kill_pw_mid_run(once: str | None = None, delay: float = 0.5) -> dict:
    """SIGKILL this job's own pw.x (a child of the job script, ``$$``) ``delay`` s after it starts, as the OOM
    killer or a node failure would; gives up after 60 s so that a fast pw.x leaves no stray loop."""
    watcher = (
        "(for _ in $(seq 1200); do if pgrep -P $$ -x pw.x >/dev/null; then "
        f"sleep {delay}; pkill -9 -P $$ -x pw.x; break; fi; sleep 0.05; done) &"
    )
    return {"prepend_text": _guarded(watcher, once)}


def file_size_limit(once: str | None = None, kilobytes: int = 4) -> dict:
    """`ulimit -f`: the job gets SIGXFSZ once a file passes ``kilobytes`` KiB, as on a quota-full disk. With
    Debian's MPI-linked pw.x that already happens in MPI start-up (its shared-memory files), before aiida.out
    grows: a tmpfs work directory (:func:`fill_disk`) is the fault that hits pw.x's own writes."""
    return {"prepend_text": _guarded(f"ulimit -f {kilobytes}", once)}


def truncate_stdout(once: str | None = None, keep_bytes: int = 3000) -> dict:
    """After a clean run, cut aiida.out to its first ``keep_bytes`` bytes (a lost or half-copied file)."""
    action = f"head -c {keep_bytes} aiida.out > aiida.out.cut && mv aiida.out.cut aiida.out"
    return {"append_text": _guarded(action, once)}


def corrupt_xml(once: str | None = None) -> dict:
    """After a clean run, overwrite the middle of pw.x's XML output with binary garbage."""
    action = (
        "xml=$(ls out/*.save/data-file-schema.xml) && "
        'dd if=/dev/urandom of="$xml" bs=1 seek=2000 count=3000 conv=notrunc 2>/dev/null'
    )
    return {"append_text": _guarded(action, once)}


def fill_disk(mount: str, once: str | None = None) -> dict:
    """Fill the file system at ``mount`` (the Computer's tiny work directory) just before pw.x starts and free
    it once pw.x is done, so the next job's files can still be uploaded (a disk that stays full makes AiiDA's
    upload fail and pause the process instead)."""
    fill = f"cat /dev/zero > {mount}/filler 2>/dev/null || true"
    if once:
        fill = _guarded(fill, once)
    return {"prepend_text": fill, "append_text": f"rm -f {mount}/filler"}


def job_stderr(run: orm.CalcJobNode) -> str:
    """The job script's stderr, where bash or MPI names the signal that ended pw.x ("Killed", "signal 25"):
    proof that the fault hit pw.x itself (pw.x's own buffered stdout dies with it)."""
    return run.get_scheduler_stderr() or ""


def pw_runs(node: orm.ProcessNode) -> list[orm.CalcJobNode]:
    """Every pw.x CalcJob under ``node``, in launch order."""
    runs = [child for child in node.called_descendants if child.process_type == PW_PROCESS_TYPE]
    return sorted(runs, key=lambda run: run.ctime)


def labelling_outcome(node: orm.WorkflowNode) -> dict:
    """What a finished LabelingWorkChain did with each structure, checked against its pw.x runs.

    Per structure key: ``labelled`` (bool), ``reported`` (listed in failed_structures), ``failed_runs`` (exit
    statuses of its pw.x runs that failed), ``label_run_ok`` (the run a label came from finished cleanly) and
    ``handlers`` (recovery actions recorded by AutopipePwBaseWorkChain).
    """
    labels = node.outputs.labels if "labels" in node.outputs else {}
    failed = node.outputs.failed_structures.get_list() if "failed_structures" in node.outputs else []
    summary = node.outputs.summary.get_dict() if "summary" in node.outputs else {}
    outcome = {}
    for key in node.inputs.structures:
        states = summary.get(key, {}).get("states", {}).values()
        runs = [run for state in states for run in pw_runs(orm.load_node(state["pk"]))]
        label_run = None
        if key in labels:
            label_run = orm.load_node(labels[key].base.attributes.get("pw_calculation"))
        handlers = [action["handler"] for state in states for action in state.get("recovery", [])]
        outcome[key] = {
            "labelled": key in labels,
            "reported": key in failed,
            "failed_runs": [run.exit_status for run in runs if not run.is_finished_ok],
            "runs": len(runs),
            "label_run_ok": None if label_run is None else label_run.is_finished_ok,
            "handlers": handlers,
        }
    return outcome
