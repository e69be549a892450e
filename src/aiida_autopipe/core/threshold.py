"""Dynamic extrapolation-grade threshold for on-the-fly MD (REQ-E-01).

The ACE extrapolation grade gamma (D-optimality, maxvol) is below 1 inside the active set and grows as a
configuration leaves what the potential knows. A fixed threshold is either too strict for an immature
potential (every frame halts) or too lenient for a mature one. Here the threshold is a high percentile
(95-99) of gamma over labelled frames *held out* of the active set (`core.held_out_gamma`: the training
set's own gamma is <= ~1 by MaxVol construction and says nothing), clipped to a floor and a ceiling. A
young, varied dataset gives held-out frames far outside its span, so the threshold is lenient; as the
dataset matures held-out frames fall inside and the threshold tightens towards the floor.

The statistic matches the halting rule: MD halts on the largest per-atom gamma of a frame, so by default
the percentile is taken over each held-out frame's largest gamma ('frame_max'): a fresh frame from the
labelled distribution then halts with probability 100 - percentile %. 'atom' takes it over all atoms.
"""

import re
from dataclasses import asdict, dataclass

import numpy as np

from aiida_autopipe.core.errors import InputError

#: Below gamma = 1 a configuration interpolates the active set: never halt there.
DEFAULT_FLOOR = 1.0
#: Above about 10 ACE predictions are unreliable (pacemaker's own guidance): always halt there.
DEFAULT_CEILING = 10.0
PERCENTILE_RANGE = (95.0, 99.0)
#: 'frame_max': percentile over each frame's largest gamma (the halting rule's statistic); 'atom': all atoms.
STATISTICS = ("frame_max", "atom")

_DYNAMIC_PATTERN = re.compile(r"^dynamic_(\d+(?:\.\d+)?)percentile$")


@dataclass(frozen=True)
class ThresholdSetting:
    """A parsed `gamma_threshold` setting: either a fixed value or a training-set percentile."""

    mode: str  # 'fixed' or 'dynamic'
    value: float  # the fixed gamma, or the percentile for 'dynamic'


@dataclass(frozen=True)
class ThresholdRecord:
    """What one generation used, so the history of the threshold can be stored and plotted."""

    generation: int
    mode: str
    percentile: float | None
    raw_value: float
    threshold: float
    floor: float
    ceiling: float
    n_gammas: int  # size of the sample the percentile was taken over (frames for 'frame_max')
    clipped: str  # 'none', 'floor' or 'ceiling'
    statistic: str | None = None  # 'frame_max' or 'atom' (None for a fixed threshold)
    n_ungraded: int = 0  # held-out atoms that could not be graded (species with fewer atoms than functions)

    def as_dict(self) -> dict:
        return asdict(self)


def _flatten_gammas(gammas) -> np.ndarray:
    """Accept one array or a list of per-structure arrays of per-atom gammas."""
    if isinstance(gammas, np.ndarray):
        flat = gammas.ravel()
    else:
        parts = [np.asarray(g, dtype=float).ravel() for g in gammas]
        flat = np.concatenate(parts) if parts else np.zeros(0)
    flat = np.asarray(flat, dtype=float)
    if flat.size == 0:
        raise InputError(
            "gammas", "no extrapolation grades given", "evaluate gamma on the training set first"
        )
    if not np.all(np.isfinite(flat)) or np.any(flat < 0):
        raise InputError(
            "gammas", "extrapolation grades must be finite and non-negative", "check the ACE run"
        )
    return flat


def gamma_sample(gammas, statistic: str = "atom") -> np.ndarray:
    """The values a percentile is taken over: every atom's gamma, or each frame's largest.

    'frame_max' needs per-frame arrays (a list); 'atom' also takes one flat array.
    """
    if statistic not in STATISTICS:
        raise InputError("gamma_statistic", f"unknown statistic {statistic!r}", f"use one of {STATISTICS}")
    if statistic == "atom":
        return _flatten_gammas(gammas)
    if isinstance(gammas, np.ndarray):
        raise InputError(
            "gammas", "'frame_max' needs the gammas frame by frame", "give a list of per-frame arrays"
        )
    frames = [_flatten_gammas([g]) for g in gammas if np.size(g)]
    return _flatten_gammas([np.array([g.max() for g in frames])])


