"""ActiveLearningWorkChain: the whole pipeline, one module per outline step.

expand config -> A structure generator -> B explorer + DIRECT -> C labeling -> D training
-> loop { E simulation -> C labeling -> D training } until converged -> results.
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.common.exceptions import NotExistent
from aiida.engine import ToContext, WorkChain, if_, while_

from aiida_autopipe.calcfunctions.config import expand_user_config
from aiida_autopipe.calcfunctions.dataset import describe, extend_dataset
from aiida_autopipe.calcfunctions.metrics import record_metrics
from aiida_autopipe.engines.codes import LOCALHOST
from aiida_autopipe.workflows.explorer import ExplorerWorkChain
from aiida_autopipe.workflows.labeling import LabelingWorkChain
from aiida_autopipe.workflows.simulation import SimulationWorkChain
from aiida_autopipe.workflows.structure_generator import StructureGeneratorWorkChain
from aiida_autopipe.workflows.training import TrainingWorkChain

#: Code input -> label of the Code `mlip-pipe setup` registers on localhost.
DEFAULT_CODES = {
    "pw": "pw",
    "surrogate": "autopipe-surrogate",
    "pacemaker": "pacemaker",
    "yaml2yace": "pace_yaml2yace",
    "activeset": "pace_activeset",
    "timing": "pace_timing",
    "otf_md": "autopipe-otf-md",
}


def cheaper_to_label_whole_frames(clusters: dict, halting: dict) -> bool:
    """True when the cut-out clusters hold more atoms than the halting frames they were cut from."""
    return sum(len(node.sites) for node in clusters.values()) >= sum(
        len(node.sites) for node in halting.values()
    )


def select_seeds(structures: dict, count: int) -> dict:
    """At most `count` seeds, taken in turn from each generation method so every kind of seed is explored."""
    by_method: dict[str, list[str]] = {}
    for key in sorted(structures):
        method = structures[key].base.attributes.get("autopipe_generation", {}).get("method", "other")
        by_method.setdefault(method, []).append(key)
    chosen = []
    while len(chosen) < count and any(by_method.values()):
        for keys in by_method.values():
            if keys and len(chosen) < count:
                chosen.append(keys.pop(0))
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
        for role, label in DEFAULT_CODES.items():
            spec.input(
                f"codes.{role}",
                valid_type=orm.AbstractCode,
                required=False,
                help=f"Default: the `{label}@{LOCALHOST}` Code registered by `mlip-pipe setup`.",
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
            cls.label,  # Module C
            cls.inspect_labels,
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
        spec.exit_code(
            310, "ERROR_CODE_NOT_FOUND", message="The `{label}` Code is missing: run `mlip-pipe setup` first."
        )
        spec.exit_code(401, "ERROR_STRUCTURE_GENERATION", message="Module A failed: {message}")
        spec.exit_code(402, "ERROR_EXPLORATION", message="Module B failed: {message}")
        spec.exit_code(403, "ERROR_LABELING", message="Module C labelled no structure: {message}")
        spec.exit_code(404, "ERROR_TRAINING", message="Module D failed: {message}")
        spec.exit_code(405, "ERROR_SIMULATION", message="Module E failed: {message}")

    def expand_config(self):
        """Fill every key of the config from the user's input and the machine facts, as a calcfunction."""
        structure = self.inputs.get("structure")
        extra = {"structure": structure} if structure is not None else {}
        self.ctx.config = expand_user_config(self.inputs.user_config, self.inputs.environment, **extra)
        self.out("full_config", self.ctx.config)
        self.ctx.codes = {}
        for role, label in DEFAULT_CODES.items():
            code = self.inputs.get("codes", {}).get(role)
            if code is None:
                try:
                    code = orm.load_code(f"{label}@{LOCALHOST}")
                except NotExistent:
                    return self.exit_codes.ERROR_CODE_NOT_FOUND.format(label=f"{label}@{LOCALHOST}")
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
        return {"surrogate": {"requested": surrogate, "device": "auto"}}

    def generate_structures(self):
        """Module A: seed structures from the composition or structure, without DFT."""
        inputs = AttributeDict(
            {
                "system": orm.Dict(self.ctx.config["system"]),
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
                    dict(self.ctx.generator.outputs.structures), exploration["max_seed_structures"]
                ),
                "parameters": orm.Dict({**self._surrogate_parameters(), "tasks": tasks}),
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
        return None

    def label(self):
        """Module C: pw.x single points for the structures waiting for labels."""
        inputs = {
            "structures": self.ctx.to_label,
            "dft_compute": orm.Dict(self.ctx.config["dft_compute"]),
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
        """Module E: on-the-fly MD with the current potential, cutting out the uncertain regions."""
        self.ctx.generation += 1
        training = self.ctx.training
        extra = {"training_set": self.ctx.dataset, "generation": orm.Int(self.ctx.generation)}
        if "reference" in training.outputs:
            extra["reference"] = training.outputs.reference
        builder = SimulationWorkChain.get_builder_from_protocol(
            self.ctx.codes["otf_md"],
            training.outputs.potential_yaml,
            training.outputs.active_set,
            select_seeds(
                dict(self.ctx.generator.outputs.structures),
                self.ctx.config["exploration"]["max_seed_structures"],
            ),
            self.ctx.config["simulation"],
            self.ctx.config["mlip_training"]["r_cut"],
            protocol=self.inputs.protocol.value,
            overrides={"embedding": {"bonding": self.ctx.config["system"]["structure_type"]}},
            **extra,
        )
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

    def results(self):
        """The final potential, the dataset and the per-generation metrics."""
        training = self.ctx.training
        self.out("dataset", self.ctx.dataset)
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
