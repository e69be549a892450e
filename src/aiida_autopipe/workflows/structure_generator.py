"""StructureGeneratorWorkChain: seed structures for a system, without DFT."""

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_autopipe.calcfunctions.structures import (
    GENERATION_ATTRIBUTE,
    classify_system,
    distinct_relaxed_structures,
    generate_surrogate_free_structures,
    sane_generated_structures,
)
from aiida_autopipe.calculations.surrogate import SurrogateCalculation
from aiida_autopipe.core.classify import STRUCTURE_TYPES
from aiida_autopipe.core.structures.melt_quench import melt_temperature
from aiida_autopipe.core.structures.settings import GENERATION_DEFAULTS

#: Relaxation of the random ionic cells by the surrogate runner; `surrogate.parameters.relax` overrides.
RELAX_TASK = {"kind": "relax", "fmax": 0.1, "steps": 200, "relax_cell": True}
#: The surrogate runner jobs this work chain may launch, by context key: what each does to which seeds.
SURROGATE_JOBS = {
    "relaxation": "relax the random cells (ionic; covalent compounds without a structure)",
    "melt_quench": "melt-quench the covalent crystal (or the random covalent cells)",
    "normal_modes": "sample the molecule's normal modes at each temperature",
}

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


def melt_quench_task(settings: dict, system: dict) -> dict:
    """The runner's melt_quench task from the `generation` settings; the melt temperature is the given one,
    else 1.5 x the melting point (system.melting_point_guess, else the elements')."""
    melt = settings["melt_temperature"] or melt_temperature(
        system["composition"], system.get("melting_point_guess")
    )
    return {
        "kind": "melt_quench",
        "melt_temperature": float(melt),
        "quench_temperature": float(settings["quench_temperature"]),
        "melt_steps": int(settings["melt_steps"]),
        "quench_steps": int(settings["quench_steps"]),
        "timestep": float(settings["md_timestep"]),
        "repeats": int(settings["n_melt_quench"]),
        "n_melt_snapshots": int(settings["n_melt_snapshots"]),
        "relax_steps": int(settings["melt_relax_steps"]),
    }


def normal_mode_task(settings: dict) -> dict:
    """The runner's normal_modes task from the `generation` settings."""
    return {
        "kind": "normal_modes",
        "temperatures": [float(t) for t in settings["normal_mode_temperatures"]],
        "n_samples": int(settings["n_normal_mode"]),
        "cutoff": settings["normal_mode_cutoff"],
    }


