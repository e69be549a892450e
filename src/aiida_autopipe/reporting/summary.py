"""The report's markdown page: status, per-generation table, final accuracy, DIRECT record, figures.

AiiDA-free: it formats plain values, so what a user reads is exactly what the collector found.
"""

from __future__ import annotations

import math


def _number(value, scale: float = 1.0, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int | float):
        return f"{value * scale:.{digits}g}"
    return str(value)


def generation_table(rows: list[dict]) -> list[str]:
    """Markdown table, one line per generation (errors in meV/atom and meV/A)."""
    lines = [
        "| generation | frames | labels added | uncertain events | gamma threshold | E RMSE train / test "
        "(meV/atom) | F RMSE train / test (meV/Å) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        energy = (
            f"{_number(row.get('train_energy_rmse'), 1000)} / {_number(row.get('test_energy_rmse'), 1000)}"
        )
        forces = (
            f"{_number(row.get('train_forces_rmse'), 1000)} / {_number(row.get('test_forces_rmse'), 1000)}"
        )
        lines.append(
            f"| {row['generation']} | {_number(row.get('n_frames'))} | {_number(row.get('labels_added'))} | "
            f"{_number(row.get('uncertain_events'))} | {_number(row.get('threshold'))} | "
            f"{energy} | {forces} |"
        )
    return lines


def markdown_summary(
    title: str,
    status: str,
    elements: list[str],
    rows: list[dict],
    parity: dict | None,
    direct: dict | None,
    figures: dict[str, str],
    notes: list[str],
) -> str:
    """The whole page. `parity`: n_frames, n_force_components, energy_rmse (eV/atom), forces_rmse (eV/A),
    model (what was evaluated); `figures`: caption -> file name relative to the page."""
    lines = [f"# {title}", "", f"- system: {'-'.join(elements) or 'unknown'}", f"- status: {status}", ""]
    lines += ["## Generations", ""]
    lines += generation_table(rows) if rows else ["No fit finished yet."]
    lines.append("")
    if parity:
        lines += [
            "## Final potential on its labelled frames",
            "",
            f"{parity['n_frames']} frames, {parity['n_force_components']} force components: energy RMSE "
            f"{_number(parity['energy_rmse'], 1000)} meV/atom, force RMSE "
            f"{_number(parity['forces_rmse'], 1000)} meV/Å ({parity['model']}, evaluated for this report).",
            "",
        ]
    if direct:
        lines += [
            "## DIRECT selection (Module B)",
            "",
            f"{_number(direct.get('n_selected'))} of {_number(direct.get('n_frames'))} surrogate frames "
            f"selected; {_number(direct.get('n_covered_clusters'))} of "
            f"{_number(direct.get('n_clusters'))} clusters covered, {_number(direct.get('n_components'))} "
            f"principal components ({_number(direct.get('retained_variance'))} of the variance).",
            "",
        ]
    if figures:
        lines += ["## Figures", ""]
        for caption, filename in figures.items():
            lines += [f"### {caption}", "", f"![{caption}]({filename})", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)
