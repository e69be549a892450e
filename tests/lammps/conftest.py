"""Fixtures for the LAMMPS OTF tests: an ML-PACE LAMMPS if one is configured, and a tiny fitted potential.

CI does not build LAMMPS (a build takes tens of minutes), so the tests that run it skip, naming what is
missing, unless `$AUTOPIPE_LAMMPS` or `mlip-pipe setup lammps`'s build record points at an ML-PACE `lmp`.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SI_LABELS = Path(__file__).parents[1] / "training" / "data" / "si_pwx_labels.extxyz"
BIN = Path(sys.executable).parent
R_CUT = 5.0


@pytest.fixture(scope="session")
def pace_lammps():
    """Path of an `lmp` with pair_style pace/extrapolation, fix pair and fix halt; skips without one."""
    from aiida_autopipe.engines.lammps import find_pace_lammps

    executable, reason = find_pace_lammps()
    if executable is None:
        pytest.skip(f"no ML-PACE LAMMPS configured: {reason}")
    return executable


@pytest.fixture(scope="session")
def tiny_potential(tmp_path_factory):
    """A delta-learned ACE (LJ + ZBL reference) fitted by pacemaker on real pw.x Si labels, with its .asi.

    Module D's tiny basis (as in tests/otf): seconds to fit, enough to know diamond Si from squeezed Si.
    """
    import yaml

    from aiida_autopipe.core.baseline import fit_reference
    from aiida_autopipe.core.pacemaker_input import (
        DATASET_FILENAME,
        pacemaker_dataframe,
        pacemaker_input,
        read_labelled_frames,
        write_pacemaker_dataframe,
    )

    directory = tmp_path_factory.mktemp("ace")
    frames = read_labelled_frames(SI_LABELS)
    reference = fit_reference(frames, r_cut=R_CUT)
    (directory / "reference.json").write_text(json.dumps(reference.to_dict()))
    write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), directory / DATASET_FILENAME)
    settings = pacemaker_input(["Si"], R_CUT, 3, 1, 4, 12, densities=1)
    (directory / "input.yaml").write_text(yaml.safe_dump(settings))
    for command in (
        [BIN / "pacemaker", "input.yaml"],
        [BIN / "pace_activeset", "-d", DATASET_FILENAME, "--all-atoms", "output_potential.yaml"],
    ):
        subprocess.run(command, cwd=directory, check=True, capture_output=True)
    return {
        "potential": directory / "output_potential.yaml",
        "active_set": directory / "output_potential.asi",
        "reference": directory / "reference.json",
        "labels": SI_LABELS,
    }