def _check_bounds(floor: float, ceiling: float) -> None:
    if not (np.isfinite(floor) and np.isfinite(ceiling)) or floor <= 0 or ceiling < floor:
        raise InputError(
            "gamma_threshold",
            f"floor {floor} and ceiling {ceiling} must satisfy 0 < floor <= ceiling",
            "use e.g. floor 1.0 and ceiling 10.0",
        )


def _check_percentile(percentile: float) -> None:
    low, high = PERCENTILE_RANGE
    if not low <= percentile <= high:
        raise InputError(
            "gamma_threshold",
            f"percentile {percentile} outside {low:g}-{high:g}",
            "use 'dynamic_95percentile' to 'dynamic_99percentile'",
        )


def gamma_threshold(
    gammas,
    percentile: float = 95.0,
    floor: float = DEFAULT_FLOOR,
    ceiling: float = DEFAULT_CEILING,
    statistic: str = "atom",
) -> float:
    """The given percentile of gamma (per atom, or per frame's largest), clipped to [floor, ceiling]."""
    _check_percentile(percentile)
    _check_bounds(floor, ceiling)
    sample = gamma_sample(gammas, statistic)
    return float(np.clip(np.percentile(sample, percentile), floor, ceiling))


def parse_threshold_setting(setting) -> ThresholdSetting:
    """Parse 'dynamic_95percentile' ... 'dynamic_99percentile' or a fixed gamma (number or numeric string)."""
    if isinstance(setting, bool):
        raise InputError("gamma_threshold", f"{setting!r} is not a threshold", "use 'dynamic_95percentile'")
    if isinstance(setting, int | float):
        value = float(setting)
    elif isinstance(setting, str):
        text = setting.strip().lower()
        match = _DYNAMIC_PATTERN.match(text)
        if match:
            percentile = float(match.group(1))
            _check_percentile(percentile)
            return ThresholdSetting("dynamic", percentile)
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                "gamma_threshold",
                f"cannot read {setting!r}",
                "write 'dynamic_95percentile' (95-99) or a fixed gamma such as 5.0",
            ) from None
    else:
        raise InputError(
            "gamma_threshold", f"cannot read {setting!r}", "use 'dynamic_95percentile' or a number"
        )
    if not np.isfinite(value) or value <= 0:
        raise InputError("gamma_threshold", f"fixed gamma {value} must be positive", "use e.g. 5.0")
    return ThresholdSetting("fixed", value)


def resolve_threshold(
    setting,
    gammas=None,
    generation: int = 0,
    floor: float = DEFAULT_FLOOR,
    ceiling: float = DEFAULT_CEILING,
    statistic: str = "atom",
    n_ungraded: int = 0,
) -> ThresholdRecord:
    """The threshold of one generation, with the record of how it was obtained.

    A fixed setting is used as given (floor and ceiling do not apply: the user chose it); a dynamic one
    needs gammas (held-out frames' gammas, see the module docstring), per frame for 'frame_max'. When no
    held-out atom could be graded (`n_ungraded` > 0, nothing else: the dataset has fewer environments than
    the basis has functions) the dataset is as young as it gets and the threshold is the ceiling.
    """
    parsed = parse_threshold_setting(setting)
    if parsed.mode == "fixed":
        return ThresholdRecord(
            generation, "fixed", None, parsed.value, parsed.value, floor, ceiling, 0, "none"
        )
    _check_bounds(floor, ceiling)
    if n_ungraded > 0 and gammas is not None and not any(np.size(g) for g in gammas):
        return ThresholdRecord(
            generation,
            "dynamic",
            parsed.value,
            ceiling,
            ceiling,
            floor,
            ceiling,
            0,
            "ceiling",
            statistic,
            n_ungraded,
        )
    sample = gamma_sample(gammas if gammas is not None else [], statistic)
    raw = float(np.percentile(sample, parsed.value))
    threshold = float(np.clip(raw, floor, ceiling))
    clipped = "floor" if raw < floor else "ceiling" if raw > ceiling else "none"
    return ThresholdRecord(
        generation,
        "dynamic",
        parsed.value,
        raw,
        threshold,
        floor,
        ceiling,
        int(sample.size),
        clipped,
        statistic,
        n_ungraded,
    )
