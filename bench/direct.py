"""Benchmark: descriptor throughput and DIRECT selection at scale. Prints figures; asserts nothing.

    uv run python bench/direct.py                       # descriptors + 1,000 of 1,000,000 rows
    uv run python bench/direct.py --rows-10m            # also 10,000,000 rows (memory-mapped, 2.6 GB)
    uv run python bench/direct.py --maml /tmp/maml-venv/bin/python   # maml's DIRECTSampler on the same rows

Synthetic selection data: 64-dimensional rows from a 50-component Gaussian mixture with very unequal
weights (Dirichlet 0.3), so random picks miss the rare components. Coverage is reported two ways: mixture
components reached, and occupied cells of a 30 x 30 grid over the first two principal components reached.
maml (the DIRECT paper's reference code) runs in its own virtual environment on the first --maml-rows rows
(100,000 by default: at 1,000,000 rows with threshold_init=0.05 it grew past 17 GB here and was stopped),
capped at 8 GB of address space, with threshold_init hand-set (0.05) and at its default (0.5).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aiida_autopipe.core.descriptors import compute_descriptors, flat_arrays
from aiida_autopipe.core.direct import direct_select

N_COMPONENTS = 50
DIM = 64
MAML_THRESHOLDS = (0.05, 0.5)  # hand-set as maml requires; 0.5 is its default
MAML_MEMORY = 8 * 1024**3
MAML_TIMEOUT = 600

MAML_SCRIPT = """
import sys, time, numpy as np
from maml.sampling.direct import BirchClustering, DIRECTSampler, SelectKFromClusters
features = np.load(sys.argv[1], mmap_mode="r")
started = time.perf_counter()
sampler = DIRECTSampler(
    structure_encoder=None,
    clustering=BirchClustering(n=int(sys.argv[2]), threshold_init=float(sys.argv[3])),
    select_k_from_clusters=SelectKFromClusters(k=1),
)
result = sampler.fit_transform(np.asarray(features))
elapsed = time.perf_counter() - started
np.save(sys.argv[4], np.asarray(result["selected_indexes"], dtype=np.int64))
print(elapsed)
"""


def mixture(n_rows: int, seed: int = 0, out=None):
    """Rows of a Gaussian mixture (float32) and the component of each row; written into `out` if given."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(N_COMPONENTS, 0.3))
    means = rng.normal(0.0, 3.0, (N_COMPONENTS, DIM))
    scales = rng.uniform(0.3, 1.5, N_COMPONENTS)
    component = rng.choice(N_COMPONENTS, size=n_rows, p=weights).astype(np.int16)
    features = out if out is not None else np.empty((n_rows, DIM), dtype=np.float32)
    for start in range(0, n_rows, 1_000_000):
        block = component[start : start + 1_000_000]
        noise = rng.standard_normal((len(block), DIM), dtype=np.float32)
        features[start : start + len(block)] = means[block] + noise * scales[block, None]
    return features, component


