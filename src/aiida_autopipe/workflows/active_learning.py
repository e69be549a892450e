"""ActiveLearningWorkChain: the whole pipeline, one module per outline step.

expand config -> A structure generator -> B explorer + DIRECT -> C labeling -> D training
-> loop { E simulation -> C labeling -> D training } until converged -> validation -> results.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, while_

from aiida_autopipe.calcfunctions.config import expand_user_config


class ActiveLearningWorkChain(WorkChain):
    """Autonomous active learning of an ACE potential from a minimal input.yaml."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("user_config", valid_type=orm.Dict, help="The user's input.yaml, as written.")
        spec.input("environment", valid_type=orm.Dict, help="Facts about the machine the heuristics used.")
        spec.input(
            "structure", valid_type=orm.StructureData, required=False, help="The user's structure file."
        )
        spec.outline(
            cls.expand_config,
            cls.generate_structures,  # Module A
            cls.explore,  # Module B
            cls.label,  # Module C
            cls.train,  # Module D
            while_(cls.should_continue)(
                cls.simulate,  # Module E
                cls.label,
                cls.train,
            ),
            cls.validate,
            cls.results,
        )
        spec.output(
            "full_config", valid_type=orm.Dict, help="Every value the pipeline used, with its reason."
        )
        spec.exit_code(
            301,
            "ERROR_MODULE_NOT_AVAILABLE",
            message="{module} is not available in this version of aiida-autopipe.",
        )

    def expand_config(self):
        """Fill every key of the config from the user's input and the machine facts, as a calcfunction."""
        structure = self.inputs.get("structure")
        extra = {"structure": structure} if structure is not None else {}
        self.ctx.config = expand_user_config(self.inputs.user_config, self.inputs.environment, **extra)
        self.out("full_config", self.ctx.config)
        system = self.ctx.config["system"]
        self.report(
            f"config expanded: {'-'.join(system['elements'])} classified as {system['structure_type']}"
        )

    def generate_structures(self):
        """Module A: seed structures from the composition or structure, without DFT."""
        return self.exit_codes.ERROR_MODULE_NOT_AVAILABLE.format(module="Module A (structure generator)")

    def explore(self):
        """Module B: surrogate MD from the seeds and DIRECT selection of the frames to label."""
        return self.exit_codes.ERROR_MODULE_NOT_AVAILABLE.format(module="Module B (explorer)")

    def label(self):
        """Module C: pw.x single points for the selected frames."""
        return self.exit_codes.ERROR_MODULE_NOT_AVAILABLE.format(module="Module C (labeling)")

    def train(self):
        """Module D: fit the ACE potential on all labels so far."""
        return self.exit_codes.ERROR_MODULE_NOT_AVAILABLE.format(module="Module D (training)")

    def should_continue(self):
        """Loop until no uncertain event for `converged_generations` generations, or `max_generations`."""
        return False

    def simulate(self):
        """Module E: on-the-fly MD (and kMC) with the current potential, cutting out uncertain regions."""
        return self.exit_codes.ERROR_MODULE_NOT_AVAILABLE.format(module="Module E (simulation)")

    def validate(self):
        """Equation of state, elastic constants, RDF and parity against the DFT labels."""

    def results(self):
        """Attach the final potential, dataset and metrics."""
