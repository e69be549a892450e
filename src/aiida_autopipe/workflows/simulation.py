"""``SimulationWorkChain``: on-the-fly ACE MD at the configured temperatures, uncertain regions cut out.

One generation of Module E: the threshold of this generation from held-out frames' gammas (REQ-E-01), one
``OtfMdCalculation`` per (starting structure, temperature step), all at once, and the halting frames'
uncertain regions embedded in periodic clusters (REQ-E-02) ready for labelling. A generation where nothing
halts returns no cluster: that is the active-learning loop's convergence signal (``summary['converged']``).
With ``simulation.active_learning.strategy: on_the_fly_md_kmc`` a ``KmcCalculation`` per starting structure
runs beside the MD: saddle searches with the same potential, gamma checked at every saddle, and the uncertain
saddles embedded and sent to labelling like the halting frames.
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_autopipe.calcfunctions.embedding import cluster_summary, embed_halting_frame
from aiida_autopipe.calcfunctions.threshold import generation_threshold
from aiida_autopipe.calculations.kmc import KmcCalculation
from aiida_autopipe.calculations.otf_md import OtfMdCalculation
from aiida_autopipe.core.threshold import parse_threshold_setting
from aiida_autopipe.workflows.lammps_md import DEFAULTS as LAMMPS_MD_KEYS
from aiida_autopipe.workflows.lammps_md import LammpsOtfMdWorkChain

#: CalcJob options that say where and how a job runs, shared by the ASE and LAMMPS MD jobs.
SCHEDULER_OPTIONS = (
    "resources",
    "max_wallclock_seconds",
    "queue_name",
    "account",
    "custom_scheduler_commands",
    "environment_variables",
    "prepend_text",
)
#: Runner settings this work chain fills when `md_parameters` does not give them (friction 1/fs).
MD_DEFAULTS = {"gamma_every": 1, "friction": 0.01, "timing_steps": 10, "seed": 0}
EMBEDDING_DEFAULTS = {
    "bonding": "alloy",
    "buffer_width": None,
    "vacuum": None,
    "formal_charges": None,
    "prefer_whole_frame": True,
    "relax_buffer": False,
    "relax": {"surrogate": {"requested": "chgnet", "device": "auto"}, "fmax": 0.05, "steps": 200},
}


#: Results of each MD and kMC job copied into the generation's summary.
MD_SUMMARY_KEYS = ("status", "halted", "steps_done", "max_gamma", "timing")
KMC_SUMMARY_KEYS = (
    "status",
    "n_events",
    "n_uncertain_saddles",
    "n_hessians",
    "n_hessians_all_tier2",
    "steps",
    "simulated_time",
    "diffusion_coefficient",
    "message",
)
#: Strategy of `simulation.active_learning` that adds kMC saddle searches to the MD.
KMC_STRATEGY = "on_the_fly_md_kmc"
#: Runner settings of the kMC saddle search when `kmc_parameters` does not give them (see runners/kmc.py);
#: temperature None: the lowest temperature step, where rare events are out of MD's reach.
KMC_DEFAULTS = {"steps": 100_000, "n_records": 200, "vacancy_atom": 0, "temperature": None, "seed": 0}


def validate_kmc_code(inputs, _):
    """The kMC strategy needs the `autopipe-kmc` code."""
    if "simulation" not in inputs:
        return None  # the port itself reports it
    strategy = inputs["simulation"].get_dict().get("active_learning", {}).get("strategy")
    if strategy == KMC_STRATEGY and "code" not in inputs.get("kmc", {}):
        return f"`strategy: {KMC_STRATEGY}` needs `kmc.code` (the autopipe-kmc code)"
    return None


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
        spec.expose_inputs(
            KmcCalculation,
            namespace="kmc",
            exclude=("structure", "potential", "active_set", "reference", "parameters", "event_catalogue"),
            namespace_options={"required": False, "populate_defaults": False},
        )
        spec.input(
            "lammps_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="LAMMPS with ML-PACE (`mlip-pipe setup lammps`): runs the MD with pair_style "
            "pace/extrapolation instead of the ASE runner; the buffer is then not relaxed in the MD job.",
        )
        spec.input(
            "kmc_parameters",
            valid_type=orm.Dict,
            required=False,
            help="kMC saddle search (strategy on_the_fly_md_kmc): steps, n_records, vacancy_atom, "
            "hop_cutoff, tier2_share, fmax, seed, temperature (default: the lowest temperature step).",
        )
        spec.inputs.validator = validate_kmc_code
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
            help="Held-out per-atom gamma of the training frames (Module D's `held_out_gammas`: arrays "
            "`gamma`, `frame_index`); needed for a dynamic threshold.",
        )
        spec.input("generation", valid_type=orm.Int, default=lambda: orm.Int(0), help="Generation index.")
        spec.input(
            "md_parameters",
            valid_type=orm.Dict,
            required=False,
            help="gamma_every, friction (1/fs), timing_steps, seed; gamma_floor, gamma_ceiling and "
            "gamma_statistic ('frame_max' or 'atom') of a dynamic threshold.",
        )
        spec.input(
            "embedding",
            valid_type=orm.Dict,
            required=False,
            help="bonding (alloy/covalent/ionic/molecule), buffer_width, vacuum (Angstrom), formal_charges, "
            "prefer_whole_frame (label the whole frame when cut-outs would not be smaller), relax_buffer "
            "(surrogate relaxation in the MD job), relax {surrogate, fmax, steps}.",
        )
        spec.outline(
            cls.setup,
            cls.compute_threshold,
            cls.run_md,
            cls.inspect_md,
            if_(cls.runs_kmc)(cls.inspect_kmc),
            cls.embed,
            if_(cls.runs_kmc)(cls.embed_saddles),
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
        spec.output_namespace(
            "uncertain_saddles",
            valid_type=orm.StructureData,
            dynamic=True,
            help="kMC saddles whose gamma passed the threshold (their clusters are in `clusters`).",
        )
        spec.output("summary", valid_type=orm.Dict, help="Threshold, per run: steps, halted, max gamma.")
        spec.exit_code(
            400,
            "ERROR_NO_TRAINING_GAMMAS",
            message="A dynamic threshold needs training_gammas (the fit's held_out_gammas).",
        )
        spec.exit_code(401, "ERROR_ALL_MD_FAILED", message="Every OTF MD run failed: {messages}")
        spec.exit_code(402, "ERROR_ALL_KMC_FAILED", message="Every kMC saddle search failed: {messages}")

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
        kmc_code=None,
        **extra,
    ):
        """Builder with the protocol's `md_parameters` and `embedding`.

        :param code: the `autopipe-otf-md` code (or its label).
        :param structures: mapping label -> StructureData (starting frames).
        :param simulation: the config's `simulation` section (dict or Dict).
        :param kmc_code: the `autopipe-kmc` code (or its label), for `strategy: on_the_fly_md_kmc`.
        :param extra: other inputs as they are (reference, training_gammas, generation).
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
        builder.kmc_parameters = orm.Dict(inputs["kmc_parameters"])
        if kmc_code is not None:
            builder.kmc.code = orm.load_code(kmc_code) if isinstance(kmc_code, str) else kmc_code
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
        if "lammps_code" in self.inputs and self.ctx.embedding["relax_buffer"]:
            # The surrogate relaxation of the buffer lives in the ASE runner's job; LAMMPS has no surrogate.
            self.ctx.embedding["relax_buffer"] = False
            self.report("MD runs in LAMMPS: halting frames are cut out without relaxing the buffer")
        self.ctx.dynamic = (
            parse_threshold_setting(self.ctx.learning["uncertainty_threshold"]).mode == "dynamic"
        )
        self.ctx.gammas = self.inputs.get("training_gammas")

    def compute_threshold(self):
        if self.ctx.dynamic and self.ctx.gammas is None:
            return self.exit_codes.ERROR_NO_TRAINING_GAMMAS
        setting = {
            "uncertainty_threshold": self.ctx.learning["uncertainty_threshold"],
            **{
                key: self.ctx.md[key]
                for key in ("gamma_floor", "gamma_ceiling", "gamma_statistic")
                if key in self.ctx.md
            },
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
        keys = ("bonding", "buffer_width", "vacuum", "formal_charges", "prefer_whole_frame")
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
                futures[key] = self._submit_md(key, self.inputs.structures[label], temperature)
                self.ctx.runs.append({"key": key, "structure": label, "temperature": float(temperature)})
        engine = "LAMMPS" if "lammps_code" in self.inputs else "ASE"
        self.report(f"submitted {len(futures)} OTF MD runs ({engine})")
        if self.runs_kmc():
            futures.update(self._submit_kmc())
        return ToContext(**futures)

    def _submit_md(self, key: str, structure: orm.StructureData, temperature: float):
        """One on-the-fly MD run: the ASE runner's CalcJob, or LAMMPS through aiida-lammps."""
        parameters = self._runner_parameters(temperature)
        inputs = {
            "structure": structure,
            "potential": self.inputs.potential,
            "active_set": self.inputs.active_set,
        }
        if "reference" in self.inputs:
            inputs["reference"] = self.inputs.reference
        md_inputs = self.exposed_inputs(OtfMdCalculation, namespace="md")
        if "lammps_code" in self.inputs:
            # The MD jobs' scheduler resources, not the ASE runner's file names or parser.
            options = md_inputs.get("metadata", {}).get("options", {})
            options = {key: value for key, value in options.items() if key in SCHEDULER_OPTIONS}
            inputs.update(
                lammps={"code": self.inputs.lammps_code, "metadata": {"options": options}},
                parameters=orm.Dict({k: v for k, v in parameters.items() if k in LAMMPS_MD_KEYS}),
                metadata={"call_link_label": key},
            )
            return self.submit(LammpsOtfMdWorkChain, **inputs)
        inputs.update(md_inputs, parameters=orm.Dict(parameters))
        inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": key}
        return self.submit(OtfMdCalculation, **inputs)

    def runs_kmc(self):
        return self.inputs.simulation["active_learning"].get("strategy") == KMC_STRATEGY

    def _submit_kmc(self) -> dict:
        """One saddle search + kMC walk per starting structure, at the same gamma threshold as the MD."""
        given = self.inputs.kmc_parameters.get_dict() if "kmc_parameters" in self.inputs else {}
        parameters = {**KMC_DEFAULTS, **given}
        if parameters["temperature"] is None:
            parameters["temperature"] = min(float(t) for t in self.inputs.simulation["temperature_steps"])
        parameters["threshold"] = float(self.ctx.threshold["threshold"])
        self.ctx.kmc_runs, futures = [], {}
        for label in sorted(self.inputs.structures):
            key = f"kmc_{label}"
            inputs = self.exposed_inputs(KmcCalculation, namespace="kmc")
            inputs.update(
                structure=self.inputs.structures[label],
                potential=self.inputs.potential,
                active_set=self.inputs.active_set,
                parameters=orm.Dict(parameters),
            )
            if "reference" in self.inputs:
                inputs["reference"] = self.inputs.reference
            inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": key}
            futures[key] = self.submit(KmcCalculation, **inputs)
            self.ctx.kmc_runs.append(
                {"key": key, "structure": label, "temperature": parameters["temperature"]}
            )
        self.report(f"submitted {len(futures)} kMC saddle searches at {parameters['temperature']} K")
        return futures

    def inspect_kmc(self):
        failures = self._record_runs(self.ctx.kmc_runs, "kMC", KMC_SUMMARY_KEYS)
        if failures and len(failures) == len(self.ctx.kmc_runs):
            return self.exit_codes.ERROR_ALL_KMC_FAILED.format(messages="; ".join(failures))
        return None

    def embed_saddles(self):
        """Uncertain saddles are cut out like halting frames: a barrier the potential extrapolates at is
        labelled, not trusted."""
        self.ctx.saddles = {}
        embedding = orm.Dict(self._embedding_parameters(with_relax=False))
        threshold = orm.Float(self.ctx.threshold["threshold"])
        for run in self.ctx.kmc_runs:
            node = self.ctx[run["key"]]
            if not node.is_finished_ok or "uncertain_saddles" not in node.outputs:
                continue
            run["clusters"] = []
            for name, saddle in sorted(node.outputs.uncertain_saddles.items()):
                self.ctx.saddles[f"{run['key']}_{name}"] = saddle
                try:
                    clusters = embed_halting_frame(
                        saddle, node.outputs.uncertain_gammas[name], threshold, embedding
                    )
                except Exception as exc:  # one pathological saddle must not cost the others their clusters
                    self.report(f"embedding saddle {name} of {run['key']} failed: {exc}")
                    continue
                for cluster_name, structure in sorted(clusters.items()):
                    label = f"{run['key']}_{name}_{cluster_name}"
                    self.ctx.clusters[label] = structure
                    run["clusters"].append({"label": label, **cluster_summary(structure)})

    def _record_runs(self, runs: list[dict], kind: str, keys: tuple[str, ...]) -> list[str]:
        """Copy `keys` of each finished job's results into its summary row; the failed jobs' messages."""
        failures = []
        for run in runs:
            node = self.ctx[run["key"]]
            run["pk"] = node.pk
            if not node.is_finished_ok:
                run.update(status="failed", exit_status=node.exit_status, message=node.exit_message)
                failures.append(f"{run['key']}: {node.exit_message}")
                self.report(f"{kind} {run['key']} (pk {node.pk}) failed: {node.exit_message}")
                continue
            results = node.outputs.output_parameters.get_dict()
            run.update({key: results.get(key) for key in keys})
        return failures

    def inspect_md(self):
        failures = self._record_runs(self.ctx.runs, "OTF MD", MD_SUMMARY_KEYS)
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
            "kmc_runs": self.ctx.get("kmc_runs", []),
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
        self.out("uncertain_saddles", self.ctx.get("saddles", {}))
        self.out("summary", orm.Dict(summary).store())
