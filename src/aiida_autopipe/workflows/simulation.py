"""``SimulationWorkChain``: on-the-fly ACE MD at the configured temperatures, uncertain regions cut out.

One generation of Module E: the threshold of this generation from the training set's gammas (REQ-E-01), one
``OtfMdCalculation`` per (starting structure, temperature step), all at once, and the halting frames'
uncertain regions embedded in periodic clusters (REQ-E-02) ready for labelling. A generation where nothing
halts returns no cluster: that is the active-learning loop's convergence signal (``summary['converged']``).
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_autopipe.calcfunctions.embedding import cluster_summary, embed_halting_frame
from aiida_autopipe.calcfunctions.threshold import generation_threshold, training_set_gammas
from aiida_autopipe.calculations.otf_md import OtfMdCalculation
from aiida_autopipe.core.threshold import parse_threshold_setting

#: Runner settings this work chain fills when `md_parameters` does not give them (friction 1/fs).
MD_DEFAULTS = {"gamma_every": 1, "friction": 0.01, "timing_steps": 10, "seed": 0}
EMBEDDING_DEFAULTS = {
    "bonding": "alloy",
    "buffer_width": None,
    "vacuum": None,
    "formal_charges": None,
    "relax_buffer": False,
    "relax": {"surrogate": {"requested": "chgnet", "device": "auto"}, "fmax": 0.05, "steps": 200},
}


def validate_simulation(value, _):
    """The config's `simulation` section: temperature_steps, timestep_fs and active_learning keys."""
    section = value.get_dict()
    if not section.get("temperature_steps"):
        return "`simulation.temperature_steps` must list at least one temperature (K)"
    if any(float(t) <= 0 for t in section["temperature_steps"]):
        return "`simulation.temperature_steps` must be positive (K)"
    if not float(section.get("timestep_fs", 0)) > 0:
        return "`simulation.timestep_fs` must be positive (fs)"
    learning = section.get("active_learning") or {}
    if not int(learning.get("md_steps_per_generation", 0)) > 0:
        return "`simulation.active_learning.md_steps_per_generation` must be a positive integer"
    if "uncertainty_threshold" not in learning:
        return "`simulation.active_learning.uncertainty_threshold` is required"
    try:
        parse_threshold_setting(learning["uncertainty_threshold"])
    except Exception as exc:  # InputError names the field and the fix
        return str(exc)
    return None


