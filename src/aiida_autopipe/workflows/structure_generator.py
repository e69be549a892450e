"""StructureGeneratorWorkChain: seed structures for a system, without DFT."""

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_autopipe.calcfunctions.structures import (
    GENERATION_ATTRIBUTE,
    classify_system,
    distinct_relaxed_structures,
    generate_surrogate_free_structures,
)
from aiida_autopipe.calculations.surrogate import SurrogateCalculation
from aiida_autopipe.core.classify import STRUCTURE_TYPES
from aiida_autopipe.core.structures.generate import GENERATION_DEFAULTS

#: Relaxation of the random ionic cells by the surrogate runner; `surrogate.parameters.relax` overrides.
RELAX_TASK = {"kind": "relax", "fmax": 0.1, "steps": 200, "relax_cell": True}

SYSTEM_KEYS = {"elements", "composition", "structure_file", "structure_type", "melting_point_guess"}


def validate_system(value, _):
    """The config's `system` section: a composition of known elements; structure_type known or absent."""
    if value is None:
        return None
    system = value.get_dict()
    unknown = set(system) - SYSTEM_KEYS
    if unknown:
        return f"`system` has unknown keys {sorted(unknown)}; allowed: {sorted(SYSTEM_KEYS)}"
    composition = system.get("composition")
    if not composition or not all(amount >= 0 for amount in composition.values()):
        return "`system.composition` must map elements to non-negative amounts, e.g. {Fe: 0.5, Pt: 0.5}"
    structure_type = system.get("structure_type", "auto")
    if structure_type not in (*STRUCTURE_TYPES, "auto"):
        return f"`system.structure_type` is {structure_type!r}; use one of {STRUCTURE_TYPES} or 'auto'"
    return None


def validate_generation(value, _):
    if value is None:
        return None
    unknown = set(value.get_dict()) - set(GENERATION_DEFAULTS)
    if unknown:
        return f"`generation` has unknown keys {sorted(unknown)}; allowed: {sorted(GENERATION_DEFAULTS)}"
    return None