class StructureGeneratorWorkChain(WorkChain):
    """Diverse, sanity-checked seed structures from a composition or a structure, tagged with how each was
    made (attribute and extra `autopipe_generation`: method, label, parent, strain, temperature, details).

    Surrogate-free steps (in-process, seconds): SQS with off-stoichiometry and strains (alloys), random ionic
    cells (ionic), deep rattling or random covalent cells (covalent), rattled molecules (molecules). With a
    `surrogate.code` (the `autopipe-surrogate` runner), the surrogate steps run as `autopipe.surrogate`
    CalcJobs, the same runner Module B explores with, launched together: relaxation of the random cells
    (distinct relaxed polymorphs kept), melt-quench of covalent systems, normal-mode sampling of molecules
    (`generation` keys n_melt_quench and n_normal_mode set to 0 skip the last two). Their structures pass
    the same sanity check.
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
            help=f"Counts, strains, amplitudes, MD and sampling settings; defaults: {GENERATION_DEFAULTS}.",
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
        spec.output_namespace(
            "sampling_summary",
            valid_type=orm.Dict,
            dynamic=True,
            help="Per surrogate sampling job (melt_quench, normal_modes): counts by method, rejections.",
        )
        spec.outline(
            if_(cls.needs_classification)(cls.classify),
            cls.generate_surrogate_free,
            if_(cls.has_surrogate)(cls.run_surrogate_jobs, cls.collect_surrogate_jobs),
            cls.results,
        )
        spec.exit_code(
            400,
            "ERROR_SURROGATE_RELAXATION_FAILED",
            message="The surrogate relaxation of random cells failed.",
        )
        spec.exit_code(
            401,
            "ERROR_SURROGATE_SAMPLING_FAILED",
            message="The surrogate {job} job failed: {message}",
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

    def _settings(self) -> dict:
        generation = self.inputs.get("generation")
        return {**GENERATION_DEFAULTS, **(generation.get_dict() if generation else {})}

    def generate_surrogate_free(self):
        generation = self.inputs.get("generation") or orm.Dict({})
        system = self._system()
        kwargs = {"structure": self.inputs.structure} if "structure" in self.inputs else {}
        outputs = generate_surrogate_free_structures(system, generation, **kwargs)
        self.ctx.summary = outputs.pop("summary")
        self.ctx.structure_type = system["structure_type"]
        self.ctx.structures = outputs
        summary = self.ctx.summary.get_dict()
        self.report(
            f"{system['structure_type']}: kept {summary['n_kept']} of {summary['n_generated']} structures "
            f"(rejected {summary['rejections'] or 'none'})"
        )

    def _by_method(self, method: str) -> dict:
        return {
            label: node
            for label, node in self.ctx.structures.items()
            if node.base.attributes.get(GENERATION_ATTRIBUTE)["method"] == method
        }

    def has_surrogate(self):
        return "surrogate" in self.inputs

    def _surrogate_jobs(self) -> dict[str, tuple[list[dict], dict]]:
        """Context key -> (runner tasks, seed structures) for every surrogate job this system needs."""
        settings = self._settings()
        overrides = (
            self.inputs.surrogate.parameters.get_dict() if "parameters" in self.inputs.surrogate else {}
        )
        random_cells = self._by_method("random_search")
        jobs = {}
        if random_cells:
            jobs["relaxation"] = ([{**RELAX_TASK, **overrides.get("relax", {})}], random_cells)
        if self.ctx.structure_type == "covalent" and settings["n_melt_quench"]:
            parents = self._by_method("input") or random_cells
            task = melt_quench_task(settings, self.inputs.system.get_dict())
            jobs["melt_quench"] = ([task], parents)
        if self.ctx.structure_type == "molecule" and settings["n_normal_mode"]:
            jobs["normal_modes"] = ([normal_mode_task(settings)], self._by_method("input"))
        return {key: (tasks, seeds) for key, (tasks, seeds) in jobs.items() if seeds}

    def run_surrogate_jobs(self):
        """One `autopipe.surrogate` CalcJob per kind of surrogate work, all running at once."""
        overrides = (
            self.inputs.surrogate.parameters.get_dict() if "parameters" in self.inputs.surrogate else {}
        )
        common = {key: overrides[key] for key in ("surrogate", "torch_threads") if key in overrides}
        seed = self._settings()["seed"]
        futures = {}
        for key, (tasks, seeds) in self._surrogate_jobs().items():
            inputs = {
                "code": self.inputs.surrogate.code,
                "structures": seeds,
                "parameters": orm.Dict({"tasks": tasks, "seed": seed, **common}),
                "metadata": {"call_link_label": key},
            }
            if "model" in self.inputs.surrogate:
                inputs["model"] = self.inputs.surrogate.model
            futures[key] = self.submit(SurrogateCalculation, **inputs)
            self.report(f"submitted surrogate {key} of {len(seeds)} structures: {SURROGATE_JOBS[key]}")
        return ToContext(**futures)

    def collect_surrogate_jobs(self):
        if "relaxation" in self.ctx:
            exit_code = self._collect_relaxation(self.ctx.relaxation)
            if exit_code:
                return exit_code
        for key in ("melt_quench", "normal_modes"):
            if key not in self.ctx:
                continue
            calculation = self.ctx[key]
            if not calculation.is_finished_ok or "generated_structures" not in calculation.outputs:
                message = f"CalcJob {calculation.pk}: {calculation.exit_message or 'no structures'}"
                return self.exit_codes.ERROR_SURROGATE_SAMPLING_FAILED.format(job=key, message=message)
            outputs = sane_generated_structures(**dict(calculation.outputs.generated_structures.items()))
            summary = outputs.pop("sampling_summary")
            self.ctx.setdefault("sampling_summary", {})[key] = summary
            self.ctx.structures.update(outputs)
            counts = summary.get_dict()
            self.report(
                f"{key}: kept {counts['n_kept']} of {counts['n_generated']} structures "
                f"(rejected {counts['rejections'] or 'none'})"
            )
        return None

    def _collect_relaxation(self, calculation):
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
        for key, summary in self.ctx.get("sampling_summary", {}).items():
            self.out(f"sampling_summary.{key}", summary)
