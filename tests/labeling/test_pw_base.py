"""AutopipePwBaseWorkChain's recovery chain on real pw.x runs that really fail to converge."""

import io
import itertools
import os
import pathlib
import signal
import threading
import time
from xml.etree import ElementTree

import numpy as np
import pytest
import xmlschema
from aiida import orm
from aiida.engine import run_get_node
from aiida_quantumespresso.parsers.parse_xml import parse as qe_xml_parse
from labeling_helpers import silicon

from aiida_autopipe.core.dft_parameters import scf_parameters
from aiida_autopipe.workflows.pw_base import CRASH_EXIT_CODES, RECOVERY_EXTRA, AutopipePwBaseWorkChain

pytestmark = pytest.mark.pw


def pw_base_inputs(pw_code, pseudo_family, electrons, strategy="aggressive", max_iterations=8):
    """Inputs for a Si2 single point at 16 Ry, a 3x3x3 mesh, with ELECTRONS overridden by ``electrons``."""
    structure = silicon()
    parameters = scf_parameters(
        n_atoms=2, ecutwfc=16.0, ecutrho=64.0, degauss=0.02, conv_thr_per_atom=2e-10, electron_maxstep=100
    )
    parameters["ELECTRONS"].update(electrons)
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([3, 3, 3])
    return {
        "pw": {
            "code": pw_code,
            "structure": structure,
            "pseudos": pseudo_family.get_pseudos(structure=structure),
            "parameters": orm.Dict(parameters),
            "metadata": {"options": {"resources": {"num_machines": 1}, "withmpi": False}},
        },
        "kpoints": kpoints,
        "recovery_strategy": orm.Str(strategy),
        "max_iterations": orm.Int(max_iterations),
    }


def calculations(node):
    """The PwCalculations of a work chain, in launch order."""
    return sorted(node.called, key=lambda child: child.ctime)


def test_full_chain_in_order_then_no_output(pw_code, pseudo_family):
    """One SCF step per run can never reach conv_thr: every step of the chain fires once, in order, each run
    restarting from the previous charge density, and the work chain ends without any output parameters."""
    inputs = pw_base_inputs(pw_code, pseudo_family, {"electron_maxstep": 1, "conv_thr": 1e-13})
    _, node = run_get_node(AutopipePwBaseWorkChain, **inputs)

    assert node.exit_status == AutopipePwBaseWorkChain.exit_codes.ERROR_SCF_RECOVERY_EXHAUSTED.status
    assert "output_parameters" not in node.outputs
    recovery = node.base.extras.get(RECOVERY_EXTRA)
    assert [(entry["handler"], entry["changes"]) for entry in recovery] == [
        ("handle_scf_lower_mixing_beta", {"ELECTRONS.mixing_beta": [0.7, 0.5]}),
        ("handle_scf_lower_mixing_beta", {"ELECTRONS.mixing_beta": [0.5, 0.3]}),
        ("handle_scf_local_tf_mixing", {"ELECTRONS.mixing_mode": ["plain", "local-TF"]}),
        ("handle_scf_raise_degauss", {"SYSTEM.degauss": [0.02, 0.05]}),
        ("handle_scf_cg_diagonalization", {"ELECTRONS.diagonalization": ["david", "cg"]}),
    ]
    runs = calculations(node)
    assert len(runs) == 6
    assert all(run.exit_status == 410 for run in runs)
    for previous, run in itertools.pairwise(runs):
        assert run.inputs.parameters["ELECTRONS"]["startingpot"] == "file"
        assert run.inputs.parent_folder.uuid == previous.outputs.remote_folder.uuid
    last = runs[-1].inputs.parameters.get_dict()
    assert last["ELECTRONS"]["mixing_beta"] == 0.3
    assert last["ELECTRONS"]["mixing_mode"] == "local-TF"
    assert last["ELECTRONS"]["diagonalization"] == "cg"
    assert last["SYSTEM"]["degauss"] == 0.05


def test_xml_schema_is_built_once_and_parses_like_a_fresh_one(pw_code, pseudo_family, monkeypatch):
    """The parser of a converged run reuses one XMLSchema per schema file (built once per daemon worker), and
    reads the run's XML exactly as with a schema built for it alone."""
    _, node = run_get_node(AutopipePwBaseWorkChain, **pw_base_inputs(pw_code, pseudo_family, {}))
    assert node.is_finished_ok
    xml = calculations(node)[-1].outputs.retrieved.base.repository.get_object_content("data-file-schema.xml")
    schema_file = qe_xml_parse.get_schema_filepath(ElementTree.parse(io.StringIO(xml)))
    assert qe_xml_parse.XMLSchema(schema_file) is qe_xml_parse.XMLSchema(schema_file)

    reused = qe_xml_parse.parse_xml(io.StringIO(xml))
    monkeypatch.setattr(qe_xml_parse, "XMLSchema", xmlschema.XMLSchema)
    fresh = qe_xml_parse.parse_xml(io.StringIO(xml))
    np.testing.assert_equal(reused, fresh)