def grid_cells(features, n_bins: int = 30):
    """Cell of every row on an n_bins x n_bins grid over the first two standardised principal components."""
    sample = np.asarray(features[:: max(1, len(features) // 200_000)], dtype=np.float64)
    mean, std = sample.mean(axis=0), sample.std(axis=0)
    _, _, vt = np.linalg.svd((sample - mean) / std, full_matrices=False)
    projection = ((np.asarray(features, dtype=np.float64) - mean) / std) @ vt[:2].T
    low, high = projection.min(axis=0), projection.max(axis=0)
    bins = np.minimum(((projection - low) / (high - low) * n_bins).astype(int), n_bins - 1)
    return bins[:, 0] * n_bins + bins[:, 1]


def coverage(indices, component, cells) -> str:
    reached_components = len(np.unique(component[indices])) / len(np.unique(component))
    reached_cells = len(np.unique(cells[indices])) / len(np.unique(cells))
    return f"components {reached_components:6.1%}  PCA cells {reached_cells:6.1%}"


def bench_descriptors(n_jobs: int) -> None:
    from ase.build import bulk

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(2000):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
        atoms.positions += rng.normal(0.0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    arrays = flat_arrays(frames)
    compute_descriptors(*(array[:64] if i < 2 else array[:1] for i, array in enumerate(arrays)), kind="ace")
    started = time.perf_counter()
    features = compute_descriptors(*arrays, kind="ace", n_jobs=n_jobs)
    elapsed = time.perf_counter() - started
    print(f"ACE-style (Numba), 64-atom Si, {n_jobs} threads: {len(frames) / elapsed:8.0f} frames/s "
          f"({features.shape[1]} features)")  # fmt: skip
    n_soap = 200
    soap_arrays = (arrays[0][: 64 * n_soap], arrays[1][: 64 * n_soap], *(a[:n_soap] for a in arrays[2:]))
    started = time.perf_counter()
    features = compute_descriptors(*soap_arrays, kind="soap", n_jobs=n_jobs)
    elapsed = time.perf_counter() - started
    print(f"SOAP (dscribe), 64-atom Si, {n_jobs} jobs:      {n_soap / elapsed:8.0f} frames/s "
          f"({features.shape[1]} features)")  # fmt: skip


def bench_selection(n_rows, budget, maml_python, maml_rows, workdir: Path) -> None:
    features, component = mixture(n_rows)
    cells = grid_cells(features)
    started = time.perf_counter()
    selection = direct_select(features, budget=budget, seed=0)
    elapsed = time.perf_counter() - started
    summary = selection.summary()
    print(f"\nDIRECT (this package), {budget} of {n_rows:,} rows: {elapsed:6.1f} s, automatic BIRCH "
          f"threshold {summary['birch_threshold']:.3g}, {summary['n_components']} PCs, "
          f"{summary['n_subclusters']} subclusters")  # fmt: skip
    print(f"  coverage: {coverage(selection.indices, component, cells)}")
    rng = np.random.default_rng(1)
    randoms = [rng.choice(n_rows, size=budget, replace=False) for _ in range(5)]
    reached = np.mean([len(np.unique(component[r])) for r in randoms]) / len(np.unique(component))
    cell_share = np.mean([len(np.unique(cells[r])) for r in randoms]) / len(np.unique(cells))
    print(f"  random picks (mean of 5): components {reached:6.1%}  PCA cells {cell_share:6.1%}")
    if maml_python:
        bench_maml(
            maml_python, features[:maml_rows], component[:maml_rows], cells[:maml_rows], budget, workdir
        )


def bench_maml(maml_python: str, features, component, cells, budget: int, workdir: Path) -> None:
    """maml's DIRECTSampler and this package on the same rows; maml capped at 8 GB of address space."""
    n_rows = len(features)
    started = time.perf_counter()
    ours = direct_select(features, budget=budget, seed=0)
    print(f"\nSame {n_rows:,} rows, {budget} picks: this package {time.perf_counter() - started:6.1f} s, "
          f"coverage: {coverage(ours.indices, component, cells)}")  # fmt: skip
    path = workdir / "features.npy"
    np.save(path, features)
    picks = workdir / "maml_picks.npy"
    for threshold in MAML_THRESHOLDS:
        try:
            completed = subprocess.run(
                [maml_python, "-c", MAML_SCRIPT, str(path), str(budget), str(threshold), str(picks)],
                capture_output=True,
                text=True,
                timeout=MAML_TIMEOUT,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MAML_MEMORY, MAML_MEMORY)),
            )
        except subprocess.TimeoutExpired:
            print(f"  maml DIRECTSampler, threshold_init={threshold}: stopped after {MAML_TIMEOUT} s")
            continue
        if completed.returncode == 0:
            maml_seconds = float(completed.stdout.strip().splitlines()[-1])
            print(f"  maml DIRECTSampler, threshold_init={threshold}: {maml_seconds:6.1f} s, "
                  f"coverage: {coverage(np.load(picks), component, cells)}")  # fmt: skip
        else:
            error = (completed.stderr.strip().splitlines() or ["killed"])[-1]
            print(f"  maml DIRECTSampler, threshold_init={threshold}: failed: {error[:120]}")


def bench_ten_million(budget: int, workdir: Path) -> None:
    n_rows = 10_000_000
    path = workdir / "rows10m.npy"
    mapped = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_rows, DIM))
    _, component = mixture(n_rows, out=mapped)
    mapped.flush()
    features = np.load(path, mmap_mode="r")
    started = time.perf_counter()
    selection = direct_select(features, budget=budget, seed=0)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    reached = len(np.unique(component[selection.indices])) / len(np.unique(component))
    print(f"\nDIRECT, {budget} of 10,000,000 memory-mapped rows: {elapsed:6.1f} s, no MemoryError, "
          f"peak RSS {peak:.1f} GB, components reached {reached:.1%}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows-10m", action="store_true", help="also select from 10,000,000 rows")
    parser.add_argument("--maml", metavar="PYTHON", help="python of a venv with maml==2025.4.3")
    parser.add_argument("--maml-rows", type=int, default=100_000, help="rows given to maml (memory!)")
    parser.add_argument("--skip-descriptors", action="store_true")
    arguments = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}; command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory(prefix="bench-direct-") as tmp:
        if not arguments.skip_descriptors:
            bench_descriptors(arguments.jobs)
        bench_selection(arguments.rows, arguments.budget, arguments.maml, arguments.maml_rows, Path(tmp))
        if arguments.rows_10m:
            bench_ten_million(arguments.budget, Path(tmp))


if __name__ == "__main__":
    main()
