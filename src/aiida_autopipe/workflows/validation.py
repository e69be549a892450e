"""ValidationWorkChain: validate the final potential once the active-learning loop has finished.

Thin on purpose: it picks the distinct phases among the seed structures, sets the RDF temperature from the
config's temperature steps, and runs one `ValidationCalculation`; the physics lives in `core.validation`.
`reference_crystal` picks the crystal for EOS and C_ij (the system's own, not the model's lowest phase).
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_autopipe.calcfunctions.structures import GENERATION_ATTRIBUTE
from aiida_autopipe.calculations.validation import ValidationCalculation

#: Seed-generation methods that perturb another seed (same phase): left out of the energy ranking.
PERTURBATION_METHODS = ("rattle", "normal_modes")
#: Module A's methods for the system's own crystal, preferred first: the user's structure or the composition's
#: prototype ('input'), else an alloy's SQS at the nominal composition ('sqs').
CRYSTAL_METHODS = ("input", "sqs")


def distinct_phases(structures: dict) -> dict:
    """The seeds that are phases of their own: not rattled, strained or normal-mode copies of another seed.

    Untagged structures (given by hand) count as phases.
    """
    phases = {}
    for key, node in structures.items():
        method = node.base.attributes.get(GENERATION_ATTRIBUTE, {}).get("method", "input")
        if method in PERTURBATION_METHODS or method.endswith("_strained"):
            continue
        phases[key] = node
    return phases


def reference_crystal(
    seed_structures: dict, structure: orm.StructureData | None = None
) -> tuple[orm.StructureData | None, str]:
    """The crystal for EOS and C_ij, and why: the user's structure, else Module A's periodic seed of the
    system's own crystal (see CRYSTAL_METHODS). None when there is neither (molecules, random cells only): the
    runner then falls back to the model's lowest periodic phase, which for a poor model can be a melt-quenched
    cell rather than the crystal a materials scientist means."""
    if structure is not None:
        return structure, f"the input structure ({structure.get_formula()}, system.structure)"
    for method in CRYSTAL_METHODS:
        for key in sorted(seed_structures):
            node = seed_structures[key]
            if node.base.attributes.get(GENERATION_ATTRIBUTE, {}).get("method") == method and all(node.pbc):
                what = "SQS seed" if method == "sqs" else "crystal seed"
                return node, f"Module A's {what} '{key}' ({node.get_formula()}): no structure was given"
    return None, "no input structure and no periodic crystal seed: the model's lowest periodic phase"


def validate_temperatures(temperatures: orm.List, _) -> str | None:
    values = temperatures.get_list()
    if not values or any(not isinstance(t, int | float) or t <= 0 for t in values):
        return f"temperature_steps must be positive numbers (K), got {values}"
    return None


class ValidationWorkChain(ProtocolMixin, WorkChain):
    """EOS, elastic constants, hot RDF, phase ranking and a parity table of the final potential."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(ValidationCalculation, namespace="validation", exclude=("phases", "parameters"))
        spec.input_namespace(
            "seed_structures",
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help="Module A's seed structures; the distinct phases among them are ranked by energy.",
        )
        spec.input(
            "temperature_steps",
            valid_type=orm.List,
            required=False,
            serializer=orm.to_aiida_type,
            validator=validate_temperatures,
            help="The config's temperature steps (K): the RDF MD runs at the highest.",
        )
        spec.input(
            "structure_origin",
            valid_type=orm.Str,
            required=False,
            serializer=orm.to_aiida_type,
            help="Which crystal `validation.structure` is and why (see `reference_crystal`): in the report.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Dict({}),
            help="The runner's sections (relax, eos, elastic, rdf, phase_relax); the protocol fills them.",
        )
        spec.outline(cls.run_validation, cls.results)
        spec.expose_outputs(ValidationCalculation, exclude=("remote_folder", "retrieved"))
        spec.exit_code(
            401, "ERROR_VALIDATION_FAILED", message="The validation job failed with no report: {message}"
        )
        spec.exit_code(
            402,
            "ERROR_SECTIONS_FAILED",
            message="Some validation sections failed; the others are in the report: {message}",
        )

    @classmethod
    def get_protocol_filepath(cls):
        return pathlib.Path(__file__).parent / "protocols" / "validation.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        training_outputs,
        dataset=None,
        seed_structures=None,
        temperature_steps=None,
        protocol=None,
        overrides=None,
        structure=None,
        structure_origin=None,
    ):
        """Builder from a finished training: potential, its reference (or plain-ACE constants), the protocol.

        :param code: the `autopipe-validate` code (or its label).
        :param training_outputs: outputs of `TrainingWorkChain` (or `PacemakerCalculation`): `potential_yaml`,
            `reference` if delta-learned, else `output_parameters['atomic_energies']` for plain ACE.
        :param dataset: the labelled dataset (SinglefileData, extxyz) the potential was fitted to.
        :param seed_structures: mapping label -> StructureData (Module A's seeds).
        :param temperature_steps: the config's temperature steps, K.
        :param structure: reference crystal for EOS and C_ij (default: the model's lowest periodic phase).
        :param structure_origin: which crystal `structure` is and why, for the report.
        """
        builder = cls.get_builder()
        builder.parameters = orm.Dict(cls.get_protocol_inputs(protocol, overrides))
        builder.validation.code = orm.load_code(code) if isinstance(code, str) else code
        builder.validation.potential = training_outputs["potential_yaml"]
        if "reference" in training_outputs:
            builder.validation.reference = training_outputs["reference"]
        else:
            energies = training_outputs["output_parameters"].get_dict().get("atomic_energies", {})
            builder.validation.atomic_energies = orm.Dict(energies)
        if dataset is not None:
            builder.validation.dataset = dataset
        if structure is not None:
            builder.validation.structure = structure
        if structure_origin is not None:
            builder.structure_origin = orm.Str(structure_origin)
        if seed_structures:
            builder.seed_structures = dict(seed_structures)
        if temperature_steps is not None:
            builder.temperature_steps = orm.List(list(temperature_steps))
        return builder

    def run_validation(self):
        inputs = self.exposed_inputs(ValidationCalculation, namespace="validation")
        parameters = self.inputs.parameters.get_dict()
        if "temperature_steps" in self.inputs:
            rdf = parameters.setdefault("rdf", {})
            rdf["temperatures"] = [max(self.inputs.temperature_steps.get_list())]
        if "structure_origin" in self.inputs:
            parameters["structure_origin"] = self.inputs.structure_origin.value
        inputs["parameters"] = orm.Dict(parameters)
        phases = distinct_phases(dict(self.inputs.get("seed_structures", {})))
        if phases:
            inputs["phases"] = phases
        self.report(f"validating on {len(phases)} phases: {', '.join(sorted(phases)) or 'none'}")
        return ToContext(calculation=self.submit(ValidationCalculation, **inputs))

    def results(self):
        node = self.ctx.calculation
        self.out_many(self.exposed_outputs(node, ValidationCalculation))
        if "report" not in node.outputs:
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=node.exit_message or "")
        report = node.outputs.report.get_dict()
        eos = report.get("eos", {})
        if "bulk_modulus_gpa" in eos:
            self.report(
                f"EOS: V0 {eos['volume_per_atom']:.3f} A^3/atom, B {eos['bulk_modulus_gpa']:.1f} GPa; "
                f"crystal: {report.get('reference_structure')}"
            )
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SECTIONS_FAILED.format(message=node.exit_message or "")
        return None
