"""Faults in real pw.x jobs under LabelingWorkChain: each is handled (a restart handler fires and a clean
rerun gives the label) or reported (the structure is listed as failed), and never turned into a label."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from fault_injection import (
    corrupt_xml,
    file_size_limit,
    job_stderr,
    kill_pw_mid_run,
    labelling_outcome,
    pw_runs,
    truncate_stdout,
)
from labeling_helpers import silicon

from aiida_autopipe.workflows.labeling import LabelingWorkChain
from aiida_autopipe.workflows.pw_base import CRASH_EXIT_CODES, PwCalculation

pytestmark = pytest.mark.pw

CRASHES = {code.status for code in CRASH_EXIT_CODES}


def displaced_si8():
    """8-atom Si with one atom off its site: a few seconds of pw.x, long enough to be killed mid-run."""
    displacement = np.zeros((8, 3))
    displacement[0] = [0.08, -0.05, 0.03]
    return silicon(n_cells=2, displacement=displacement)


def label_with_fault(pw_code, dft_compute, fault):
    config = {**dft_compute, "scheduler_options": fault, "max_walltime_seconds": 300}
    _, node = run_get_node(
        LabelingWorkChain, structures={"si8": displaced_si8()}, dft_compute=orm.Dict(config), pw_code=pw_code
    )
    return node, labelling_outcome(node)["si8"]


def process_report(node):
    from aiida.cmdline.utils.common import get_workchain_report

    return get_workchain_report(node, "REPORT")


def assert_handled(node, outcome, exit_statuses, stderr_says=None):
    """The fault hit the first run only: the crash handler reran it and the label is the clean rerun's."""
    assert node.is_finished_ok, (node.exit_status, outcome, process_report(node))
    assert outcome["labelled"] and not outcome["reported"]
    assert outcome["label_run_ok"] is True
    assert outcome["failed_runs"] and set(outcome["failed_runs"]) <= exit_statuses, outcome
    assert outcome["handlers"] == ["handle_crashed_run"], outcome
    first, *_, last = pw_runs(node)
    assert stderr_says is None or stderr_says in job_stderr(first), job_stderr(first)
    label = node.outputs.labels["si8"]
    assert label.base.attributes.get("pw_calculation") == last.uuid != first.uuid


def assert_reported(node, outcome, exit_statuses, stderr_says=None):
    """The fault hit every run: no label at all, the structure listed and counted as failed."""
    assert node.exit_status == LabelingWorkChain.exit_codes.ERROR_NO_STRUCTURE_LABELLED.status
    assert "labels" not in node.outputs or "si8" not in node.outputs.labels
    assert outcome["reported"] and not outcome["labelled"]
    assert node.outputs.number_of_failures.value == 1
    assert outcome["failed_runs"] and set(outcome["failed_runs"]) <= exit_statuses, outcome
    for run in pw_runs(node):
        assert not run.is_finished_ok
        assert stderr_says is None or stderr_says in job_stderr(run), job_stderr(run)


def test_pw_killed_mid_run_once_is_rerun_and_labelled(pw_code, dft_compute, tmp_path):
    node, outcome = label_with_fault(pw_code, dft_compute, kill_pw_mid_run(once=str(tmp_path / "fired")))
    assert_handled(node, outcome, CRASHES, stderr_says="Killed")


def test_pw_killed_every_time_is_reported_not_labelled(pw_code, dft_compute):
    node, outcome = label_with_fault(pw_code, dft_compute, kill_pw_mid_run())
    assert_reported(node, outcome, CRASHES, stderr_says="Killed")
    assert outcome["handlers"] == ["handle_crashed_run"]


def test_file_size_limit_once_is_rerun_and_labelled(pw_code, dft_compute, tmp_path):
    node, outcome = label_with_fault(pw_code, dft_compute, file_size_limit(once=str(tmp_path / "fired")))
    # SIGXFSZ (25): Debian's MPI-linked pw.x already dies creating the MPI singleton's shared-memory files.
    assert_handled(node, outcome, CRASHES, stderr_says="signal 25")


def test_truncated_output_once_is_rerun_and_labelled(pw_code, dft_compute, tmp_path):
    node, outcome = label_with_fault(pw_code, dft_compute, truncate_stdout(once=str(tmp_path / "fired")))
    assert_handled(node, outcome, CRASHES)
    first = pw_runs(node)[0]
    assert len(first.outputs.retrieved.base.repository.get_object_content("aiida.out")) == 3000


def test_corrupt_xml_is_reported_not_labelled(pw_code, dft_compute):
    """The parser fails on the garbled XML (an exit status below 400): aiida-quantumespresso treats that as
    unrecoverable, so the structure is reported after the one run."""
    node, outcome = label_with_fault(pw_code, dft_compute, corrupt_xml())
    parser_errors = {
        code.status for name, code in PwCalculation.exit_codes.items() if "XML" in name or "PARSER" in name
    }
    assert_reported(node, outcome, parser_errors)
