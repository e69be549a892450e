"""Provenance wrapper for the dynamic gamma threshold (REQ-E-01): held-out gammas -> the threshold.

The held-out gammas come from the fit's job (`PacemakerCalculation` output `held_out_gammas`: k-fold, each
frame graded against an active set built without it), so no numerics run here. The threshold of each
generation is a stored Dict linked to the gammas it came from, so its history (lenient early, strict when
mature) can be queried and plotted per generation.
"""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_autopipe.core.threshold import DEFAULT_CEILING, DEFAULT_FLOOR, resolve_threshold

GAMMA_ARRAY = "gamma"
FRAME_ARRAY = "frame_index"


def gammas_by_frame(gammas: orm.ArrayData) -> tuple[list[np.ndarray], int]:
    """Graded per-atom gammas of each frame, and how many atoms were not graded (NaN).

    Without a `frame_index` array every atom counts as its own frame.
    """
    values = np.asarray(gammas.get_array(GAMMA_ARRAY), dtype=float)
    graded = np.isfinite(values)
    if FRAME_ARRAY in gammas.get_arraynames():
        frames = np.asarray(gammas.get_array(FRAME_ARRAY))
        per_frame = [values[(frames == f) & graded] for f in np.unique(frames)]
    else:
        per_frame = [values[i : i + 1] for i in np.flatnonzero(graded)]
    return [g for g in per_frame if g.size], int(np.sum(~graded))


@calcfunction
def generation_threshold(
    setting: orm.Dict, generation: orm.Int, gammas: orm.ArrayData | None = None
) -> orm.Dict:
    """The threshold of one generation with how it was obtained (`ThresholdRecord`).

    ``setting``: ``uncertainty_threshold`` ('dynamic_<P>percentile' or a fixed gamma), optional
    ``gamma_floor``, ``gamma_ceiling`` and ``gamma_statistic`` ('frame_max', the default, or 'atom').
    ``gammas`` (arrays ``gamma`` and ``frame_index``) is needed for a dynamic setting.
    """
    values = setting.get_dict()
    per_frame, n_ungraded = gammas_by_frame(gammas) if gammas is not None else (None, 0)
    record = resolve_threshold(
        values["uncertainty_threshold"],
        per_frame,
        generation=generation.value,
        floor=float(values.get("gamma_floor", DEFAULT_FLOOR)),
        ceiling=float(values.get("gamma_ceiling", DEFAULT_CEILING)),
        statistic=values.get("gamma_statistic", "frame_max"),
        n_ungraded=n_ungraded,
    )
    return orm.Dict(record.as_dict())