class StructureGeneratorWorkChain(WorkChain):
    """Diverse, sanity-checked seed structures from a composition or a structure, tagged with how each was
    made (attribute and extra `autopipe_generation`: method, label, parent, strain, temperature, details).

    Surrogate-free steps: SQS with off-stoichiometry and strains (alloys), random ionic cells (ionic), deep
    rattling or random covalent cells (covalent), rattled molecules (molecules). With a `surrogate.code`
    (the `autopipe-surrogate` runner), the random cells (ionic, or covalent compounds given without a
    structure) are also relaxed by an `autopipe.surrogate` CalcJob and the distinct relaxed polymorphs
    added. Melt-quench MD and normal-mode Hessians (core: `melt_quench.melt_quench`,
    `normal_modes.normal_mode_samples`) need runner tasks that do not exist yet (a temperature ramp chained
    after the melt; forces on displaced copies); they go in as further surrogate steps after
    `collect_relaxed_cells`.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "system", valid_type=orm.Dict, validator=validate_system, help="The config's `system` section."
        )
        spec.input(
            "structure",
            valid_type=orm.StructureData,
            required=False,
            help="Replaces the composition: parent lattice of an SQS, crystal to rattle, or molecule.",
        )
        spec.input(
            "generation",
            valid_type=orm.Dict,
            required=False,
            validator=validate_generation,
            help=f"Counts, strains, amplitudes and seed; defaults: {GENERATION_DEFAULTS}.",
        )
        spec.input_namespace("surrogate", required=False, populate_defaults=False, help="Surrogate runner.")
        spec.input("surrogate.code", valid_type=orm.AbstractCode, help="The `autopipe-surrogate` Code.")
        spec.input("surrogate.model", valid_type=orm.SinglefileData, required=False, help="MACE .model file.")
        spec.input(
            "surrogate.parameters",
            valid_type=orm.Dict,
            required=False,
            help="`surrogate` ({requested, device}), `relax` (overrides of fmax, steps, relax_cell), "
            "`torch_threads`.",
        )
        spec.output_namespace("structures", valid_type=orm.StructureData, dynamic=True)
        spec.output(
            "summary", valid_type=orm.Dict, help="Bonding class, counts by method, rejections, SQS quality."
        )
        spec.output(
            "relaxation_summary",
            valid_type=orm.Dict,
            required=False,
            help="Surrogate relaxation of random cells.",
        )
        spec.outline(
            if_(cls.needs_classification)(cls.classify),
            cls.generate_surrogate_free,
            if_(cls.should_relax_random_cells)(cls.relax_random_cells, cls.collect_relaxed_cells),
            cls.results,
        )
        spec.exit_code(
            400,
            "ERROR_SURROGATE_RELAXATION_FAILED",
            message="The surrogate relaxation of random cells failed.",
        )

    def needs_classification(self):
        return self.inputs.system.get("structure_type", "auto") == "auto"

    def classify(self):
        """Bonding class from the structure or the composition, recorded by a calcfunction."""
        verdict = classify_system(self.inputs.system, self.inputs.get("structure"))
        self.ctx.classification = verdict
        self.report(f"classified as {verdict['structure_type']}: {verdict['reason']}")

    def _system(self) -> orm.Dict:
        if "classification" not in self.ctx:
            return self.inputs.system
        return orm.Dict(
            {**self.inputs.system.get_dict(), "structure_type": self.ctx.classification["structure_type"]}
        )

    def generate_surrogate_free(self):
        generation = self.inputs.get("generation") or orm.Dict({})
        system = self._system()
        kwargs = {"structure": self.inputs.structure} if "structure" in self.inputs else {}
        outputs = generate_surrogate_free_structures(system, generation, **kwargs)
        self.ctx.summary = outputs.pop("summary")
        self.ctx.structures = outputs
        summary = self.ctx.summary.get_dict()
        self.report(
            f"{system['structure_type']}: kept {summary['n_kept']} of {summary['n_generated']} structures "
            f"(rejected {summary['rejections'] or 'none'})"
        )

    def _random_cells(self) -> dict:
        return {
            label: node
            for label, node in self.ctx.structures.items()
            if node.base.attributes.get(GENERATION_ATTRIBUTE)["method"] == "random_search"
        }

    def should_relax_random_cells(self):
        return "surrogate" in self.inputs and bool(self._random_cells())

    def relax_random_cells(self):
        """Relax every random cell (positions and cell) with the surrogate, in one CalcJob."""
        settings = (
            self.inputs.surrogate.parameters.get_dict() if "parameters" in self.inputs.surrogate else {}
        )
        generation = self.inputs.get("generation")
        parameters = {
            "tasks": [{**RELAX_TASK, **settings.get("relax", {})}],
            "seed": (generation.get_dict() if generation else {}).get("seed", 0),
            **{key: settings[key] for key in ("surrogate", "torch_threads") if key in settings},
        }
        inputs = {
            "code": self.inputs.surrogate.code,
            "structures": self._random_cells(),
            "parameters": orm.Dict(parameters),
        }
        if "model" in self.inputs.surrogate:
            inputs["model"] = self.inputs.surrogate.model
        return ToContext(relaxation=self.submit(SurrogateCalculation, **inputs))

    def collect_relaxed_cells(self):
        calculation = self.ctx.relaxation
        if not calculation.is_finished_ok or "relaxed_structures" not in calculation.outputs:
            self.report(f"surrogate relaxation {calculation.pk} failed: {calculation.exit_message}")
            return self.exit_codes.ERROR_SURROGATE_RELAXATION_FAILED
        relaxed = dict(calculation.outputs.relaxed_structures.items())
        outputs = distinct_relaxed_structures(**relaxed)
        self.ctx.relaxation_summary = outputs.pop("relaxation_summary")
        self.ctx.structures.update(outputs)
        summary = self.ctx.relaxation_summary.get_dict()
        self.report(f"relaxed {summary['n_relaxed']} random cells: {summary['n_distinct']} distinct kept")
        return None

    def results(self):
        for label, node in self.ctx.structures.items():
            node.base.extras.set(GENERATION_ATTRIBUTE, node.base.attributes.get(GENERATION_ATTRIBUTE))
            self.out(f"structures.{label}", node)
        self.out("summary", self.ctx.summary)
        if "relaxation_summary" in self.ctx:
            self.out("relaxation_summary", self.ctx.relaxation_summary)
