"""Walk the provenance graph of an ActiveLearningWorkChain and gather plain arrays for the report.

The run's children are found by their call link labels (`explorer`, `labeling_<g>`, `training_<g>`,
`simulation_<g>`), so a run that stopped early or failed still gives what it made. Nothing is computed here
beyond reading nodes: the model evaluation and descriptors happen in :mod:`aiida_autopipe.reporting.report`.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from aiida import orm
from aiida.common.links import LinkType

from aiida_autopipe.calcfunctions.threshold import GAMMA_ARRAY, gammas_by_frame
from aiida_autopipe.core.pacemaker_input import read_labelled_frames

GENERATION_LABEL = re.compile(r"^(labeling|training|simulation)_(\d+)$")


@dataclasses.dataclass
class RunData:
    """What the report needs from one run, as plain Python and NumPy values."""

    pk: int
    process_label: str
    process_state: str
    exit_status: int | None
    exit_message: str | None
    elements: list[str]
    generations: list[dict]
    thresholds: dict[int, float]
    training_gammas: dict[int, np.ndarray]
    halting_gammas: dict[int, np.ndarray]
    gamma_statistic: str
    direct: dict | None
    frames: list
    potential_yaml: bytes | None
    reference: dict | None
    atomic_energies: dict
    final_errors: dict
    dataset_pk: int | None


def called_children(node: orm.ProcessNode) -> dict[str, orm.ProcessNode]:
    """Children by call link label; a label used twice (a restarted step) keeps the newest."""
    children = {}
    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
    for link in sorted(links, key=lambda triple: triple.node.ctime):
        children[link.link_label] = link.node
    return children


def _by_generation(children: dict) -> dict[str, dict[int, orm.ProcessNode]]:
    grouped: dict[str, dict[int, orm.ProcessNode]] = {"labeling": {}, "training": {}, "simulation": {}}
    for label, child in children.items():
        match = GENERATION_LABEL.match(label)
        if match:
            grouped[match.group(1)][int(match.group(2))] = child
    return grouped


def _frames(dataset: orm.SinglefileData) -> list:
    with dataset.open(mode="r") as handle:
        return read_labelled_frames(handle)


def _number_of_frames(dataset: orm.SinglefileData) -> int:
    count = dataset.base.extras.get("number_of_frames", None)
    return int(count) if count is not None else len(_frames(dataset))


def _errors(training: orm.ProcessNode) -> dict:
    if "output_parameters" not in training.outputs:
        return {}
    return training.outputs.output_parameters.get_dict()


def generation_rows(grouped: dict, metrics: dict) -> list[dict]:
    """One row per generation that trained: frames, labels added, errors, threshold, uncertain events."""
    per_generation = {row["generation"]: row for row in metrics.get("generations", [])}
    rows = []
    for generation, training in sorted(grouped["training"].items()):
        errors = _errors(training)
        labeling = grouped["labeling"].get(generation)
        labels = (
            len(labeling.outputs.labels) if labeling is not None and "labels" in labeling.outputs else None
        )
        row = {
            "generation": generation,
            "n_frames": _number_of_frames(training.inputs.dataset) if "dataset" in training.inputs else None,
            "labels_added": labels,
            "fit_ok": training.is_finished_ok,
        }
        for split in ("train", "test"):
            for quantity in ("energy_rmse", "forces_rmse"):
                row[f"{split}_{quantity}"] = errors.get(split, {}).get(quantity)
        recorded = per_generation.get(generation, {})
        row["uncertain_events"] = recorded.get("uncertain_events")
        row["threshold"] = recorded.get("threshold")
        rows.append(row)
    return rows


def simulation_gammas(simulation: orm.ProcessNode) -> tuple[dict, np.ndarray, np.ndarray]:
    """Threshold record, held-out gammas and halting-frame gammas of one Module E generation.

    Both gamma samples are in the threshold's own statistic (`frame_max`: each frame's largest per-atom
    gamma, the halting rule's; `atom`: every graded atom), so the histogram compares like with like.
    """
    record = simulation.outputs.threshold.get_dict() if "threshold" in simulation.outputs else {}
    per_atom = record.get("statistic") == "atom"
    held_out = np.zeros(0)
    if "training_gammas" in simulation.inputs:
        frames, _ = gammas_by_frame(simulation.inputs.training_gammas)
        held_out = _statistic(frames, per_atom)
    halting = [
        link.node.outputs.halting_gamma.get_array(GAMMA_ARRAY)
        for link in simulation.base.links.get_outgoing(link_type=LinkType.CALL_CALC).all()
        if "halting_gamma" in link.node.outputs
    ]
    return record, held_out, _statistic(halting, per_atom)


def _statistic(frames: list[np.ndarray], per_atom: bool) -> np.ndarray:
    frames = [np.asarray(gammas, dtype=float) for gammas in frames]
    frames = [gammas[np.isfinite(gammas)] for gammas in frames]
    frames = [gammas for gammas in frames if gammas.size]
    if not frames:
        return np.zeros(0)
    return np.concatenate(frames) if per_atom else np.array([gammas.max() for gammas in frames])


def direct_data(explorer: orm.ProcessNode) -> dict | None:
    """Surrogate-trajectory arrays, the DIRECT picks and the selection record of Module B."""
    if "trajectory" not in explorer.outputs or "selection" not in explorer.outputs:
        return None
    trajectory = explorer.outputs.trajectory
    selection = explorer.outputs.selection.get_dict()
    return {
        "arrays": {name: trajectory.get_array(name) for name in trajectory.get_arraynames()},
        "selected": np.asarray(selection.get("indices", []), dtype=int),
        "selection": selection,
    }


def _latest_output(node, grouped_training: dict, name: str):
    """The run's own output, else the latest successful fit's (a run that stopped early)."""
    if name in node.outputs:
        return node.outputs[name]
    for _, training in sorted(grouped_training.items(), reverse=True):
        if name in training.outputs:
            return training.outputs[name]
    return None


def collect_run(node: orm.ProcessNode) -> RunData:
    """Everything the report plots and tabulates, read from the graph of run `node`."""
    children = called_children(node)
    grouped = _by_generation(children)
    metrics = node.outputs.metrics.get_dict() if "metrics" in node.outputs else {}

    thresholds, training_gammas, halting_gammas, statistics = {}, {}, {}, set()
    for generation, simulation in sorted(grouped["simulation"].items()):
        record, training, halting = simulation_gammas(simulation)
        if record.get("threshold") is not None:
            thresholds[generation] = float(record["threshold"])
        statistics.add(record.get("statistic") or "frame_max")
        training_gammas[generation] = training
        halting_gammas[generation] = halting

    dataset = node.outputs.dataset if "dataset" in node.outputs else None
    if dataset is None and grouped["training"]:
        dataset = grouped["training"][max(grouped["training"])].inputs.dataset
    potential = _latest_output(node, grouped["training"], "potential_yaml")
    reference = _latest_output(node, grouped["training"], "reference")
    final_errors = metrics.get("final_errors") or {}
    if not final_errors and grouped["training"]:
        final_errors = _errors(grouped["training"][max(grouped["training"])])
    frames = _frames(dataset) if dataset is not None else []
    elements = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
    if "full_config" in node.outputs:
        elements = list(node.outputs.full_config.get_dict()["system"]["elements"])

    return RunData(
        pk=node.pk,
        process_label=node.process_label or type(node).__name__,
        process_state=node.process_state.value if node.process_state else "unknown",
        exit_status=node.exit_status,
        exit_message=node.exit_message,
        elements=elements,
        generations=generation_rows(grouped, metrics),
        thresholds=thresholds,
        training_gammas=training_gammas,
        halting_gammas=halting_gammas,
        gamma_statistic="atom" if statistics == {"atom"} else "frame_max",
        direct=direct_data(children["explorer"]) if "explorer" in children else None,
        frames=frames,
        potential_yaml=potential.get_content(mode="rb") if potential is not None else None,
        reference=reference.get_dict() if reference is not None else None,
        atomic_energies=dict(final_errors.get("atomic_energies") or {}),
        final_errors=final_errors,
        dataset_pk=dataset.pk if dataset is not None else None,
    )
