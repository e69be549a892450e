"""ActiveLearningWorkChain: the whole pipeline, one module per outline step.

expand config -> A structure generator -> B explorer + DIRECT -> C labeling -> D training
-> loop { E simulation -> C labeling -> D training } until converged -> validation -> results.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.common.exceptions import NotExistent
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_autopipe.calcfunctions.config import expand_user_config
from aiida_autopipe.calcfunctions.dataset import describe, extend_dataset
from aiida_autopipe.calcfunctions.metrics import record_metrics
from aiida_autopipe.calcfunctions.structures import GENERATION_ATTRIBUTE
from aiida_autopipe.core.config.resources import scheduler_options, surrogate_device
from aiida_autopipe.engines.codes import LOCALHOST
from aiida_autopipe.reporting.registry import prior_dataset, register_dataset, structures_to_label
from aiida_autopipe.workflows.explorer import ExplorerWorkChain
from aiida_autopipe.workflows.labeling import LabelingWorkChain
from aiida_autopipe.workflows.simulation import KMC_STRATEGY, SimulationWorkChain
from aiida_autopipe.workflows.structure_generator import StructureGeneratorWorkChain
from aiida_autopipe.workflows.training import TrainingWorkChain
from aiida_autopipe.workflows.validation import ValidationWorkChain, reference_crystal

#: Code input -> label of the Code `mlip-pipe setup` registers on localhost.
DEFAULT_CODES = {
    "pw": "pw",
    "surrogate": "autopipe-surrogate",
    "pacemaker": "pacemaker",
    "yaml2yace": "pace_yaml2yace",
    "activeset": "pace_activeset",
    "timing": "pace_timing",
    "otf_md": "autopipe-otf-md",
    "kmc": "autopipe-kmc",
    "validate": "autopipe-validate",
}
#: Code roles needed only by some configs: LAMMPS when `simulation.md_engine` is 'lammps'.
ENGINE_CODES = {"lammps": "lammps"}


def cheaper_to_label_whole_frames(clusters: dict, halting: dict) -> bool:
    """True when the cut-out clusters hold more atoms than the halting frames they were cut from."""
    return sum(len(node.sites) for node in clusters.values()) >= sum(
        len(node.sites) for node in halting.values()
    )


#: Rank of a generation method as a seed, nearest to the simulated solid first: the crystal as given or the
#: alloy's SQS at the nominal composition (0); its variants at that composition: strains, rattles, random
#: search, normal modes (1, the default); off-stoichiometric cells (2); quenched glasses (3); liquid
#: snapshots (4), the farthest from a solid.
SEED_RANK = {
    "input": 0,
    "sqs": 0,
    "sqs_off_stoichiometry": 2,
    "sqs_off_stoichiometry_strained": 2,
    "melt_quench": 3,
    "melt": 4,
}


def strain_order(voigt) -> tuple:
    """Sort key of a strained seed: volume changes before shears, the smallest first, compression before
    expansion, so that consecutive seeds are a +/- pair around the unstrained volume."""
    volume_change = (1.0 + voigt[0]) * (1.0 + voigt[1]) * (1.0 + voigt[2]) - 1.0
    shear = max(abs(component) for component in voigt[3:])
    return (shear > 0, round(abs(volume_change) + shear, 6), volume_change > 0)


def select_seeds(structures: dict, count: int, liquid: bool) -> dict:
    """At most `count` seeds, taken in turn from each generation method so every kind of seed is explored,
    the methods closest to the simulated solid first; liquid snapshots only when `liquid`.

    Exploration runs at the seeds' volumes (NVT unless pressures are given), so strained seeds come two per
    turn, a compression and an expansion of the same size: a single strained cell shows the fit one side of
    the equilibrium volume only. Off-stoichiometric cells come after them, so that a small budget does not
    change composition and volume together.
    """
    generation = {key: node.base.attributes.get(GENERATION_ATTRIBUTE, {}) for key, node in structures.items()}
    by_method: dict[str, list[str]] = {}
    for key in sorted(structures):
        method = generation[key].get("method", "other")
        if liquid or method != "melt":
            by_method.setdefault(method, []).append(key)
    queues = []
    for method in sorted(by_method, key=lambda method: SEED_RANK.get(method, 1)):
        keys = by_method[method]
        strains = {key: generation[key].get("strain") for key in keys}
        if all(strains.values()):
            queues.append((sorted(keys, key=lambda key: strain_order(strains[key])), 2))
        else:
            queues.append((keys, 1))
    chosen = []
    while len(chosen) < count and any(keys for keys, _ in queues):
        for keys, per_turn in queues:
            taken = keys[: min(per_turn, count - len(chosen))]
            chosen += taken
            del keys[: len(taken)]
    return {key: structures[key] for key in chosen}


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
        spec.input_namespace("codes", required=False, populate_defaults=False, help="Codes to run, by role.")
        for role, label in {**DEFAULT_CODES, **ENGINE_CODES}.items():
            spec.input(
                f"codes.{role}",
                valid_type=orm.AbstractCode,
                required=False,
                help=f"Default: the `{label}@<resources.computer>` Code (`{label}@{LOCALHOST}` unless the "
                "config names another Computer) registered by `mlip-pipe setup`.",
            )
        spec.input(
            "protocol",
            valid_type=orm.Str,
            default=lambda: orm.Str("balanced"),
            serializer=orm.to_aiida_type,
            help="Protocol of the labeling and training modules: fast, balanced or stringent.",
        )
        spec.outline(
            cls.expand_config,
            cls.generate_structures,  # Module A
            cls.inspect_structures,
            cls.explore,  # Module B
            cls.inspect_exploration,
            if_(cls.found_uncertain_structures)(
                cls.label,  # Module C
                cls.inspect_labels,
            ),
            cls.train,  # Module D
            cls.inspect_training,
            while_(cls.should_continue)(
                cls.simulate,  # Module E
                cls.inspect_simulation,
                if_(cls.found_uncertain_structures)(
                    cls.label,
                    cls.inspect_labels,
                    cls.train,
                    cls.inspect_training,
                ),
                cls.summarise_generation,
            ),
            cls.validate,
            cls.inspect_validation,
            cls.results,
        )
        spec.output(
            "full_config", valid_type=orm.Dict, help="Every value the pipeline used, with its reason."
        )
        spec.output("dataset", valid_type=orm.SinglefileData, help="All labelled frames (extxyz).")
        spec.output("potential_yaml", valid_type=orm.SinglefileData, help="Final ACE potential (.yaml).")
        spec.output("potential_yace", valid_type=orm.SinglefileData, help="Final ACE potential (.yace).")
        spec.output("active_set", valid_type=orm.SinglefileData, required=False, help="Active set (.asi).")
        spec.output(
            "lammps_snippet", valid_type=orm.SinglefileData, required=False, help="LAMMPS pair style lines."
        )
        spec.output("reference", valid_type=orm.Dict, required=False, help="LJ + ZBL baseline parameters.")
        spec.output(
            "metrics", valid_type=orm.Dict, help="Per-generation labels, errors and uncertain events."
        )
        spec.output(
            "validation_report",
            valid_type=orm.Dict,
            required=False,
            help="EOS, elastic constants, RDF, phase ranking and parity against the DFT labels.",
        )
        spec.output("rdf", valid_type=orm.ArrayData, required=False, help="g(r) at the highest temperature.")
        spec.output("parity", valid_type=orm.ArrayData, required=False, help="Model against DFT, per frame.")
        spec.exit_code(
            310, "ERROR_CODE_NOT_FOUND", message="The `{label}` Code is missing: run `mlip-pipe setup` first."
        )
        spec.exit_code(401, "ERROR_STRUCTURE_GENERATION", message="Module A failed: {message}")
        spec.exit_code(402, "ERROR_EXPLORATION", message="Module B failed: {message}")
        spec.exit_code(403, "ERROR_LABELING", message="Module C labelled no structure: {message}")
        spec.exit_code(404, "ERROR_TRAINING", message="Module D failed: {message}")
        spec.exit_code(405, "ERROR_SIMULATION", message="Module E failed: {message}")
        spec.exit_code(406, "ERROR_VALIDATION", message="Validation produced no report: {message}")

    def expand_config(self):
        """Fill every key of the config from the user's input and the machine facts, as a calcfunction."""
        structure = self.inputs.get("structure")
        extra = {"structure": structure} if structure is not None else {}
        self.ctx.config = expand_user_config(
            self.inputs.user_config, self.inputs.environment, protocol=self.inputs.protocol, **extra
        )
        self.out("full_config", self.ctx.config)
        self.ctx.codes = {}
        computer = self.ctx.config["resources"]["computer"]
        roles = dict(DEFAULT_CODES)
        if self.ctx.config["simulation"]["md_engine"] == "lammps":
            roles.update(ENGINE_CODES)
        for role, label in roles.items():
            code = self.inputs.get("codes", {}).get(role)
            if code is None:
                try:
                    code = orm.load_code(f"{label}@{computer}")
                except NotExistent:
                    return self.exit_codes.ERROR_CODE_NOT_FOUND.format(label=f"{label}@{computer}")
            self.ctx.codes[role] = code
        self.ctx.generation = 0
        self.ctx.quiet_generations = 0
        self.ctx.metrics = []
        self.ctx.dataset = None
        self.ctx.training = None
        system = self.ctx.config["system"]
        self.report(
            f"config expanded: {'-'.join(system['elements'])} classified as {system['structure_type']}"
        )
        return None

    def _surrogate_parameters(self) -> dict:
        surrogate = self.ctx.config["simulation"]["active_learning"]["surrogate_model"]
        resources = self.ctx.config["resources"]
        return {
            "surrogate": {"requested": surrogate, "device": surrogate_device(resources)},
            "torch_threads": resources["surrogate"]["omp_threads"],
        }

    def generate_structures(self):
        """Module A: seed structures from the composition or structure, without DFT."""
        system = self.ctx.config["system"]
        inputs = AttributeDict(
            {
                "system": orm.Dict({key: value for key, value in system.items() if key != "generation"}),
                "generation": orm.Dict(system["generation"]),
                "surrogate": {
                    "code": self.ctx.codes["surrogate"],
                    "parameters": orm.Dict(self._surrogate_parameters()),
                },
                "metadata": {"call_link_label": "structure_generator"},
            }
        )
        if "structure" in self.inputs:
            inputs.structure = self.inputs.structure
        return ToContext(generator=self.submit(StructureGeneratorWorkChain, **inputs))

    def inspect_structures(self):
        node = self.ctx.generator
        if not node.is_finished_ok or not node.outputs.structures:
            return self.exit_codes.ERROR_STRUCTURE_GENERATION.format(message=self._failure(node))
        self.report(f"Module A: {len(node.outputs.structures)} seed structures")
        return None

    def explore(self):
        """Module B: surrogate MD from the seeds at every temperature and pressure, then DIRECT selection."""
        simulation = self.ctx.config["simulation"]
        exploration = self.ctx.config["exploration"]
        md = {
            "kind": "md",
            "ensemble": "nvt",
            "temperatures": simulation["temperature_steps"],
            "steps": exploration["surrogate_md_steps"],
            "timestep": simulation["timestep_fs"],
            "save_every": max(1, exploration["surrogate_md_steps"] // 20),
        }
        tasks = [md]
        if any(pressure != 0 for pressure in simulation["pressure"]):
            tasks.append({**md, "ensemble": "npt", "pressures": simulation["pressure"]})
        r_cut = self.ctx.config["mlip_training"]["r_cut"]
        inputs = {
            "surrogate": {
                "code": self.ctx.codes["surrogate"],
                "structures": select_seeds(
                    dict(self.ctx.generator.outputs.structures),
                    exploration["max_seed_structures"],
                    exploration["liquid_seeds"],
                ),
                "parameters": orm.Dict({**self._surrogate_parameters(), "tasks": tasks}),
                "metadata": {"options": scheduler_options(self.ctx.config["resources"], "surrogate")},
            },
            "selection": orm.Dict(
                {
                    "budget": exploration["initial_label_budget"],
                    "descriptor": {"kind": exploration["descriptor"], "r_cut": r_cut},
                }
            ),
            "metadata": {"call_link_label": "explorer"},
        }
        return ToContext(explorer=self.submit(ExplorerWorkChain, **inputs))

    def inspect_exploration(self):
        node = self.ctx.explorer
        if not node.is_finished_ok or not node.outputs.selected_structures:
            return self.exit_codes.ERROR_EXPLORATION.format(message=self._failure(node))
        self.ctx.to_label = dict(node.outputs.selected_structures)
        self.report(f"Module B: DIRECT picked {len(self.ctx.to_label)} frames for labelling")
        if self.ctx.config["exploration"]["reuse_datasets"]:
            self._start_from_registered_datasets()
        return None

    def _start_from_registered_datasets(self):
        """Start from labels of these elements (or a subset) already in the profile, made with the same DFT
        settings; only the compositions they lack are labelled."""
        prior, notes = prior_dataset(self.ctx.config["system"]["elements"], self.ctx.config["dft_compute"])
        for note in notes:
            self.report(note)
        if prior is not None:
            self.ctx.dataset = prior
            self.ctx.to_label = structures_to_label(self.ctx.to_label, prior)
            self.report(f"{len(self.ctx.to_label)} picked frames have compositions no reused frame has")

    def label(self):
        """Module C: pw.x single points for the structures waiting for labels."""
        inputs = {
            "structures": self.ctx.to_label,
            "dft_compute": orm.Dict(
                {
                    **self.ctx.config["dft_compute"],
                    "scheduler_options": scheduler_options(self.ctx.config["resources"], "pw"),
                }
            ),
            "pw_code": self.ctx.codes["pw"],
            "metadata": {"call_link_label": f"labeling_{self.ctx.generation}"},
        }
        return ToContext(labeling=self.submit(LabelingWorkChain, **inputs))

    def inspect_labels(self):
        node = self.ctx.labeling
        labels = dict(node.outputs.labels) if "labels" in node.outputs else {}
        if not labels:
            return self.exit_codes.ERROR_LABELING.format(message=self._failure(node))
        sources = {f"{key}_source": self.ctx.to_label[key] for key in labels}
        previous = {"previous": self.ctx.dataset} if self.ctx.dataset is not None else {}
        self.ctx.dataset = extend_dataset(**previous, **labels, **sources)
        describe(self.ctx.dataset)
        failures = node.outputs.number_of_failures.value if "number_of_failures" in node.outputs else 0
        self.ctx.labels_added = len(labels)
        self.report(f"Module C: {len(labels)} labels added ({failures} structures failed after recovery)")
        return None

    def train(self):
        """Module D: fit the ACE potential on every label so far, warm-started after the first generation."""
        codes = {
            "code": self.ctx.codes["pacemaker"],
            "yaml2yace_code": self.ctx.codes["yaml2yace"],
            "activeset_code": self.ctx.codes["activeset"],
            "timing_code": self.ctx.codes["timing"],
            "held_out_gamma_code": self.ctx.codes["otf_md"],  # k-fold held-out gammas: Module E's threshold
        }
        builder = TrainingWorkChain.get_builder_from_protocol(
            codes,
            self.ctx.dataset,
            protocol=self.inputs.protocol.value,
            overrides={"mlip_training": self.ctx.config["mlip_training"]},
        )
        previous = self.ctx.training
        if previous is not None:
            builder.previous_potential = previous.outputs.potential_yaml
            builder.hyperparameters = previous.outputs.hyperparameters
            if "reference" in previous.outputs:
                builder.reference = previous.outputs.reference
        builder.pacemaker.metadata.options = scheduler_options(self.ctx.config["resources"], "pacemaker")
        builder.metadata.call_link_label = f"training_{self.ctx.generation}"
        return ToContext(training=self.submit(builder))

    def inspect_training(self):
        node = self.ctx.training
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING.format(message=self._failure(node))
        errors = node.outputs.output_parameters.get_dict()
        self.ctx.errors = errors
        frames = self.ctx.dataset.base.extras.get("number_of_frames")
        self.report(f"Module D: fitted on {frames} frames")
        return None

    def should_continue(self):
        """Loop until no uncertain event for `converged_generations` generations, or `max_generations`."""
        active = self.ctx.config["simulation"]["active_learning"]
        if self.ctx.quiet_generations >= active["converged_generations"]:
            self.report(f"converged: {self.ctx.quiet_generations} generations without an uncertain event")
            return False
        return self.ctx.generation < active["max_generations"]

    def simulate(self):
        """Module E: on-the-fly MD (and kMC saddle searches) with the current potential, cutting out the
        uncertain regions."""
        self.ctx.generation += 1
        active = self.ctx.config["simulation"]["active_learning"]
        training = self.ctx.training
        extra = {"generation": orm.Int(self.ctx.generation)}
        if "held_out_gammas" in training.outputs:
            extra["training_gammas"] = training.outputs.held_out_gammas
        if "reference" in training.outputs:
            extra["reference"] = training.outputs.reference
        builder = SimulationWorkChain.get_builder_from_protocol(
            self.ctx.codes["otf_md"],
            training.outputs.potential_yaml,
            training.outputs.active_set,
            select_seeds(
                dict(self.ctx.generator.outputs.structures),
                self.ctx.config["exploration"]["max_seed_structures"],
                self.ctx.config["exploration"]["liquid_seeds"],
            ),
            self.ctx.config["simulation"],
            self.ctx.config["mlip_training"]["r_cut"],
            protocol=self.inputs.protocol.value,
            overrides={
                "embedding": {
                    "bonding": self.ctx.config["system"]["structure_type"],
                    "relax": {
                        "surrogate": {"device": surrogate_device(self.ctx.config["resources"], "otf_md")}
                    },
                }
            },
            kmc_code=self.ctx.codes["kmc"] if active["strategy"] == KMC_STRATEGY else None,
            **extra,
        )
        # Saddle searches and kMC evaluate the same ACE potential as the MD: the same resources.
        builder.md.metadata.options = scheduler_options(self.ctx.config["resources"], "otf_md")
        if active["strategy"] == KMC_STRATEGY:
            builder.kmc.metadata.options = scheduler_options(self.ctx.config["resources"], "otf_md")
        if "lammps" in self.ctx.codes:
            builder.lammps_code = self.ctx.codes["lammps"]
        builder.metadata.call_link_label = f"simulation_{self.ctx.generation}"
        return ToContext(simulation=self.submit(builder))

    def inspect_simulation(self):
        node = self.ctx.simulation
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SIMULATION.format(message=self._failure(node))
        clusters = dict(node.outputs.clusters) if "clusters" in node.outputs else {}
        halting = dict(node.outputs.halting_structures) if "halting_structures" in node.outputs else {}
        to_label = clusters
        if clusters and halting and cheaper_to_label_whole_frames(clusters, halting):
            # A cut-out with its buffer and caps can hold more atoms than the small periodic cell it came
            # from; then the whole halting frame is the cheaper (and buffer-free) label.
            to_label = halting
            self.report(f"labelling the {len(halting)} halting frames whole: smaller than their cut-outs")
        self.ctx.to_label = {f"g{self.ctx.generation}_{key}": value for key, value in to_label.items()}
        self.ctx.uncertain_events = len(halting) or len(clusters)
        self.ctx.labels_added = 0
        self.ctx.quiet_generations = 0 if clusters else self.ctx.quiet_generations + 1
        return None

    def found_uncertain_structures(self):
        return bool(self.ctx.to_label)

    def summarise_generation(self):
        """One line per generation in `verdi process report`, and one row of the metrics output."""
        row = {
            "generation": self.ctx.generation,
            "labels_added": self.ctx.labels_added,
            "uncertain_events": self.ctx.uncertain_events,
            "threshold": self.ctx.simulation.outputs.threshold.get_dict().get("threshold"),
            "errors": self.ctx.errors,
        }
        self.ctx.metrics.append(row)
        self.report(
            f"generation {row['generation']}: {row['labels_added']} labels added, "
            f"{row['uncertain_events']} uncertain events, gamma threshold {row['threshold']}"
        )

    def validate(self):
        """EOS, elastic constants, high-temperature RDF, phase ranking and parity of the final potential;
        EOS and C_ij on the system's own crystal (the user's structure, else Module A's crystal seed)."""
        seeds = dict(self.ctx.generator.outputs.structures)
        crystal, origin = reference_crystal(seeds, self.inputs.get("structure"))
        self.report(f"validation crystal: {origin}")
        builder = ValidationWorkChain.get_builder_from_protocol(
            self.ctx.codes["validate"],
            self.ctx.training.outputs,
            dataset=self.ctx.dataset,
            seed_structures=seeds,
            temperature_steps=self.ctx.config["simulation"]["temperature_steps"],
            protocol=self.inputs.protocol.value,
            structure=crystal,
            structure_origin=origin if crystal is not None else None,
        )
        builder.validation.metadata.options = scheduler_options(self.ctx.config["resources"], "otf_md")
        builder.metadata.call_link_label = "validation"
        return ToContext(validation=self.submit(builder))

    def inspect_validation(self):
        """A report with some failed sections (exit 402) is kept and the run still succeeds."""
        node = self.ctx.validation
        if "report" not in node.outputs:
            return self.exit_codes.ERROR_VALIDATION.format(message=self._failure(node))
        if not node.is_finished_ok:
            self.report(f"validation finished with failed sections: {self._failure(node)}")
        self.out("validation_report", node.outputs.report)
        for name in ("rdf", "parity"):
            if name in node.outputs:
                self.out(name, node.outputs[name])
        return None

    def results(self):
        """The final potential, the dataset and the per-generation metrics."""
        training = self.ctx.training
        self.out("dataset", self.ctx.dataset)
        register_dataset(self.ctx.dataset, self.ctx.config["dft_compute"])
        for name in ("potential_yaml", "potential_yace", "active_set", "lammps_snippet", "reference"):
            if name in training.outputs:
                self.out(name, training.outputs[name])
        self.out(
            "metrics",
            record_metrics(orm.Dict({"generations": self.ctx.metrics, "final_errors": self.ctx.errors})),
        )

    @staticmethod
    def _failure(node) -> str:
        return f"{node.process_label}<{node.pk}> exit status {node.exit_status}: {node.exit_message}"