class SimulationWorkChain(ProtocolMixin, WorkChain):
    """On-the-fly MD per temperature step; embedded uncertain regions of the halting frames as outputs."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(
            OtfMdCalculation,
            namespace="md",
            exclude=("structure", "potential", "active_set", "reference", "parameters"),
        )
        spec.input("potential", valid_type=orm.SinglefileData, help="Module D's `potential_yaml`.")
        spec.input("active_set", valid_type=orm.SinglefileData, help="Module D's `active_set` (.asi).")
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="Module D's `reference` (LJ + ZBL); given, the MD runs on reference + ACE.",
        )
        spec.input_namespace(
            "structures", valid_type=orm.StructureData, dynamic=True, help="Starting frames, by label."
        )
        spec.input(
            "simulation",
            valid_type=orm.Dict,
            validator=validate_simulation,
            help="The config's `simulation` section (temperature_steps K, timestep_fs, active_learning).",
        )
        spec.input("r_cut", valid_type=orm.Float, help="ACE cutoff (Angstrom): core radius and buffer.")
        spec.input(
            "training_gammas",
            valid_type=orm.ArrayData,
            required=False,
            help="Per-atom gamma (array `gamma`) of the training set; for a dynamic threshold.",
        )
        spec.input(
            "training_set",
            valid_type=orm.SinglefileData,
            required=False,
            help="Labelled training frames (extxyz); their gamma is computed without `training_gammas`.",
        )
        spec.input("generation", valid_type=orm.Int, default=lambda: orm.Int(0), help="Generation index.")
        spec.input(
            "md_parameters",
            valid_type=orm.Dict,
            required=False,
            help="gamma_every, friction (1/fs), timing_steps, seed, gamma_floor, gamma_ceiling.",
        )
        spec.input(
            "embedding",
            valid_type=orm.Dict,
            required=False,
            help="bonding (alloy/covalent/ionic/molecule), buffer_width, vacuum (Angstrom), formal_charges, "
            "relax_buffer (surrogate relaxation in the MD job), relax {surrogate, fmax, steps}.",
        )
        spec.outline(
            cls.setup,
            if_(cls.needs_training_gammas)(cls.compute_training_gammas),
            cls.compute_threshold,
            cls.run_md,
            cls.inspect_md,
            cls.embed,
            cls.results,
        )
        spec.output("threshold", valid_type=orm.Dict, help="The threshold of this generation and its origin.")
        spec.output_namespace(
            "clusters",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Embedded clusters to label; attributes autopipe_force_weights, autopipe_tot_charge, ...",
        )
        spec.output_namespace(
            "halting_structures", valid_type=orm.StructureData, dynamic=True, help="Frames that halted."
        )
        spec.output("summary", valid_type=orm.Dict, help="Threshold, per run: steps, halted, max gamma.")
        spec.exit_code(
            400,
            "ERROR_NO_TRAINING_GAMMAS",
            message="A dynamic threshold needs training_gammas or training_set.",
        )
        spec.exit_code(401, "ERROR_ALL_MD_FAILED", message="Every OTF MD run failed: {messages}")

    @classmethod
    def get_protocol_filepath(cls):
        return pathlib.Path(__file__).parent / "protocols" / "simulation.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        code,
        potential,
        active_set,
        structures,
        simulation,
        r_cut,
        protocol=None,
        overrides=None,
        **extra,
    ):
        """Builder with the protocol's `md_parameters` and `embedding`.

        :param code: the `autopipe-otf-md` code (or its label).
        :param structures: mapping label -> StructureData (starting frames).
        :param simulation: the config's `simulation` section (dict or Dict).
        :param extra: other inputs as they are (reference, training_gammas, training_set, generation).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.md.code = orm.load_code(code) if isinstance(code, str) else code
        builder.potential = potential
        builder.active_set = active_set
        builder.structures = dict(structures)
        builder.simulation = simulation if isinstance(simulation, orm.Dict) else orm.Dict(simulation)
        builder.r_cut = orm.Float(r_cut)
        builder.md_parameters = orm.Dict(inputs["md_parameters"])
        builder.embedding = orm.Dict(inputs["embedding"])
        for port, value in extra.items():
            builder[port] = value
        return builder

    def setup(self):
        section = self.inputs.simulation.get_dict()
        self.ctx.learning = section["active_learning"]
        self.ctx.md = {
            **MD_DEFAULTS,
            **(self.inputs.md_parameters.get_dict() if "md_parameters" in self.inputs else {}),
        }
        embedding = self.inputs.embedding.get_dict() if "embedding" in self.inputs else {}
        self.ctx.embedding = {**EMBEDDING_DEFAULTS, **embedding}
        self.ctx.embedding["relax"] = {**EMBEDDING_DEFAULTS["relax"], **(embedding.get("relax") or {})}
        self.ctx.dynamic = (
            parse_threshold_setting(self.ctx.learning["uncertainty_threshold"]).mode == "dynamic"
        )
        self.ctx.gammas = self.inputs.get("training_gammas")

    def needs_training_gammas(self):
        return self.ctx.dynamic and self.ctx.gammas is None and "training_set" in self.inputs

    def compute_training_gammas(self):
        self.ctx.gammas = training_set_gammas(
            self.inputs.potential, self.inputs.active_set, self.inputs.training_set
        )

    def compute_threshold(self):
        if self.ctx.dynamic and self.ctx.gammas is None:
            return self.exit_codes.ERROR_NO_TRAINING_GAMMAS
        setting = {
            "uncertainty_threshold": self.ctx.learning["uncertainty_threshold"],
            **{key: self.ctx.md[key] for key in ("gamma_floor", "gamma_ceiling") if key in self.ctx.md},
        }
        extra = {"gammas": self.ctx.gammas} if self.ctx.dynamic else {}
        self.ctx.threshold = generation_threshold(orm.Dict(setting), self.inputs.generation, **extra)
        threshold = self.ctx.threshold["threshold"]
        self.report(f"generation {self.inputs.generation.value}: gamma threshold {threshold:.3f}")
        return None

    def _runner_parameters(self, temperature: float) -> dict:
        section = self.inputs.simulation.get_dict()
        parameters = {
            "temperature": float(temperature),
            "steps": int(self.ctx.learning["md_steps_per_generation"]),
            "timestep": float(section["timestep_fs"]),
            "threshold": float(self.ctx.threshold["threshold"]),
            **{key: self.ctx.md[key] for key in MD_DEFAULTS},
        }
        if self.ctx.embedding["relax_buffer"]:
            parameters["embedding"] = self._embedding_parameters(with_relax=True)
        return parameters

    def _embedding_parameters(self, with_relax: bool) -> dict:
        keys = ("bonding", "buffer_width", "vacuum", "formal_charges")
        parameters = {key: self.ctx.embedding[key] for key in keys}
        parameters["r_cut"] = self.inputs.r_cut.value
        if with_relax:
            parameters["relax"] = self.ctx.embedding["relax"]
        return parameters

    def run_md(self):
        self.ctx.runs = []
        futures = {}
        for label in sorted(self.inputs.structures):
            for index, temperature in enumerate(self.inputs.simulation["temperature_steps"]):
                key = f"md_{label}_T{index}"
                inputs = self.exposed_inputs(OtfMdCalculation, namespace="md")
                inputs.update(
                    structure=self.inputs.structures[label],
                    potential=self.inputs.potential,
                    active_set=self.inputs.active_set,
                    parameters=orm.Dict(self._runner_parameters(temperature)),
                )
                if "reference" in self.inputs:
                    inputs["reference"] = self.inputs.reference
                inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": key}
                futures[key] = self.submit(OtfMdCalculation, **inputs)
                self.ctx.runs.append({"key": key, "structure": label, "temperature": float(temperature)})
        self.report(f"submitted {len(futures)} OTF MD runs")
        return ToContext(**futures)

    def inspect_md(self):
        failures = []
        for run in self.ctx.runs:
            node = self.ctx[run["key"]]
            run["pk"] = node.pk
            if not node.is_finished_ok:
                run.update(status="failed", exit_status=node.exit_status, message=node.exit_message)
                failures.append(f"{run['key']}: {node.exit_message}")
                self.report(f"OTF MD {run['key']} (pk {node.pk}) failed: {node.exit_message}")
                continue
            results = node.outputs.output_parameters.get_dict()
            run.update(
                status=results["status"],
                halted=results["halted"],
                steps_done=results["steps_done"],
                max_gamma=results["max_gamma"],
                timing=results.get("timing"),
            )
        if failures and len(failures) == len(self.ctx.runs):
            return self.exit_codes.ERROR_ALL_MD_FAILED.format(messages="; ".join(failures))
        return None

    def embed(self):
        self.ctx.clusters = {}
        self.ctx.halting = {}
        embedding = orm.Dict(self._embedding_parameters(with_relax=False))
        for run in self.ctx.runs:
            if not run.get("halted"):
                continue
            node = self.ctx[run["key"]]
            self.ctx.halting[run["key"]] = node.outputs.halting_structure
            if self.ctx.embedding["relax_buffer"]:
                clusters = dict(node.outputs.clusters)
            else:
                try:
                    clusters = embed_halting_frame(
                        node.outputs.halting_structure,
                        node.outputs.halting_gamma,
                        orm.Float(self.ctx.threshold["threshold"]),
                        embedding,
                    )
                except Exception as exc:  # a pathological frame must not cost the other runs their clusters
                    run["embedding_error"] = f"{type(exc).__name__}: {exc}"
                    self.report(f"embedding the halting frame of {run['key']} failed: {exc}")
                    continue
            run["clusters"] = []
            for name, structure in sorted(clusters.items()):
                label = f"{run['key']}_{name}"
                self.ctx.clusters[label] = structure
                run["clusters"].append({"label": label, **cluster_summary(structure)})

    def results(self):
        converged = not self.ctx.clusters
        summary = {
            "generation": self.inputs.generation.value,
            "threshold": self.ctx.threshold.get_dict(),
            "runs": self.ctx.runs,
            "n_clusters": len(self.ctx.clusters),
            "converged": converged,
            "message": "no run halted: nothing uncertain to label" if converged else "",
        }
        if converged:
            self.report("no OTF MD run halted: zero clusters (convergence signal)")
        else:
            self.report(f"{len(self.ctx.clusters)} embedded clusters to label")
        self.out("threshold", self.ctx.threshold)
        self.out("clusters", self.ctx.clusters)
        self.out("halting_structures", self.ctx.halting)
        self.out("summary", orm.Dict(summary).store())
