"""`mlip-pipe report PK`: PNG figures and a markdown page for one active-learning run.

Runs in the CLI, never in the daemon: it evaluates the final potential (reference + ACE, as exported) on
the labelled frames for the parity plots, and computes descriptors of the surrogate frames when the
explorer stored none. A part that has no data yet (no simulation generation, a failed explorer) is left out
and named in the page's notes instead of failing the report.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from aiida import orm

from aiida_autopipe.core.validation import report_markdown
from aiida_autopipe.reporting import plots
from aiida_autopipe.reporting.arrays import parity_data, pca_plane, rmse
from aiida_autopipe.reporting.collect import RunData, collect_run
from aiida_autopipe.reporting.summary import markdown_summary

SUMMARY_FILE = "report.md"
FIGURES = {
    "learning_curve": "learning_curve.png",
    "energy_parity": "parity_energy.png",
    "force_parity": "parity_forces.png",
    "gamma": "gamma_histogram.png",
    "direct": "direct_coverage.png",
}


def final_model(run: RunData, directory: Path):
    """The exported model (reference + ACE, or plain ACE plus per-element energies) as an ASE calculator."""
    from aiida_autopipe.core.baseline import ReferencePlusACECalculator, ReferencePotential

    path = directory / "potential.yaml"
    path.write_bytes(run.potential_yaml)
    if run.reference is not None:
        return ReferencePlusACECalculator(str(path), reference=ReferencePotential.from_dict(run.reference))
    return ReferencePlusACECalculator(str(path), atomic_energies=run.atomic_energies)


def direct_features(direct: dict) -> np.ndarray:
    """The descriptors DIRECT selected on: stored by the runner, else recomputed with the same settings."""
    arrays = direct["arrays"]
    if "descriptors" in arrays:
        return arrays["descriptors"]
    from aiida_autopipe.core.descriptors import compute_descriptors

    options = direct["selection"].get("descriptor")
    options = dict(options) if isinstance(options, dict) else {}
    return compute_descriptors(
        arrays["positions"], arrays["numbers"], arrays["n_atoms"], arrays["cells"], arrays["pbc"], **options
    )


def write_report(node: orm.ProcessNode, out_dir: str | Path) -> Path:
    """Write the figures and `report.md` into `out_dir`; returns the markdown file's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = collect_run(node)
    figures: dict[str, str] = {}
    notes: list[str] = []

    rows = run.generations
    if rows:
        plots.plot_learning_curve(
            [row["generation"] for row in rows],
            [row["n_frames"] if row["n_frames"] is not None else "?" for row in rows],
            {split: _column(rows, f"{split}_energy_rmse") for split in ("train", "test")},
            {split: _column(rows, f"{split}_forces_rmse") for split in ("train", "test")},
            out_dir / FIGURES["learning_curve"],
        )
        figures["Learning curve over generations"] = FIGURES["learning_curve"]
    else:
        notes.append("no fit has finished: no learning curve")

    parity = None
    if run.potential_yaml is not None and run.frames:
        with tempfile.TemporaryDirectory() as tmp:
            data = parity_data(run.frames, final_model(run, Path(tmp)))
        plots.plot_parity(
            data["energy_label"],
            data["energy_predicted"],
            "energy",
            "eV/atom",
            out_dir / FIGURES["energy_parity"],
        )
        plots.plot_parity(
            data["forces_label"], data["forces_predicted"], "force", "eV/Å", out_dir / FIGURES["force_parity"]
        )
        figures["Energy parity (final potential, all labelled frames)"] = FIGURES["energy_parity"]
        figures["Force parity (final potential, all labelled frames)"] = FIGURES["force_parity"]
        parity = {
            "n_frames": len(run.frames),
            "n_force_components": int(data["forces_label"].size),
            "energy_rmse": rmse(data["energy_label"], data["energy_predicted"]),
            "forces_rmse": rmse(data["forces_label"], data["forces_predicted"]),
            "model": "LJ + ZBL reference + ACE"
            if run.reference is not None
            else "ACE + per-element energies",
        }
    else:
        notes.append("no potential and labelled dataset yet: no parity plots")

    if run.thresholds or any(len(g) for g in run.halting_gammas.values()):
        plots.plot_gamma_histogram(
            run.training_gammas,
            run.halting_gammas,
            run.thresholds,
            out_dir / FIGURES["gamma"],
            statistic=run.gamma_statistic,
        )
        figures["Extrapolation grade and threshold per generation"] = FIGURES["gamma"]
    else:
        notes.append("no on-the-fly MD generation yet: no gamma histogram")

    direct_summary = None
    if run.direct is not None and len(run.direct["arrays"].get("n_atoms", [])):
        plane = pca_plane(direct_features(run.direct))
        plots.plot_direct_coverage(plane, run.direct["selected"], out_dir / FIGURES["direct"])
        figures["DIRECT coverage in PCA space"] = FIGURES["direct"]
        direct_summary = run.direct["selection"]
    else:
        notes.append("no explorer output: no DIRECT coverage plot")

    status = run.process_state
    if run.exit_status is not None:
        status += f", exit status {run.exit_status}" + (f" ({run.exit_message})" if run.exit_message else "")
    if run.dataset_pk is not None:
        notes.append(f"labelled dataset: SinglefileData<{run.dataset_pk}> (`mlip-pipe export {run.pk}`)")
    page = markdown_summary(
        f"{run.process_label}<{run.pk}>", status, run.elements, rows, parity, direct_summary, figures, notes
    )
    if "validation_report" in node.outputs:
        page += "\n" + report_markdown(node.outputs.validation_report.get_dict())
    path = out_dir / SUMMARY_FILE
    path.write_text(page)
    return path


def _column(rows: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else row[key] for row in rows], dtype=float)
