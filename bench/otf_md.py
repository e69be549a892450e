"""On-the-fly MD figures: ACE MD speed with and without the extrapolation grade, and time per embedding.

A small delta-learned ACE potential is fitted first (pacemaker, pyace evaluator, on the real pw.x Si labels of
the training tests, with the automatic LJ + ZBL reference; basis set by `--basis`), with its active set. Then
Langevin NVT of diamond Si supercells through the runner's own loop (`run_otf_md`, threshold out of reach so
nothing halts): microseconds per atom per step with gamma every step, every 10 steps and never, for ACE alone
and for reference + ACE. CPU seconds of this process are reported next to wall seconds (the machine is
shared; pyace runs on one core). Threshold: 95th percentile of held-out frames' largest gamma (5-fold, the
sample `PacemakerCalculation` now computes), next to the degenerate training-set percentile it replaced, with
the time the held-out step takes. Embedding: cut-out of a halting frame (a hot MD run that passed the
threshold), covalent H caps, the whole-frame decision, and optionally (`--relax`) the buffer relaxed with
CHGNet.

Reproduce: `uv run python bench/otf_md.py` (about 2 minutes on 2 shared cores); `--steps 200`,
`--sizes 2 3 4` (supercell repeats of the 8-atom cubic cell), `--basis 3 1 4`, `--relax`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from ase.build import bulk

from aiida_autopipe.core.baseline import fit_reference, make_ace_calculator
from aiida_autopipe.core.held_out_gamma import held_out_gammas
from aiida_autopipe.core.pacemaker_input import (
    DATASET_FILENAME,
    pacemaker_dataframe,
    pacemaker_input,
    read_labelled_frames,
    write_pacemaker_dataframe,
)
from aiida_autopipe.core.threshold import resolve_threshold
from aiida_autopipe.runners.otf_md import DEFAULTS, embed_frame, make_model, run_otf_md

DATA = Path(__file__).resolve().parents[1] / "tests" / "training" / "data" / "si_pwx_labels.extxyz"
BIN = Path(sys.executable).parent
R_CUT = 5.0


def fit(directory: Path, basis: list[int], iterations: int) -> dict:
    frames = read_labelled_frames(DATA)
    reference = fit_reference(frames, r_cut=R_CUT)
    (directory / "reference.json").write_text(json.dumps(reference.to_dict()))
    write_pacemaker_dataframe(pacemaker_dataframe(frames, reference), directory / DATASET_FILENAME)
    settings = pacemaker_input(["Si"], R_CUT, *basis, iterations, densities=1)
    (directory / "input.yaml").write_text(yaml.safe_dump(settings))
    for command in (
        [BIN / "pacemaker", "input.yaml"],
        [BIN / "pace_activeset", "-d", DATASET_FILENAME, "--all-atoms", "output_potential.yaml"],
    ):
        subprocess.run(command, cwd=directory, check=True, capture_output=True)
    return {
        "potential": directory / "output_potential.yaml",
        "active_set": directory / "output_potential.asi",
        "reference": directory / "reference.json",
        "frames": frames,
    }


def training_set_gammas(files: dict) -> list:
    """Per-frame gamma of the training frames against the active set built from all of them (<= ~1)."""
    calculator = make_ace_calculator(files["potential"], files["active_set"])
    gammas = []
    for atoms in files["frames"]:
        calculator.calculate(atoms.copy(), properties=("energy",))
        gammas.append(np.array(calculator.results["gamma"]))
    return gammas


def md_cost(
    files: dict, atoms, steps: int, gamma_every: int | None, with_reference: bool
) -> tuple[float, float]:
    """(CPU, wall) microseconds per atom per step of the OTF loop; gamma_every None: gamma never computed."""
    settings = {
        **DEFAULTS,
        "potential": files["potential"],
        "active_set": files["active_set"],
        "reference": files["reference"] if with_reference else None,
        "temperature": 300.0,
        "steps": steps,
        "threshold": 1e9,
        "gamma_every": gamma_every or steps + 1,
    }
    model = make_model(settings)
    copy = atoms.copy()
    cpu, wall = time.process_time(), time.perf_counter()
    run_otf_md(copy, model, settings)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    scale = 1e6 / steps / len(atoms)
    return cpu * scale, wall * scale


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--basis", type=int, nargs=3, default=[3, 1, 4], help="body order, degree, radial")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--relax", action="store_true", help="also time the CHGNet buffer relaxation")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        files = fit(Path(tmp), arguments.basis, arguments.iterations)
        elapsed = time.perf_counter() - started
        print(f"fit (basis {arguments.basis}, {arguments.iterations} iterations): {elapsed:.1f} s")
        print(f"\nOTF MD cost, {arguments.steps} Langevin steps at 300 K, us/atom/step as CPU (wall):")
        print(f"{'atoms':>6} {'model':>12} {'gamma every step':>20} {'every 10 steps':>18} {'no gamma':>18}")
        for repeat in arguments.sizes:
            atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(repeat)
            for with_reference, name in ((False, "ACE"), (True, "ref + ACE")):
                cells = [
                    md_cost(files, atoms, arguments.steps, every, with_reference) for every in (1, 10, None)
                ]
                row = " ".join(f"{cpu:>10.1f} ({wall:>6.1f})" for cpu, wall in cells)
                print(f"{len(atoms):>6} {name:>12} {row}")

        own = resolve_threshold("dynamic_95percentile", training_set_gammas(files), statistic="frame_max")
        started = time.perf_counter()
        grades = held_out_gammas(str(files["potential"]), files["frames"], n_folds=5, seed=0)
        elapsed = time.perf_counter() - started
        record = resolve_threshold("dynamic_95percentile", grades.per_frame(), statistic="frame_max")
        threshold = record.threshold
        print(
            f"\nthreshold (P95 of per-frame max gamma, floor 1, ceiling 10), {len(files['frames'])} frames: "
            f"training set vs own active set {own.raw_value:.3f} (degenerate); 5-fold held-out "
            f"{record.raw_value:.3f} -> threshold {threshold:.3f} (held-out step {elapsed:.2f} s)"
        )
        settings = {
            **DEFAULTS,
            **{key: files[key] for key in ("potential", "active_set", "reference")},
            "temperature": 3000.0,
            "steps": 500,
            "threshold": threshold,
        }
        halting = bulk("Si", "diamond", a=5.431, cubic=True).repeat(3)
        record = run_otf_md(halting, make_model(settings), settings)
        print(
            f"\nhalting frame: 216 Si at 3000 K, threshold {threshold:.3f}, halt step {record['halt_step']}"
        )
        gamma = record["gamma"]
        print(f"uncertain atoms: {int(np.sum(gamma > threshold))} of {len(halting)}")
        for r_cut, prefer_whole_frame in ((R_CUT, True), (R_CUT, False), (3.0, False)):
            embedding = {"r_cut": r_cut, "bonding": "covalent", "prefer_whole_frame": prefer_whole_frame}
            started = time.perf_counter()
            clusters = embed_frame(halting.copy(), gamma, threshold, embedding)
            elapsed = time.perf_counter() - started
            sizes = ", ".join(
                f"{len(c)} atoms ({int(np.sum(c.arrays['autopipe_region'] == 'cap'))} H"
                f"{', whole frame' if c.info['autopipe_whole_frame'] else ''})"
                for c in clusters
            )
            print(
                f"embedding, r_cut {r_cut} A, prefer_whole_frame {prefer_whole_frame}: "
                f"{elapsed * 1e3:.0f} ms, {len(clusters)} cluster(s): {sizes}"
            )
            if arguments.relax:
                from aiida_autopipe.runners.otf_md import _surrogate_calculator

                calculator, choice = _surrogate_calculator(
                    {"surrogate": {"requested": "chgnet", "device": "cpu"}}
                )
                embedding["relax"] = {"fmax": 0.05, "steps": 200}
                started = time.perf_counter()
                relaxed = embed_frame(halting.copy(), gamma, threshold, embedding, calculator)
                elapsed = time.perf_counter() - started
                converged = [c.info.get("autopipe_relax_converged") for c in relaxed]
                print(f"  + buffer relaxed, {choice['name']} (FIRE, fmax 0.05): {elapsed:.1f} s, {converged}")


if __name__ == "__main__":
    main()
