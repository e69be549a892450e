"""`mlip-pipe setup lammps` without a build: sources, the cmake project, checks, the Code, the CLI."""

import io
import tarfile

import pytest
from click.testing import CliRunner

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.engines import lammps


def make_tree(root, version="4 Feb 2025", extrapolation=True):
    (root / "cmake").mkdir(parents=True)
    (root / "cmake" / "CMakeLists.txt").write_text("project(lammps)\n")
    (root / "src" / "ML-PACE").mkdir(parents=True)
    (root / "src" / "version.h").write_text(f'#define LAMMPS_VERSION "{version}"\n')
    if extrapolation:
        (root / "src" / "ML-PACE" / "pair_pace_extrapolation.cpp").write_text("// pace/extrapolation\n")
    (root / "doc").mkdir()
    (root / "doc" / "manual.txt").write_text("large\n")
    return root


def make_pace_root(root):
    for part in (
        "ace-evaluator/src/ace-evaluator/ace_evaluator.h",
        "src/ace/ace_b_evaluator.cpp",
        "ace-evaluator/lib/yaml-cpp/CMakeLists.txt",
        "utils/cnpy/cnpy.cpp",
    ):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).write_text("\n")
    return root


def tarball(path, source, arcname):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return path


def test_a_tree_a_tarball_and_a_file_url_give_the_same_tree_without_docs(tmp_path):
    tree = make_tree(tmp_path / "src" / "lammps-4Feb2025")
    assert lammps.locate_lammps_source(str(tmp_path / "src"), tmp_path / "cache") == tree
    archive = tarball(tmp_path / "lammps-4Feb2025.tar.gz", tree, "lammps-4Feb2025")
    unpacked = lammps.locate_lammps_source(str(archive), tmp_path / "cache")
    assert lammps.lammps_version(unpacked) == "4 Feb 2025"
    assert not (unpacked / "doc").exists()  # a build never reads doc/, examples/, potentials/
    fetched = lammps.locate_lammps_source(archive.as_uri(), tmp_path / "cache-url")
    assert (fetched / "src" / "ML-PACE" / "pair_pace_extrapolation.cpp").is_file()


def test_sources_without_pace_extrapolation_or_not_lammps_are_refused(tmp_path):
    make_tree(tmp_path / "old", version="7 Jan 2022", extrapolation=False)
    with pytest.raises(InputError, match=r"LAMMPS 7 Jan 2022 .* has no pair_style pace/extrapolation"):
        lammps.locate_lammps_source(str(tmp_path / "old"), tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="is not a LAMMPS source tree"):
        lammps.locate_lammps_source(str(tmp_path / "empty"), tmp_path / "cache")
    with pytest.raises(InputError, match="does not exist"):
        lammps.locate_lammps_source(str(tmp_path / "missing"), tmp_path / "cache")


def test_pace_sources_come_from_an_sdist_or_its_lib_ace_folder(tmp_path):
    sdist_root = tmp_path / "python_ace-0.4.0rc1"
    pace_root = make_pace_root(sdist_root / "lib" / "ace")
    assert lammps.locate_pace_sources(str(sdist_root), tmp_path / "cache") == pace_root
    archive = tarball(tmp_path / "python_ace-0.4.0rc1.tar.gz", sdist_root, "python_ace-0.4.0rc1")
    unpacked = lammps.locate_pace_sources(str(archive), tmp_path / "cache")
    assert lammps.is_pace_root(unpacked) and unpacked.name == "ace"
    with pytest.raises(InputError, match="no PACE evaluator sources"):
        lammps.locate_pace_sources(str(tmp_path / "python_ace-0.4.0rc1" / "lib"), tmp_path / "cache")


def test_cmake_project_builds_pace_from_python_ace_and_the_build_is_minimal(tmp_path):
    project = lammps.write_pace_cmake_project(tmp_path / "pace-src", tmp_path / "shim")
    text = (project / "CMakeLists.txt").read_text()
    assert f'set(PACE_ROOT "{(tmp_path / "pace-src").as_posix()}")' in text
    assert "add_library(pace STATIC" in text and "yaml-cpp-pace" in text
    options = lammps.cmake_options(project)
    assert "-D PKG_ML-PACE=yes" in options and f"-D LOCAL_ML-PACE={project}" in options
    assert [option for option in options if option.startswith("-D PKG_")] == ["-D PKG_ML-PACE=yes"]
    assert "-D BUILD_MPI=no" in options and "-D CMAKE_DISABLE_FIND_PACKAGE_MPI=ON" in options
    assert "-D BUILD_MPI=yes" in lammps.cmake_options(project, mpi=True)


HELP = """
Large-scale Atomic/Molecular Massively Parallel Simulator - 4 Feb 2025

Usage example: lmp -var t 300 -echo screen -in in.alloy

Installed packages:

ML-PACE

List of individual style options included in this LAMMPS executable

* Atom styles:

atomic          body            charge

* Pair styles:

born            lj/cut          pace            pace/extrapolation
zbl             hybrid/overlay

* Fix styles

halt            langevin        nve             pair
print
"""


def test_help_lists_version_packages_and_the_styles_the_md_needs():
    info = lammps.parse_help(HELP)
    assert info["version"] == "4 Feb 2025" and info["packages"] == ["ML-PACE"]
    assert "pace/extrapolation" in info["styles"]["pair"] and "halt" in info["styles"]["fix"]
    assert lammps.missing_styles(info["styles"]) == []
    assert lammps.missing_styles({"pair": ["pace"], "fix": ["halt"]}) == [
        "pair pace/extrapolation",
        "fix pair",
    ]


def test_no_configured_lammps_is_reported_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("AUTOPIPE_LAMMPS", raising=False)
    monkeypatch.setenv("AUTOPIPE_LAMMPS_PREFIX", str(tmp_path / "nowhere"))
    executable, reason = lammps.find_pace_lammps()
    assert executable is None and "mlip-pipe setup lammps" in reason
    monkeypatch.setenv("AUTOPIPE_LAMMPS", str(tmp_path / "lmp"))
    executable, reason = lammps.find_pace_lammps()
    assert executable is None and "does not exist" in reason


def test_code_is_registered_for_the_raw_calculation_and_repointed_when_moved(
    aiida_profile_clean, aiida_localhost
):
    first, created = lammps.register_lammps_code("/opt/lammps/bin/lmp", aiida_localhost.label)
    assert created and first.default_calc_job_plugin == "lammps.raw"
    same, created = lammps.register_lammps_code("/opt/lammps/bin/lmp", aiida_localhost.label)
    assert not created and same.pk == first.pk
    moved, created = lammps.register_lammps_code("/elsewhere/lmp", aiida_localhost.label)
    assert created and str(moved.filepath_executable) == "/elsewhere/lmp"
    assert first.label == f"lammps-{first.pk}"  # the old Code keeps its provenance under a retired label


def test_cli_keeps_plain_setup_and_adds_setup_lammps(tmp_path):
    from aiida_autopipe.cli.main import cli

    runner = CliRunner()
    group_help = runner.invoke(cli, ["setup", "--help"])
    assert group_help.exit_code == 0 and "--no-install" in group_help.output and "lammps" in group_help.output
    help_text = runner.invoke(cli, ["setup", "lammps", "--help"])
    assert help_text.exit_code == 0 and "--source" in help_text.output
    missing = runner.invoke(
        cli, ["setup", "--profile", "no-such-profile", "lammps", "--source", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "run `mlip-pipe setup` first" in missing.output
    assert "Traceback" not in missing.output


def test_extract_refuses_paths_outside_the_destination(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(tarfile.TarError):
        lammps._extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