def test_raised_degauss_is_recomputed_at_requested_smearing(pw_code, pseudo_family):
    """Mixing already at the floor and local-TF: the first failure raises degauss; once that run converges the
    label is recomputed at the requested degauss from its density. From scratch Si2 needs 9 steps here, from a
    density 5, so electron_maxstep 6 fails once and then converges twice."""
    electrons = {"electron_maxstep": 6, "mixing_beta": 0.3, "mixing_mode": "local-TF"}
    _, node = run_get_node(AutopipePwBaseWorkChain, **pw_base_inputs(pw_code, pseudo_family, electrons))

    assert node.is_finished_ok, node.exit_status
    recovery = node.base.extras.get(RECOVERY_EXTRA)
    assert [(entry["handler"], entry["changes"]) for entry in recovery] == [
        ("handle_scf_raise_degauss", {"SYSTEM.degauss": [0.02, 0.05]}),
        ("handle_recompute_at_requested_degauss", {"SYSTEM.degauss": [0.05, 0.02]}),
    ]
    first, raised, final = calculations(node)
    assert first.exit_status == 410
    assert raised.is_finished_ok and raised.inputs.parameters["SYSTEM"]["degauss"] == 0.05
    assert final.inputs.parameters["SYSTEM"]["degauss"] == 0.02
    assert final.inputs.parameters["ELECTRONS"]["startingpot"] == "file"
    assert final.inputs.parent_folder.uuid == raised.outputs.remote_folder.uuid
    assert node.outputs.output_parameters.uuid == final.outputs.output_parameters.uuid
    assert node.outputs.output_parameters["energy"] != raised.outputs.output_parameters["energy"]


def test_default_strategy_is_aiida_quantumespresso_behaviour(pw_code, pseudo_family):
    """`recovery_strategy: default` leaves only aiida-quantumespresso's handler: mixing_beta times 0.8."""
    inputs = pw_base_inputs(
        pw_code,
        pseudo_family,
        {"electron_maxstep": 1, "conv_thr": 1e-13},
        strategy="default",
        max_iterations=2,
    )
    _, node = run_get_node(AutopipePwBaseWorkChain, **inputs)

    assert node.exit_status == AutopipePwBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    assert RECOVERY_EXTRA not in node.base.extras.all
    _, second = calculations(node)
    assert second.inputs.parameters["ELECTRONS"]["mixing_beta"] == pytest.approx(0.7 * 0.8)
    assert "mixing_mode" not in second.inputs.parameters["ELECTRONS"]


def test_crashed_run_is_retried_once_then_reported(pw_code, pseudo_family):
    """Two Fe atoms 0.42 A apart make pw.x abort in the first diagonalisation (overlapping ultrasoft
    augmentation): the crash handler restarts from scratch once, then the work chain fails with no output."""
    from ase import Atoms

    overlapping = orm.StructureData(
        ase=Atoms("Fe2", cell=[2.83] * 3, scaled_positions=[[0, 0, 0], [0.15, 0, 0]], pbc=True)
    )
    inputs = pw_base_inputs(pw_code, pseudo_family, {})
    parameters = scf_parameters(
        n_atoms=2, ecutwfc=16.0, ecutrho=64.0, degauss=0.02, conv_thr_per_atom=2e-10, electron_maxstep=100
    )
    inputs["pw"].update(
        structure=overlapping,
        pseudos=pseudo_family.get_pseudos(structure=overlapping),
        parameters=orm.Dict(parameters),
    )
    _, node = run_get_node(AutopipePwBaseWorkChain, **inputs)

    assert node.exit_status == AutopipePwBaseWorkChain.exit_codes.ERROR_REPEATED_CRASH.status
    assert "output_parameters" not in node.outputs
    assert [entry["handler"] for entry in node.base.extras.get(RECOVERY_EXTRA)] == ["handle_crashed_run"]


def displaced_si8_inputs(pw_code, pseudo_family, electrons=None, control=None, max_iterations=8):
    """Inputs for a displaced Si8 single point at 16 Ry on a 3x3x3 mesh: about 2 s of pw.x on an idle core."""
    displacement = np.zeros((8, 3))
    displacement[0] = [0.08, -0.05, 0.03]
    structure = silicon(n_cells=2, displacement=displacement)
    inputs = pw_base_inputs(pw_code, pseudo_family, electrons or {}, max_iterations=max_iterations)
    parameters = inputs["pw"]["parameters"].get_dict()
    parameters["ELECTRONS"]["conv_thr"] = 8 * 2e-10
    parameters["CONTROL"].update(control or {})
    inputs["pw"].update(
        structure=structure,
        pseudos=pseudo_family.get_pseudos(structure=structure),
        parameters=orm.Dict(parameters),
    )
    return inputs


