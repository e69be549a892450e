"""ACE training figures: pacemaker fit time against dataset size, and the evaluation cost of the fitted model.

Fits run pacemaker (pyace evaluator, numerical gradients) on the real pw.x Si labels of the training tests,
delta-learned on the automatic LJ + ZBL reference. Dataset sizes are nested random subsets of the 26 distinct
frames (no duplicates: a repeated frame adds cost but no information, and with pacemaker's normalised weights
it leaves the fit and its errors unchanged). Errors are those of the exported model (reference + ACE, with the
per-element energies refitted after the fit, as the parser does): train RMSE of energy per atom, its mean
signed error, and force RMSE per component. CPU seconds of the pacemaker process are reported (the
machine is shared; wall time would measure the neighbours). Evaluation cost: energy + forces of a rattled
216-atom diamond Si cell, single core, microseconds per atom per step, for ACE alone (.yace, C-tilde
evaluator, as LAMMPS runs it) and for the full model reference + ACE through ASE.

Reproduce: `uv run python bench/training.py` (about 5 CPU minutes; 10-15 minutes of wall time when the two
cores are shared); options `--sizes 7 13 26`, `--iterations 60`, `--basis 3 2 6` (body order, polynomial
degree, radial basis size), `--steps 20`.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from ase.build import bulk

from aiida_autopipe.core.baseline import ReferencePlusACECalculator, fit_reference, make_ace_calculator
from aiida_autopipe.core.pacemaker_input import (
    atomic_energy_shifts,
    error_metrics,
    pacemaker_dataframe,
    pacemaker_input,
    read_labelled_frames,
    write_pacemaker_dataframe,
)

DATA = Path(__file__).resolve().parents[1] / "tests" / "training" / "data" / "si_pwx_labels.extxyz"
BIN = Path(sys.executable).parent


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fit(frames, reference, basis, iterations, workdir: Path) -> tuple:
    """pacemaker CPU and wall seconds, work folder, train errors of the exported model (meV/atom, meV/A)."""
    write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), workdir / "dataset.pckl.gzip")
    config = pacemaker_input(
        ["Si"], reference.lj_cutoff, *basis, max_iterations=iterations, test_fraction=0.0
    )
    (workdir / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cpu, wall = children_cpu_seconds(), time.perf_counter()
    subprocess.run([BIN / "pacemaker", "input.yaml"], cwd=workdir, check=True, capture_output=True)
    cpu, wall = children_cpu_seconds() - cpu, time.perf_counter() - wall
    subprocess.run(
        [BIN / "pace_yaml2yace", "output_potential.yaml", "-o", "output_potential.yace"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    predictions = pd.read_pickle(workdir / "train_pred.pckl.gzip", compression="gzip")
    errors = error_metrics(predictions, frames, shifts=atomic_energy_shifts(predictions, frames))
    return cpu, wall, workdir, {key: 1e3 * value for key, value in errors.items() if key != "n_structures"}


def cost_us_per_atom_step(calculator, atoms, steps: int) -> float:
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(0)
    start = time.process_time()
    for _ in range(steps):
        atoms.positions += rng.normal(0, 0.002, atoms.positions.shape)  # a new geometry each step, as in MD
        atoms.get_forces()
    return (time.process_time() - start) / steps / len(atoms) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[7, 13, 26])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--basis", type=int, nargs=3, default=[3, 2, 6])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"

    labelled = read_labelled_frames(DATA)
    reference = fit_reference(labelled, r_cut=5.0)
    print(
        f"reference: epsilon {reference.lj['Si-Si']['epsilon']:.4f} eV, "
        f"sigma {reference.lj['Si-Si']['sigma']:.4f} A"
    )
    print(f"basis (B, D, R) = {tuple(args.basis)}, {args.iterations} BFGS iterations, pyace evaluator\n")
    spread = 1e3 * np.std([atoms.info["energy"] / len(atoms) for atoms in labelled])
    print(f"spread (std) of the DFT energies: {spread:.1f} meV/atom")
    header = ("frames", 7), ("atoms", 6), ("pacemaker CPU s", 16), ("wall s", 8), ("RMSE E meV/at", 14)
    header += ("mean dE meV/at", 15), ("RMSE F meV/A", 13)
    print(" ".join(f"{name:>{width}}" for name, width in header))
    order = np.random.default_rng(0).permutation(len(labelled))
    if max(args.sizes) > len(labelled):
        parser.error(f"at most {len(labelled)} distinct frames")
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        for size in args.sizes:
            frames = [labelled[i] for i in sorted(order[:size])]
            workdir = Path(tmp) / f"n{size}"
            workdir.mkdir()
            cpu, wall, last, errors = fit(frames, reference, args.basis, args.iterations, workdir)
            n_atoms = sum(len(a) for a in frames)
            print(
                f"{size:>7} {n_atoms:>6} {cpu:>16.1f} {wall:>8.1f} {errors['energy_rmse']:>14.1f} "
                f"{errors['energy_mean_error']:>15.1f} {errors['forces_rmse']:>13.1f}"
            )

        cell = bulk("Si", "diamond", a=5.43, cubic=True) * (3, 3, 3)
        cell.positions += np.random.default_rng(1).normal(0, 0.05, cell.positions.shape)
        ace_only = cost_us_per_atom_step(
            make_ace_calculator(str(last / "output_potential.yace")), cell, args.steps
        )
        full = cost_us_per_atom_step(
            ReferencePlusACECalculator(str(last / "output_potential.yace"), reference), cell, args.steps
        )
        timing = subprocess.run(
            [BIN / "pace_timing", "output_potential.yaml", "-n", "2"],
            cwd=last,
            capture_output=True,
            text=True,
        ).stdout
    overall = [line for line in timing.splitlines() if "Overall timing" in line]
    print(
        f"\nevaluation cost, {len(cell)}-atom Si cell, one core, {args.steps} steps "
        "(goal <= 100 us/atom/step):"
    )
    print(f"  ACE alone (.yace):              {ace_only:8.1f} us/atom/step")
    print(f"  reference + ACE (ASE, numpy):   {full:8.1f} us/atom/step")
    print(
        "  pace_timing (B-basis, random fcc/bcc): "
        + (overall[0].split(":", 1)[1].strip() if overall else "n/a")
    )
    print("\nreproduce: uv run python bench/training.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
