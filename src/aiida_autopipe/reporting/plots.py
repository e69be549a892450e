"""The report's figures from plain arrays: learning curve, parity, gamma histogram, DIRECT coverage.

No AiiDA here: each function takes NumPy arrays and writes one PNG, so the figures can be tested (and reused)
without a profile. matplotlib runs on its non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

DPI = 120


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return path


def plot_learning_curve(
    generations,
    n_frames,
    energy_rmse: dict[str, np.ndarray],
    forces_rmse: dict[str, np.ndarray],
    path: str | Path,
) -> Path:
    """Energy (meV/atom) and force (meV/A) RMSE of each generation's fit; `{split: values}`, NaN for gaps.

    Tick labels carry the number of labelled frames, since a generation's error means little without it.
    """
    generations = np.asarray(generations, dtype=int)
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharex=True)
    for axis, curves, title, unit in (
        (axes[0], energy_rmse, "Energy RMSE", "meV/atom"),
        (axes[1], forces_rmse, "Force RMSE", "meV/Å"),
    ):
        for split, values in curves.items():
            values = 1000.0 * np.asarray(values, dtype=float)
            if np.isfinite(values).any():
                axis.plot(generations, values, marker="o", label=split)
        finite = np.concatenate([np.asarray(v, dtype=float) for v in curves.values()] or [np.zeros(0)])
        finite = finite[np.isfinite(finite) & (finite > 0)]
        if finite.size and finite.max() > 10 * finite.min():
            axis.set_yscale("log")  # errors of an improving potential fall by decades
        axis.set_title(title)
        axis.set_ylabel(unit)
        axis.set_xlabel("generation (labelled frames)")
        axis.set_xticks(generations, [f"{g}\n({n})" for g, n in zip(generations, n_frames, strict=True)])
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    return _save(figure, path)


def plot_parity(label, predicted, quantity: str, unit: str, path: str | Path) -> Path:
    """Predicted against labelled values with the diagonal, RMSE and MAE in the title."""
    label = np.asarray(label, dtype=float).ravel()
    predicted = np.asarray(predicted, dtype=float).ravel()
    figure, axis = plt.subplots(figsize=(4.2, 4.2))
    axis.scatter(label, predicted, s=8, alpha=0.6, edgecolors="none")
    if label.size:
        low = float(min(label.min(), predicted.min()))
        high = float(max(label.max(), predicted.max()))
        pad = 0.05 * (high - low or 1.0)
        axis.plot([low - pad, high + pad], [low - pad, high + pad], color="black", lw=0.8)
        errors = predicted - label
        rmse, mae = float(np.sqrt(np.mean(errors**2))), float(np.mean(np.abs(errors)))
        axis.set_title(f"{quantity}: RMSE {rmse:.3g}, MAE {mae:.3g} {unit}", fontsize=9)
    axis.set_xlabel(f"DFT {quantity} ({unit})")
    axis.set_ylabel(f"ACE {quantity} ({unit})")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_gamma_histogram(
    training_gammas: dict[int, np.ndarray],
    halting_gammas: dict[int, np.ndarray],
    thresholds: dict[int, float],
    path: str | Path,
    statistic: str = "frame_max",
) -> Path:
    """Extrapolation grade per generation: held-out frames (filled), halting frames (line), threshold.

    `statistic` says what one count is: `frame_max` (a frame's largest per-atom gamma, what MD halts on) or
    `atom`. Log-scaled x axis: gamma spans decades once a frame extrapolates.
    """
    generations = sorted({*training_gammas, *halting_gammas, *thresholds})
    values = [np.asarray(v, dtype=float) for v in (*training_gammas.values(), *halting_gammas.values())]
    values = np.concatenate(values) if values else np.zeros(0)
    positive = values[values > 0]
    low = max(float(positive.min()), 1e-3) if positive.size else 1e-2
    high = max([float(positive.max()) if positive.size else 1.0, *thresholds.values(), low * 10])
    bins = np.geomspace(low, high * 1.05, 40)
    figure, axis = plt.subplots(figsize=(6, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, generation in enumerate(generations):
        colour = colours[index % len(colours)]
        if generation in training_gammas and len(training_gammas[generation]):
            axis.hist(
                np.clip(training_gammas[generation], low, None),
                bins=bins,
                alpha=0.35,
                color=colour,
                label=f"g{generation} held-out frames",
            )
        if generation in halting_gammas and len(halting_gammas[generation]):
            axis.hist(
                np.clip(halting_gammas[generation], low, None),
                bins=bins,
                histtype="step",
                lw=1.5,
                color=colour,
                label=f"g{generation} halting frames",
            )
        if generation in thresholds:
            axis.axvline(thresholds[generation], color=colour, ls="--", label=f"g{generation} threshold")
    axis.set_xscale("log")
    per_atom = statistic == "atom"
    axis.set_xlabel("per-atom extrapolation grade gamma" if per_atom else "largest gamma of a frame")
    axis.set_ylabel("atoms" if per_atom else "frames")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    return _save(figure, path)


def plot_direct_coverage(plane, selected, path: str | Path) -> Path:
    """Every surrogate frame in the first two principal components, DIRECT's picks highlighted."""
    plane = np.asarray(plane, dtype=float)
    selected = np.asarray(selected, dtype=int)
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    axis.scatter(plane[:, 0], plane[:, 1], s=5, color="0.6", alpha=0.5, label=f"{len(plane)} frames")
    if selected.size:
        axis.scatter(
            plane[selected, 0], plane[selected, 1], s=22, color="C3", label=f"{selected.size} selected"
        )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.set_title("DIRECT coverage of the explored space", fontsize=10)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return _save(figure, path)
