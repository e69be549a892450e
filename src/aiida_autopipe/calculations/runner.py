"""What the runner CalcJobs share: a YAML input file, a `<runner> <input>` command, stdout, retrieval."""

from __future__ import annotations

import yaml
from aiida.common import datastructures
from aiida.engine import CalcJob


def runner_calcinfo(
    calculation: CalcJob, folder, config: dict, local_copy_list: list, retrieve_list: list[str]
) -> datastructures.CalcInfo:
    """Write `config` as the runner's input file and describe the job: the Code reads that file, its stdout is
    kept, and `retrieve_list` plus stdout come back."""
    with folder.open(calculation._INPUT_FILE, "w") as handle:
        handle.write(yaml.safe_dump(config, sort_keys=False))

    codeinfo = datastructures.CodeInfo()
    codeinfo.code_uuid = calculation.inputs.code.uuid
    codeinfo.cmdline_params = [calculation._INPUT_FILE]
    codeinfo.stdout_name = calculation._STDOUT

    calcinfo = datastructures.CalcInfo()
    calcinfo.codes_info = [codeinfo]
    calcinfo.local_copy_list = local_copy_list
    calcinfo.retrieve_list = [*retrieve_list, calculation._STDOUT]
    return calcinfo
