"""The whole pipeline as a user runs it: `mlip-pipe setup`, then `mlip-pipe input.yaml`, with real pw.x.

`examples/si_wiring` keeps every module but shrinks it: 8-atom Si cells at 12 Ry, a few MD steps, tiny ACE
fits, and a low fixed gamma threshold, so the on-the-fly loop really halts, labels and retrains. The restart
test SIGKILLs the daemon while the first labels are computed and checks that no pw.x run is repeated.
"""

import os

import pytest
from daemon_helpers import (
    TINY_INPUT,
    kill_daemon,
    mlip_pipe,
    pw_calculations,
    python,
    run_summary,
    submitted_pk,
    verdi,
    wait_for_process,
)

#: Poll (in one interpreter, every 0.2 s) until a pw.x run has finished and another is in flight.
WAIT_MID_LABELING = """
import sys, time
from aiida import load_profile, orm
load_profile(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    top = orm.load_node(int(sys.argv[2]))
    pw = [n for n in top.called_descendants if n.process_type == "aiida.calculations:quantumespresso.pw"]
    finished = [n.pk for n in pw if n.is_finished_ok]
    running = [n.pk for n in pw if not n.is_terminated]
    if finished and running:
        print(finished[0], running[0])
        break
    if top.is_terminated:
        break
    time.sleep(0.2)
"""


@pytest.mark.pw
@pytest.mark.surrogate
@pytest.mark.slow
def test_mlip_pipe_runs_the_whole_loop_on_the_embedded_profile(fresh_aiida, tmp_path):
    mlip_pipe("setup", "--profile", "e2e", env=fresh_aiida)
    finished = mlip_pipe(
        str(TINY_INPUT), "--profile", "e2e", "--protocol", "fast", env=fresh_aiida, cwd=tmp_path
    )
    assert "full config written to exec_config_dump.yaml" in finished.stdout
    assert (tmp_path / "exec_config_dump.yaml").exists()
    pk = int(finished.stdout.split("ActiveLearningWorkChain<")[1].split(">")[0])

    summary = run_summary(fresh_aiida, "e2e", pk)
    assert summary["exit_status"] == 0
    for output in ("dataset", "potential_yace", "active_set", "metrics", "full_config", "validation_report"):
        assert output in summary["outputs"]
    # The loop ran: the low threshold halted generation 1, whose frames were labelled and trained on.
    assert summary["generations"] >= 1 and summary["labels_added"] >= 1
    assert summary["frames"] == 3 + summary["labels_added"]

    report = verdi(fresh_aiida, "e2e", "process", "report", str(pk)).stdout
    assert "Module C: 3 labels added" in report
    assert "generation 1:" in report
    # EOS and C_ij on Module A's diamond seed, never on whichever cell the model ranks lowest.
    assert "validation crystal: Module A's crystal seed 'crystal' (Si8)" in report
    assert "GPa; crystal: Module A's crystal seed 'crystal' (Si8)" in report

    calculations = pw_calculations(fresh_aiida, "e2e", pk)
    assert all(calc["ok"] for calc in calculations)
    assert len({calc["structure"] for calc in calculations}) == summary["frames"]

    graph_file = tmp_path / "provenance.png"
    graph = verdi(fresh_aiida, "e2e", "node", "graph", "generate", "-f", "png", "-O", graph_file, str(pk))
    assert graph.returncode == 0, graph.stderr
    assert graph_file.stat().st_size > 1000

    mlip_pipe("report", str(pk), "--out", str(tmp_path / "report"), "--profile", "e2e", env=fresh_aiida)
    figures = sorted(path.name for path in (tmp_path / "report").glob("*.png"))
    assert len(figures) >= 4, figures
    assert all((tmp_path / "report" / name).stat().st_size > 1000 for name in figures)
    assert f"{pk}" in (tmp_path / "report" / "report.md").read_text()

    archive = tmp_path / "si.aiida"
    mlip_pipe("export", str(pk), "--out", str(archive), "--profile", "e2e", env=fresh_aiida)
    assert archive.stat().st_size > 0


@pytest.mark.services
@pytest.mark.pw
@pytest.mark.surrogate
@pytest.mark.slow
def test_daemon_killed_mid_labeling_loses_no_label_and_repeats_no_pw_run(postgres_env, tmp_path):
    env, profile = postgres_env, f"restart-{os.getpid()}"
    mlip_pipe("setup", "--profile", profile, "--postgres", env=env)
    submitted = mlip_pipe(
        str(TINY_INPUT),
        "--submit",
        "--profile",
        profile,
        "--postgres",
        "--protocol",
        "fast",
        env=env,
        cwd=tmp_path,
    )
    pk = submitted_pk(submitted.stdout)

    seen = python(WAIT_MID_LABELING, profile, str(pk), "900", env=env).split()
    assert seen, "the run never had one pw.x run finished while another was in flight"
    finished_before_kill, in_flight = map(int, seen)
    assert kill_daemon(profile) >= 2, "expected the circus arbiter and at least one worker"
    assert verdi(env, profile, "daemon", "start").returncode == 0

    final = wait_for_process(env, profile, pk, lambda state: state["state"] in ("finished", "excepted"), 1200)
    verdi(env, profile, "daemon", "stop")
    assert final["state"] == "finished"
    assert run_summary(env, profile, pk)["exit_status"] == 0

    calculations = {calc["pk"]: calc for calc in pw_calculations(env, profile, pk)}
    assert calculations[finished_before_kill]["ok"] and calculations[in_flight]["ok"]
    # No pw.x run repeated: every set of inputs ran once, and nothing was even resubmitted to the cache.
    hashes = [calc["hash"] for calc in calculations.values()]
    assert len(hashes) == len(set(hashes))
    assert not any(calc["cached"] for calc in calculations.values())
