"""Shared fixtures: a throw-away AiiDA configuration folder, aiida-core's profile fixtures, and a real small
delta-learned ACE potential fitted once per session (on-the-fly MD, LAMMPS, validation and kMC tests).

The potential is fitted with pacemaker (pyace evaluator) on Module D's real pw.x Si labels
(tests/training/data/si_pwx_labels.extxyz: rattled and strained 2-atom Si cells) with the LJ + ZBL
reference; the active set comes from pace_activeset over every atom.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tiny_ace import TINY_FIT

# Must happen before anything imports aiida: nothing may be written to ~/.aiida by the tests.
os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="autopipe-tests-aiida-"))
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

pytest_plugins = ["aiida.tools.pytest_fixtures"]

SI_PWX_LABELS = Path(__file__).parent / "training" / "data" / "si_pwx_labels.extxyz"
SCRIPTS = Path(sys.executable).parent
ACE_R_CUT = 5.0


@pytest.fixture(scope="session")
def ace_potential(tmp_path_factory):
    """Paths of potential.yaml, potential.asi and reference.json (delta learning), and the training frames."""
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
    frames = read_labelled_frames(SI_PWX_LABELS)
    reference = fit_reference(frames, r_cut=ACE_R_CUT)
    (directory / "reference.json").write_text(json.dumps(reference.to_dict()))
    write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), directory / DATASET_FILENAME)
    settings = pacemaker_input(
        ["Si"],
        ACE_R_CUT,
        TINY_FIT["body_order"],
        TINY_FIT["polynomial_degree"],
        TINY_FIT["radial_basis_size"],
        TINY_FIT["max_iterations"],
        densities=TINY_FIT["densities"],
    )
    (directory / "input.yaml").write_text(yaml.safe_dump(settings))
    for command in (
        [SCRIPTS / "pacemaker", "input.yaml"],
        [SCRIPTS / "pace_activeset", "-d", DATASET_FILENAME, "--all-atoms", "output_potential.yaml"],
    ):
        subprocess.run(command, cwd=directory, check=True, capture_output=True)
    return {
        "potential": directory / "output_potential.yaml",
        "active_set": directory / "output_potential.asi",
        "reference": directory / "reference.json",
        "labels": SI_PWX_LABELS,
    }
