"""The `held_out_gamma` task of `autopipe-otf-md`: k-fold held-out extrapolation grades (no AiiDA).

Run inside `PacemakerCalculation`'s job right after the fit (the dataset and the fitted basis are there), so
the MaxVol numerics never run in the daemon. Input file:

    task: held_out_gamma
    potential: output_potential.yaml     # pacemaker B-basis .yaml
    dataset: dataset.pckl.gzip           # pacemaker's dataframe (column ase_atoms) or a labelled extxyz
    n_folds: 5
    seed: 0

Outputs: `held_out_gamma.npz` (arrays gamma, frame_index per atom; fold per frame) and `results.json`
(sample sizes, percentiles of the per-frame largest gamma, wall time). Exit status 0, or 2 for bad input.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from aiida_autopipe.runners.files import EXIT_INVALID_INPUT, finish

TASK = "held_out_gamma"
GAMMA_FILE = "held_out_gamma.npz"
DEFAULTS = {
    "task": TASK,
    "potential": "output_potential.yaml",
    "dataset": "dataset.pckl.gzip",
    "n_folds": 5,
    "seed": 0,
}


def read_frames(path: Path) -> list:
    """Frames of pacemaker's pickled dataframe (ase_atoms column) or of an extxyz file."""
    if path.name.endswith(".pckl.gzip"):
        import pandas as pd

        return list(pd.read_pickle(path, compression="gzip")["ase_atoms"])
    from ase.io import read

    return read(path, index=":", format="extxyz")


def run(config: dict, workdir: Path) -> tuple[int, dict]:
    """Grade every frame against an active set built without its fold; write the npz and results.json."""
    from aiida_autopipe.core.errors import InputError
    from aiida_autopipe.core.held_out_gamma import held_out_gammas

    results: dict = {"status": "invalid_input", "message": "", "task": TASK}
    unknown = set(config) - set(DEFAULTS)
    settings = {**DEFAULTS, **config}
    try:
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        frames = read_frames(workdir / settings["dataset"])
        started = time.perf_counter()
        grades = held_out_gammas(
            str(workdir / settings["potential"]), frames, int(settings["n_folds"]), int(settings["seed"])
        )
    except (ValueError, OSError, KeyError, RuntimeError, InputError) as exc:
        results["message"] = f"{type(exc).__name__}: {exc}"
        return finish(workdir, EXIT_INVALID_INPUT, results)
    np.savez(workdir / GAMMA_FILE, gamma=grades.gamma, frame_index=grades.frame_index, fold=grades.fold)
    frame_max = np.array([g.max() for g in grades.per_frame()])
    results.update(
        status="completed",
        n_frames=len(frames),
        n_atoms=int(grades.gamma.size),
        n_folds=grades.n_folds,
        n_ungraded=grades.n_ungraded,
        frame_max_percentiles={
            str(p): float(np.percentile(frame_max, p)) if frame_max.size else None for p in (50, 95, 99)
        },
        wall_time_s=round(time.perf_counter() - started, 3),
    )
    return finish(workdir, 0, results)
