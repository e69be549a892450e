"""Universal surrogate potentials behind one protocol: resolve what to use, then build an ASE calculator.

MACE-MP is the default because it is the most accurate universal potential mace-torch can load; its
weights are not in the wheel, so they must be in mace's cache or downloadable. CHGNet's wheel ships
pretrained weights, which makes it the fallback that always works offline. The resolved choice and the
reason are kept as a plain dict so that the full config records what actually ran.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aiida_autopipe.core.errors import InputError

MACE_MP_DEFAULT_SIZE = "medium-mpa-0"
CHGNET_DEFAULT_VERSION = "0.3.0"
CHGNET_VERSIONS = ("0.3.0", "0.2.0", "r2scan")


@dataclasses.dataclass(frozen=True)
class SurrogateChoice:
    """What will run: `name` is 'mace' or 'chgnet', `model` a file path (MACE) or a version (CHGNet)."""

    requested: str
    name: str
    model: str
    device: str
    reason: str
    default_dtype: str = "float32"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SurrogateChoice:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def resolve_device(device: str = "auto") -> str:
    """'auto' means CUDA when torch sees a GPU, else CPU; 'cpu' and 'cuda' are taken as given."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError("surrogate.device", f"unknown device {device!r}", "use 'auto', 'cpu' or 'cuda'")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_surrogate_request(requested: str, field: str = "surrogate.model") -> None:
    """An InputError naming `field` unless `requested` is a surrogate this project can load.

    Accepted: 'mace_mp' or 'mace_mp:<size>' (e.g. 'mace_mp:small'), a path to an existing '.model' file,
    'chgnet' or 'chgnet:<version>'. Cheap (no model is loaded), so input checks can call it.
    """
    if requested.endswith(".model"):
        if not Path(requested).expanduser().is_file():
            problem = f"MACE model file {requested} does not exist"
            raise InputError(field, problem, "give an existing .model path")
        return
    kind, _, variant = requested.partition(":")
    if kind == "chgnet" and (variant or CHGNET_DEFAULT_VERSION) not in CHGNET_VERSIONS:
        raise InputError(field, f"unknown CHGNet version {variant!r}", f"use one of {CHGNET_VERSIONS}")
    if kind not in ("chgnet", "mace_mp"):
        raise InputError(
            field,
            f"unknown surrogate {requested!r}",
            "use 'mace_mp', 'mace_mp:<size>', a path to a MACE .model file, or 'chgnet'",
        )


def resolve_surrogate(requested: str = "mace_mp", device: str = "auto") -> SurrogateChoice:
    """Turn a request into the surrogate that will actually run, with a one-line reason.

    Requests are those `check_surrogate_request` accepts. A MACE-MP request whose weights are neither cached
    nor downloadable falls back to CHGNet; an explicit model path that does not exist is a user error, not a
    fallback.
    """
    check_surrogate_request(requested)
    resolved_device = resolve_device(device)
    if requested.endswith(".model"):
        path = Path(requested).expanduser().resolve()
        reason = f"MACE model file {path} requested"
        return SurrogateChoice(requested, "mace", str(path), resolved_device, reason)

    kind, _, variant = requested.partition(":")
    if kind == "chgnet":
        version = variant or CHGNET_DEFAULT_VERSION
        reason = f"CHGNet {version} requested (weights shipped in the chgnet wheel)"
        return _chgnet(requested, resolved_device, reason)

    size = variant or MACE_MP_DEFAULT_SIZE
    path, failure = _find_or_download_mace_mp(size)
    if path is not None:
        return SurrogateChoice(requested, "mace", path, resolved_device, f"MACE-MP '{size}' found at {path}")
    return _chgnet(
        requested,
        resolved_device,
        f"{requested} requested; MACE-MP '{size}' weights not found locally and download failed ({failure}): "
        f"fell back to CHGNet {CHGNET_DEFAULT_VERSION} shipped in the chgnet wheel",
    )


def _chgnet(requested: str, device: str, reason: str) -> SurrogateChoice:
    version = requested.partition(":")[2] if requested.startswith("chgnet:") else CHGNET_DEFAULT_VERSION
    return SurrogateChoice(requested, "chgnet", version, device, reason)


def _find_or_download_mace_mp(size: str) -> tuple[str | None, str]:
    """Path of the MACE-MP checkpoint from mace's cache, downloading it when online; else (None, why)."""
    from mace.calculators import foundations_models

    if size not in foundations_models.mace_mp_urls:
        raise InputError(
            "surrogate.model",
            f"unknown MACE-MP size {size!r}",
            f"use one of {sorted(foundations_models.mace_mp_urls)}",
        )
    try:
        path = foundations_models.download_mace_mp_checkpoint(size)
    except Exception as exc:  # urllib raises a handful of types offline; all mean 'not available'
        _remove_partial_download(size)
        return None, f"offline: {type(exc).__name__}"
    if Path(path).is_file() and Path(path).stat().st_size > 0:
        return path, ""
    return None, "empty file in mace's cache"


def _remove_partial_download(size: str) -> None:
    """A failed urlretrieve can leave an empty checkpoint that mace would later mistake for a cached model."""
    from mace.calculators import foundations_models
    from mace.tools.utils import get_cache_dir

    url = foundations_models.mace_mp_urls[size]
    name = "".join(c for c in Path(url).name if c.isalnum() or c == "_")
    candidate = Path(get_cache_dir()) / name
    if candidate.is_file() and candidate.stat().st_size == 0:
        candidate.unlink()


def make_calculator(choice: SurrogateChoice):
    """ASE calculator for a resolved choice (energies eV, forces eV/Angstrom, stress eV/Angstrom^3)."""
    if choice.name == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(
            model_paths=choice.model, device=choice.device, default_dtype=choice.default_dtype
        )
    if choice.name == "chgnet":
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        model = CHGNet.load(model_name=choice.model, use_device=choice.device, verbose=False)
        return CHGNetCalculator(model=model, use_device=choice.device, on_isolated_atoms="ignore")
    raise InputError("surrogate.name", f"unknown surrogate {choice.name!r}", "use 'mace' or 'chgnet'")
