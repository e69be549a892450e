"""Fixtures for the OTF MD tests: a real small delta-learned ACE potential fitted once per session.

The potential is fitted with pacemaker (pyace evaluator) on Module D's real pw.x Si labels
(tests/training/data/si_pwx_labels.extxyz: rattled and strained 2-atom Si cells), tiny basis, 12 BFGS
iterations, with the LJ + ZBL reference; the active set comes from pace_activeset over every atom.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from otf_helpers import TINY_FIT

SI_LABELS = Path(__file__).parents[1] / "training" / "data" / "si_pwx_labels.extxyz"
BIN = Path(sys.executable).parent
R_CUT = 5.0
#: Until pyproject.toml declares them, the calculation and parser are registered for the tests here.


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
    frames = read_labelled_frames(SI_LABELS)
    reference = fit_reference(frames, r_cut=R_CUT)
    (directory / "reference.json").write_text(json.dumps(reference.to_dict()))
    write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), directory / DATASET_FILENAME)
    settings = pacemaker_input(
        ["Si"],
        R_CUT,
        TINY_FIT["body_order"],
        TINY_FIT["polynomial_degree"],
        TINY_FIT["radial_basis_size"],
        TINY_FIT["max_iterations"],
        densities=TINY_FIT["densities"],
    )
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


@pytest.fixture
def otf_code(aiida_code_installed):
    """The installed `autopipe-otf-md` console script as an InstalledCode."""
    return aiida_code_installed(
        default_calc_job_plugin="autopipe.otf_md", filepath_executable=str(BIN / "autopipe-otf-md")
    )
