"""Drive `mlip-pipe` and `verdi` as a user would: subprocesses with their own AIIDA_PATH, polled by PK."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).parents[2] / "examples"

PROCESS_STATE = """
import sys
from aiida import load_profile, orm
load_profile(sys.argv[1])
node = orm.load_node(int(sys.argv[2]))
print(node.process_state.value if node.process_state else 'none', node.paused, 'full_config' in node.outputs)
"""


def mlip_pipe(*args, env, cwd=None, check=True):
    result = subprocess.run([BIN / "mlip-pipe", *args], env=env, cwd=cwd, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"mlip-pipe {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def python(script: str, *args, env) -> str:
    """Run `script` in a fresh interpreter (its own AiiDA profile load) and return its stdout."""
    result = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def process_state(env, profile, pk):
    out = python(PROCESS_STATE, profile, str(pk), env=env).split()
    return {"state": out[0], "paused": out[1] == "True", "expanded": out[2] == "True"} if out else {}


def wait_for(probe, condition, timeout=180, interval=2.0):
    """Poll `probe()` until `condition` holds on its result; fail with the last result after `timeout` s."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = probe()
        if result and condition(result):
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not reached within {timeout} s; last seen: {result}")


def wait_for_process(env, profile, pk, condition, timeout=180):
    return wait_for(lambda: process_state(env, profile, pk), condition, timeout)


def verdi(env, profile, *args):
    return subprocess.run([BIN / "verdi", "-p", profile, *args], env=env, capture_output=True, text=True)


def submitted_pk(stdout: str) -> int:
    return int(stdout.split("ActiveLearningWorkChain<")[1].split(">")[0])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


TINY_INPUT = EXAMPLES / "si_wiring" / "input.yaml"

RUN_SUMMARY = """
import sys
from aiida import load_profile, orm
load_profile(sys.argv[1])
node = orm.load_node(int(sys.argv[2]))
outputs = sorted(node.outputs)
generations = node.outputs.metrics.get_dict()["generations"]
frames = node.outputs.dataset.base.extras.get("number_of_frames")
added = sum(row["labels_added"] for row in generations)
print(node.exit_status, ",".join(outputs), len(generations), added, frames)
"""

#: Every pw.x CalcJob under the run: pk, state, success, whether it copied a cached result, its inputs' hash
#: and its structure (a handler's restart is a new CalcJob on the same structure).
PW_CALCULATIONS = """
import sys
from aiida import load_profile, orm
load_profile(sys.argv[1])
top = orm.load_node(int(sys.argv[2]))
for node in top.called_descendants:
    if node.process_type == "aiida.calculations:quantumespresso.pw":
        state = node.process_state.value if node.process_state else "created"
        cached = node.base.caching.is_created_from_cache
        structure = node.inputs.structure.uuid
        print(node.pk, state, node.is_finished_ok, cached, node.base.caching.get_hash(), structure)
"""


def pw_calculations(env, profile, pk) -> list[dict]:
    rows = python(PW_CALCULATIONS, profile, str(pk), env=env).split()
    return [
        {
            "pk": int(pk_),
            "state": state,
            "ok": ok == "True",
            "cached": cached == "True",
            "hash": hash_,
            "structure": structure,
        }
        for pk_, state, ok, cached, hash_, structure in zip(*[iter(rows)] * 6, strict=True)
    ]


def kill_daemon(profile: str) -> int:
    """SIGKILL the profile's circus arbiter and every daemon worker, as a crash or an OOM killer would."""
    killed = 0
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "daemon" in cmdline and (f"-p {profile} " in cmdline or f"--profile {profile} " in cmdline):
            process.send_signal(signal.SIGKILL)
            killed += 1
    return killed


def run_summary(env, profile, pk) -> dict:
    status, outputs, generations, labels_added, frames = python(
        RUN_SUMMARY, profile, str(pk), env=env
    ).split()
    return {
        "exit_status": int(status),
        "outputs": outputs.split(","),
        "generations": int(generations),
        "labels_added": int(labels_added),
        "frames": int(frames),
    }