def test_walltime_stop_restarts_from_saved_state_until_converged(pw_code, pseudo_family):
    """pw.x's own `max_seconds` stops a run cleanly ("Maximum CPU time exceeded", exit 400); each restart
    continues from the saved state (restart_mode 'restart', the previous folder) until the SCF converges, and
    only the converged run gives the outputs."""
    inputs = displaced_si8_inputs(
        pw_code, pseudo_family, {"conv_thr": 1e-12}, {"max_seconds": 1.5}, max_iterations=20
    )
    _, node = run_get_node(AutopipePwBaseWorkChain, **inputs)

    runs = calculations(node)
    assert len(runs) >= 2
    assert all(run.exit_status == 400 for run in runs[:-1])
    assert "Maximum CPU time exceeded" in runs[0].outputs.retrieved.base.repository.get_object_content(
        "aiida.out"
    )
    for previous, run in itertools.pairwise(runs):
        assert run.inputs.parameters["CONTROL"]["restart_mode"] == "restart"
        assert run.inputs.parent_folder.uuid == previous.outputs.remote_folder.uuid
    recovery = node.base.extras.get(RECOVERY_EXTRA)
    assert [entry["handler"] for entry in recovery] == ["handle_out_of_walltime"] * (len(runs) - 1)
    assert [entry["calculation"] for entry in recovery] == [run.uuid for run in runs[:-1]]

    assert node.is_finished_ok, node.exit_status
    assert runs[-1].is_finished_ok
    assert "convergence has been achieved" in runs[-1].outputs.retrieved.base.repository.get_object_content(
        "aiida.out"
    )
    assert node.outputs.output_parameters.uuid == runs[-1].outputs.output_parameters.uuid


def test_killed_pw_is_retried_and_the_retry_gives_the_result(pw_code, pseudo_family):
    """pw.x killed with SIGKILL mid-run (as the OOM killer or a node failure would): the crash handler
    reruns it from scratch and only the complete second run gives the outputs."""
    workdir = pathlib.Path(pw_code.computer.get_workdir().split("{username}")[0])
    assert len(workdir.parts) > 2, f"workdir {workdir} too broad to pick out this test's pw.x"
    killed = []

    def kill_first_pw():
        """SIGKILL the first pw.x running in this test's Computer workdir, half a second into its run."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for pid in own_pw_processes(workdir):
                time.sleep(0.5)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_pw, daemon=True)
    killer.start()
    _, node = run_get_node(AutopipePwBaseWorkChain, **displaced_si8_inputs(pw_code, pseudo_family))
    killer.join(timeout=1)

    assert len(killed) == 1
    first, retry = calculations(node)
    assert first.exit_status in {code.status for code in CRASH_EXIT_CODES}
    assert "convergence has been achieved" not in first.outputs.retrieved.base.repository.get_object_content(
        "aiida.out"
    )
    assert [entry["handler"] for entry in node.base.extras.get(RECOVERY_EXTRA)] == ["handle_crashed_run"]
    assert retry.is_finished_ok and "parent_folder" not in retry.inputs
    assert node.is_finished_ok, node.exit_status
    assert node.outputs.output_parameters.uuid == retry.outputs.output_parameters.uuid


def test_failed_allocation_is_handled_as_out_of_memory_and_never_labelled(pw_code, pseudo_family):
    """A 300 MB address-space limit (`ulimit -v` in the job script) makes pw.x fail to allocate its FFT grids:
    the allocation error in stderr sends it to the out-of-memory retry with low-memory settings, and when that
    fails too the work chain reports it with no output."""
    inputs = displaced_si8_inputs(pw_code, pseudo_family)
    inputs["pw"]["metadata"]["options"]["prepend_text"] = "ulimit -v 300000"
    _, node = run_get_node(AutopipePwBaseWorkChain, **inputs)

    assert node.exit_status == AutopipePwBaseWorkChain.exit_codes.ERROR_OUT_OF_MEMORY.status
    assert "output_parameters" not in node.outputs
    first, retry = calculations(node)
    assert "Cannot allocate memory" in first.get_scheduler_stderr()
    recovery = node.base.extras.get(RECOVERY_EXTRA)
    assert [(entry["handler"], entry["changes"]) for entry in recovery] == [
        (
            "handle_out_of_memory",
            {"ELECTRONS.diago_david_ndim": [None, 2], "ELECTRONS.mixing_ndim": [None, 4]},
        )
    ]
    assert retry.inputs.parameters["ELECTRONS"]["diago_david_ndim"] == 2
    assert not retry.is_finished_ok


def own_pw_processes(workdir):
    """Process ids of the pw.x processes whose working directory lies under ``workdir``."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "pw.x" and str((entry / "cwd").resolve()).startswith(
                str(workdir)
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
