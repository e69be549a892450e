"""``ExplorerWorkChain``: scan phase space with a universal surrogate (no DFT), then DIRECT-pick frames."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain

from aiida_autopipe.calcfunctions.selection import SELECTION_DEFAULTS, select_frames
from aiida_autopipe.calculations.surrogate import SurrogateCalculation


def validate_selection(value, _):
    """Budget and cluster size must be positive integers before any MD is spent."""
    if value is None:
        return None
    settings = {**SELECTION_DEFAULTS, **value.get_dict()}
    for key in ("budget", "k_per_cluster"):
        if not (isinstance(settings[key], int) and settings[key] >= 1):
            return f"`selection.{key}` must be a positive integer, got {settings[key]!r}"
    if not 0 < settings["variance_threshold"] <= 1:
        return f"`selection.variance_threshold` must be in (0, 1], got {settings['variance_threshold']}"
    return None


class ExplorerWorkChain(WorkChain):
    """Seed structures -> surrogate MD (one SurrogateCalculation) -> descriptors + DIRECT -> picked frames."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(SurrogateCalculation, namespace="surrogate")
        spec.input(
            "selection",
            valid_type=orm.Dict,
            default=lambda: orm.Dict(SELECTION_DEFAULTS),
            serializer=orm.to_aiida_type,
            validator=validate_selection,
            help="budget, k_per_cluster, variance_threshold, duplicate_tolerance, seed, descriptor.",
        )
        spec.outline(cls.run_surrogate, cls.inspect_surrogate, cls.select, cls.results)

        spec.output("trajectory", valid_type=orm.ArrayData, help="All surrogate frames (flat arrays).")
        spec.output("surrogate_parameters", valid_type=orm.Dict, help="Resolved surrogate and run records.")
        spec.output("selection", valid_type=orm.Dict, help="Selected frame indices, clusters and summary.")
        spec.output_namespace(
            "selected_structures",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Frames picked for labelling.",
        )
        spec.exit_code(401, "ERROR_SURROGATE_FAILED", message="The SurrogateCalculation failed: {message}")
        spec.exit_code(402, "ERROR_NO_FRAMES", message="The surrogate runs saved no frame to select from.")

    def run_surrogate(self):
        inputs = self.exposed_inputs(SurrogateCalculation, namespace="surrogate")
        inputs.setdefault("metadata", {})["call_link_label"] = "surrogate"
        return ToContext(surrogate=self.submit(SurrogateCalculation, **inputs))

    def inspect_surrogate(self):
        calculation = self.ctx.surrogate
        if not calculation.is_finished_ok:
            message = f"exit status {calculation.exit_status}: {calculation.exit_message}"
            return self.exit_codes.ERROR_SURROGATE_FAILED.format(message=message)
        trajectory = calculation.outputs.trajectory
        if len(trajectory.get_array("n_atoms")) == 0:
            return self.exit_codes.ERROR_NO_FRAMES
        self.out("trajectory", trajectory)
        self.out("surrogate_parameters", calculation.outputs.output_parameters)
        return None

    def select(self):
        outputs = select_frames(self.ctx.surrogate.outputs.trajectory, self.inputs.selection)
        self.ctx.selection = outputs.pop("selection")
        self.ctx.selected = outputs

    def results(self):
        self.out("selection", self.ctx.selection)
        self.out("selected_structures", self.ctx.selected)
        n_selected = len(self.ctx.selected)
        n_frames = self.ctx.selection["n_frames"]
        self.report(f"selected {n_selected} of {n_frames} surrogate frames by DIRECT sampling")
