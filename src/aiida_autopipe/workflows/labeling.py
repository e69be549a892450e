"""Label structures with pw.x: one recovered SCF single point each, magnetic fallbacks, optional spin-orbit
pass."""

import pathlib

from aiida import orm
from aiida.common import exceptions
from aiida.engine import WorkChain, calcfunction, while_
from aiida.plugins import GroupFactory
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_autopipe.calcfunctions.cluster_attributes import TOT_CHARGE_ATTRIBUTE
from aiida_autopipe.calcfunctions.labels import assemble_label, kpoint_meshes, relabel_kinds
from aiida_autopipe.core import dft_parameters
from aiida_autopipe.core.structures.sanity import check_structure
from aiida_autopipe.workflows.adoption import launched_before_restart
from aiida_autopipe.workflows.pw_base import RECOVERY_EXTRA, AutopipePwBaseWorkChain

PseudoPotentialFamily = GroupFactory("pseudo.family")

#: Keys of the config's ``dft_compute`` section this work chain reads, with the defaults used when absent.
#: ``electron_maxstep`` and ``max_iterations`` (pw.x restarts per structure) are not in the lead's schema.
DFT_COMPUTE_DEFAULTS = {
    "kpoints_density": 0.15,
    "smearing": "mv",
    "degauss": 0.02,
    "magnetism": "ferromagnetic",
    "soc_enabled": False,
    "recovery_strategy": "aggressive",
    "conv_thr_per_atom": 2.0e-10,
    "max_concurrent": 4,
    "mpi_ranks": 1,
    "max_walltime_seconds": 43200,
    "electron_maxstep": 100,
    "max_iterations": 8,
}
REQUIRED_KEYS = ("pseudo_family", "ecutwfc", "ecutrho")
MAGNETISM_MODES = ("none", "ferromagnetic", "antiferromagnetic")

SCALAR = "scalar_relativistic"
SPIN_ORBIT = "spin_orbit"


def validate_dft_compute(value, _):
    """Reject a ``dft_compute`` section the work chain cannot run, before anything is launched."""
    if value is None:
        return None
    config = value.get_dict()
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        return f"`dft_compute` lacks {', '.join(missing)}"
    config = {**DFT_COMPUTE_DEFAULTS, **config}
    if config["magnetism"] not in MAGNETISM_MODES:
        return (
            f"`dft_compute.magnetism` is `{config['magnetism']}`; must be one of {', '.join(MAGNETISM_MODES)}"
        )
    if config["recovery_strategy"] not in ("aggressive", "default"):
        return "`dft_compute.recovery_strategy` must be `aggressive` or `default`"
    for key in ("ecutwfc", "ecutrho", "kpoints_density", "degauss", "conv_thr_per_atom"):
        if not config[key] > 0:
            return f"`dft_compute.{key}` must be positive, got {config[key]}"
    for key in ("max_concurrent", "mpi_ranks", "max_walltime_seconds", "electron_maxstep", "max_iterations"):
        if not (isinstance(config[key], int) and config[key] > 0):
            return f"`dft_compute.{key}` must be a positive integer, got {config[key]}"
    return None


def validate_structures(value, _):
    """At least one structure is needed."""
    if not value:
        return "`structures` is empty: give at least one StructureData"
    return None


@calcfunction
def summarize_labeling(summary: orm.Dict) -> dict:
    """Store the per-structure outcome and the count of structures left unlabelled."""
    failed = sorted(key for key, entry in summary.get_dict().items() if entry["status"] != "labelled")
    return {
        "summary": summary.clone(),
        "failed_structures": orm.List(failed),
        "number_of_failures": orm.Int(len(failed)),
    }


def site_symbols(structure):
    """Chemical symbol of every site."""
    return [structure.get_kind(site.kind_name).symbol for site in structure.sites]


def total_charge(structure) -> float:
    """The cell's net charge (pw.x ``tot_charge``, positive for electrons removed): non-zero for an embedded
    ionic cluster whose neutralisation fell back to a uniform background, zero for everything else."""
    return float(structure.base.attributes.get(TOT_CHARGE_ATTRIBUTE, 0.0))


class LabelingWorkChain(ProtocolMixin, WorkChain):
    """Label structures with strict pw.x single points: energy, forces, stress, magnetisation.

    Each structure runs through ``AutopipePwBaseWorkChain`` (recorded SCF recovery), at most
    ``max_concurrent`` at a time. Magnetic structures start ferromagnetic; if that fails or the moment
    collapses, antiferromagnetic and random spin starts are tried and the lowest converged energy is kept.
    With ``soc_enabled`` the chosen state is relabelled non-collinearly with spin-orbit coupling. A structure
    that fails after all recovery is reported, kept out of ``labels`` and listed in ``failed_structures``; the
    others are still labelled.
    """

    @classmethod
    def define(cls, spec):
        """Define the process specification."""
        super().define(spec)
        spec.input_namespace(
            "structures",
            valid_type=orm.StructureData,
            dynamic=True,
            validator=validate_structures,
            help="The structures to label; the keys name the labels.",
        )
        spec.input(
            "dft_compute",
            valid_type=orm.Dict,
            validator=validate_dft_compute,
            help="The `dft_compute` section of the full config (cutoffs and degauss in Ry).",
        )
        spec.input("pw_code", valid_type=orm.AbstractCode, help="The pw.x code.")
        spec.input(
            "clean_workdir",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            help="Clean the remote folders of the pw.x runs when they are done.",
        )
        spec.outline(
            cls.setup,
            while_(cls.has_pending_tasks)(
                cls.run_batch,
                cls.inspect_batch,
            ),
            cls.results,
        )
        spec.output_namespace(
            "labels",
            valid_type=orm.TrajectoryData,
            dynamic=True,
            help="One single-frame TrajectoryData per labelled structure, made from its pw.x run's outputs.",
        )
        spec.output("failed_structures", valid_type=orm.List, help="Keys of structures left without a label.")
        spec.output("number_of_failures", valid_type=orm.Int)
        spec.output(
            "summary", valid_type=orm.Dict, help="Per structure: states tried, energies, choice, runs."
        )
        spec.exit_code(
            301,
            "ERROR_PSEUDO_FAMILY_NOT_FOUND",
            message="The pseudopotential family `{family}` is not installed.",
        )
        spec.exit_code(
            302,
            "ERROR_MISSING_PSEUDOPOTENTIALS",
            message="The family `{family}` has no pseudopotential for {elements}.",
        )
        spec.exit_code(
            303,
            "ERROR_NO_FULLY_RELATIVISTIC_PSEUDOS",
            message="soc_enabled needs fully relativistic pseudopotentials, but those of {elements} in "
            "`{family}` are scalar-relativistic: install a fully relativistic family (e.g. PseudoDojo FR) "
            "and set `dft_compute.pseudo_family`, or set `soc_enabled: false`.",
        )
        spec.exit_code(
            401,
            "ERROR_NO_STRUCTURE_LABELLED",
            message="None of the structures could be labelled; see `summary`.",
        )

    @classmethod
    def get_protocol_filepath(cls):
        """Return the path of the YAML file that defines the labeling protocols."""
        return pathlib.Path(__file__).parent / "protocols" / "labeling.yaml"

    @classmethod
    def get_builder_from_protocol(cls, code, structures, pseudo_family, protocol=None, overrides=None):
        """Return a builder for the given structures, with the cutoffs the family recommends.

        :param code: the pw.x code, or its label.
        :param structures: mapping of label key to StructureData.
        :param pseudo_family: label of an installed aiida-pseudo family with recommended cutoffs.
        :param protocol: `fast`, `balanced` (default) or `stringent`.
        :param overrides: optional mapping; its `dft_compute` entries win over the protocol's and the
        family's.
        """
        if isinstance(code, str):
            code = orm.load_code(code)
        inputs = cls.get_protocol_inputs(protocol, overrides)
        family = orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": pseudo_family}).one()[0]
        elements = sorted({symbol for structure in structures.values() for symbol in site_symbols(structure)})
        ecutwfc, ecutrho = family.get_recommended_cutoffs(elements=tuple(elements), unit="Ry")

        dft_compute = {
            "code": code.full_label,
            "pseudo_family": pseudo_family,
            "ecutwfc": ecutwfc,
            "ecutrho": ecutrho,
        }
        dft_compute.update(inputs["dft_compute"])
        builder = cls.get_builder()
        builder.structures = dict(structures)
        builder.pw_code = code
        builder.dft_compute = orm.Dict(dft_compute)
        builder.clean_workdir = orm.Bool(inputs["clean_workdir"])
        return builder

    def setup(self):
        """Read the config, check the pseudopotentials and queue one first task per structure."""
        self.ctx.config = {**DFT_COMPUTE_DEFAULTS, **self.inputs.dft_compute.get_dict()}
        family_label = self.ctx.config["pseudo_family"]
        try:
            family = (
                orm.QueryBuilder().append(PseudoPotentialFamily, filters={"label": family_label}).one()[0]
            )
        except exceptions.NotExistent:
            return self.exit_codes.ERROR_PSEUDO_FAMILY_NOT_FOUND.format(family=family_label)

        elements = sorted(
            {symbol for structure in self.inputs.structures.values() for symbol in site_symbols(structure)}
        )
        missing = [element for element in elements if element not in family.elements]
        if missing:
            return self.exit_codes.ERROR_MISSING_PSEUDOPOTENTIALS.format(
                family=family_label, elements=missing
            )
        if self.ctx.config["soc_enabled"]:
            scalar = [
                element
                for element in elements
                if not dft_parameters.is_fully_relativistic(family.get_pseudo(element).get_content())
            ]
            if scalar:
                return self.exit_codes.ERROR_NO_FULLY_RELATIVISTIC_PSEUDOS.format(
                    family=family_label, elements=", ".join(scalar)
                )

        self.ctx.family_pk = family.pk
        self.ctx.rejected = {}
        for key in sorted(self.inputs.structures):
            verdict = check_structure(self.inputs.structures[key].get_ase(), check_density=False)
            if not verdict.passed:
                # pw.x converges even with atoms on top of each other: such a label would poison the fit.
                self.ctx.rejected[key] = verdict.reason
                self.report(f"{key}: rejected before pw.x ({verdict.reason})")
        accepted = [key for key in sorted(self.inputs.structures) if key not in self.ctx.rejected]
        if accepted:
            self.ctx.kpoints = kpoint_meshes(
                orm.Float(self.ctx.config["kpoints_density"]),
                **{key: self.inputs.structures[key] for key in accepted},
                metadata={"call_link_label": "kpoint_meshes"},
            )
        self.ctx.queue = [self.first_task(key) for key in accepted]
        self.ctx.pending = {key: 1 for key in accepted}
        self.ctx.results = {key: {SCALAR: {}, SPIN_ORBIT: {}} for key in self.inputs.structures}
        self.ctx.chosen = {}
        return None

    def first_task(self, key):
        """The first spin arrangement: the user's setting, or no spin without magnetic elements."""
        symbols = site_symbols(self.inputs.structures[key])
        mode = self.ctx.config["magnetism"]
        if mode == "none" or not dft_parameters.has_magnetic_element(symbols):
            return self.task(key, SCALAR, "nonmagnetic", [0] * len(symbols))
        if mode == "antiferromagnetic":
            positions = self.inputs.structures[key].get_ase().get_scaled_positions()
            configuration = dft_parameters.antiferromagnetic(symbols, positions)
            if configuration is None:
                self.report(f"{key}: no antiferromagnetic arrangement exists, starting ferromagnetic")
                configuration = dft_parameters.ferromagnetic(symbols)
        else:
            configuration = dft_parameters.ferromagnetic(symbols)
        return self.task(key, SCALAR, configuration.name, list(configuration.signs))

    @staticmethod
    def task(key, stage, state, signs):
        """One pw.x single point to run."""
        return {"key": key, "stage": stage, "state": state, "signs": signs}

    def has_pending_tasks(self):
        """Whether any single point is still queued."""
        return bool(self.ctx.queue)

    def run_batch(self):
        """Submit up to ``max_concurrent`` queued single points at once."""
        size = self.ctx.config["max_concurrent"]
        self.ctx.batch, self.ctx.queue = self.ctx.queue[:size], self.ctx.queue[size:]
        for task in self.ctx.batch:
            name = self.context_name(task)
            # A crashed worker may have launched this task's work chain before the checkpoint recorded it.
            node = launched_before_restart(self.node, name, self.ctx.get(name))
            if node is None:
                node = self.submit(AutopipePwBaseWorkChain, **self.pw_inputs(task))  # link label: name
                self.report(f"{task['key']}: launched {task['stage']} {task['state']} run <{node.pk}>")
            else:
                self.report(f"{task['key']}: adopting run <{node.pk}>, launched before a daemon restart")
            self.to_context(**{name: node})

    @staticmethod
    def context_name(task):
        """Context key of a task's work chain."""
        return f"pw_{task['key']}_{task['stage']}_{task['state']}"

    def pw_inputs(self, task):
        """Inputs of AutopipePwBaseWorkChain for one task."""
        config = self.ctx.config
        structure = self.inputs.structures[task["key"]]
        symbols = site_symbols(structure)
        configuration = dft_parameters.SpinConfiguration(task["state"], tuple(task["signs"]))
        kind_names = configuration.kind_names(symbols)
        if kind_names != [site.kind_name for site in structure.sites]:
            structure = relabel_kinds(
                structure,
                orm.List(kind_names),
                metadata={"call_link_label": f"relabel_{task['key']}_{task['state']}"},
            )

        pseudos = orm.load_group(self.ctx.family_pk).get_pseudos(structure=structure)
        kind_symbols = {kind.name: kind.symbol for kind in structure.kinds}
        z_valences = {name: pseudo.z_valence for name, pseudo in pseudos.items()}
        kind_signs = configuration.kind_signs(symbols)

        parameters = dft_parameters.scf_parameters(
            n_atoms=len(structure.sites),
            ecutwfc=config["ecutwfc"],
            ecutrho=config["ecutrho"],
            degauss=config["degauss"],
            conv_thr_per_atom=config["conv_thr_per_atom"],
            smearing=config["smearing"],
            electron_maxstep=config["electron_maxstep"],
        )
        tot_charge = total_charge(self.inputs.structures[task["key"]])
        if tot_charge:
            # pw.x adds the compensating uniform background of a charged periodic cell itself.
            parameters["SYSTEM"]["tot_charge"] = tot_charge
        if task["stage"] == SPIN_ORBIT:
            parameters["SYSTEM"].update(
                dft_parameters.spin_orbit_parameters(kind_signs, kind_symbols, z_valences)
            )
        elif any(task["signs"]):
            parameters["SYSTEM"].update(dft_parameters.spin_parameters(kind_signs, kind_symbols, z_valences))

        ranks = config["mpi_ranks"]
        options = {
            "resources": {"num_machines": 1, "num_mpiprocs_per_machine": ranks},
            "max_wallclock_seconds": config["max_walltime_seconds"],
            "withmpi": ranks > 1,
            # `resources.pw` of the full config (queue, account, threads, GPUs), when the caller gives it
            **config.get("scheduler_options", {}),
        }
        return {
            "pw": {
                "code": self.inputs.pw_code,
                "structure": structure,
                "pseudos": pseudos,
                "parameters": orm.Dict(parameters),
                "metadata": {"options": options},
            },
            "kpoints": self.ctx.kpoints[task["key"]],
            "recovery_strategy": orm.Str(config["recovery_strategy"]),
            "max_iterations": orm.Int(config["max_iterations"]),
            "clean_workdir": self.inputs.clean_workdir,
            "metadata": {"call_link_label": self.context_name(task)},
        }

    def inspect_batch(self):
        """Record each finished run; queue magnetic fallbacks and spin-orbit passes as results call for
        them."""
        for task in self.ctx.batch:
            key, stage, state = task["key"], task["stage"], task["state"]
            node = self.ctx[self.context_name(task)]
            result = {
                "pk": node.pk,
                "exit_status": node.exit_status,
                "signs": task["signs"],
                "energy": None,
                "recovery": node.base.extras.get(RECOVERY_EXTRA, []),
            }
            if node.is_finished_ok:
                parameters = node.outputs.output_parameters
                result["energy"] = parameters["energy"]
                result["absolute_magnetization"] = parameters.get("absolute_magnetization", 0.0)
                result["total_magnetization"] = parameters.get("total_magnetization", 0.0)
            else:
                self.report(
                    f"{key}: {stage} {state} run <{node.pk}> failed after recovery "
                    f"(exit status {node.exit_status}: {node.exit_message}); it gives no label"
                )
            self.ctx.results[key][stage][state] = result
            self.ctx.pending[key] -= 1

            if (
                stage == SCALAR
                and state == "ferromagnetic"
                and self.ctx.config["magnetism"] == "ferromagnetic"
            ):
                self.queue_magnetic_fallbacks(key, result)
            if stage == SCALAR and self.ctx.pending[key] == 0:
                self.choose_state(key)

    def queue_magnetic_fallbacks(self, key, result):
        """After a failed or collapsed ferromagnetic start, queue antiferromagnetic and random starts."""
        symbols = site_symbols(self.inputs.structures[key])
        converged = result["energy"] is not None
        result["collapsed"] = converged and dft_parameters.moment_collapsed(
            result["absolute_magnetization"], symbols
        )
        if converged and not result["collapsed"]:
            return
        positions = self.inputs.structures[key].get_ase().get_scaled_positions()
        fallbacks = dft_parameters.fallback_configurations(symbols, positions, seed=len(symbols))
        reason = "collapsed to a non-magnetic state" if converged else "did not converge"
        names = ", ".join(configuration.name for configuration in fallbacks) or "none available"
        self.report(f"{key}: the ferromagnetic start {reason}; trying other spin arrangements: {names}")
        for configuration in fallbacks:
            self.ctx.queue.append(self.task(key, SCALAR, configuration.name, list(configuration.signs)))
            self.ctx.pending[key] += 1

    def choose_state(self, key):
        """Keep the lowest-energy converged spin state; queue its spin-orbit pass when asked for."""
        results = self.ctx.results[key][SCALAR]
        chosen = dft_parameters.lowest_energy_state(
            {state: entry["energy"] for state, entry in results.items()}
        )
        if chosen is None:
            return
        self.ctx.chosen[key] = chosen
        if len(results) > 1:
            energies = ", ".join(
                f"{state} {entry['energy']:.6f} eV" if entry["energy"] is not None else f"{state} unconverged"
                for state, entry in results.items()
            )
            self.report(f"{key}: kept the {chosen} state ({energies})")
        if self.ctx.config["soc_enabled"]:
            self.ctx.queue.append(self.task(key, SPIN_ORBIT, chosen, results[chosen]["signs"]))
            self.ctx.pending[key] += 1

    def results(self):
        """Assemble one label per structure whose final stage converged, and the summary with the failures."""
        final_stage = SPIN_ORBIT if self.ctx.config["soc_enabled"] else SCALAR
        summary = {}
        labels = {}
        for key in sorted(self.inputs.structures):
            chosen = self.ctx.chosen.get(key)
            results = self.ctx.results[key]
            final = results[final_stage].get(chosen) if chosen else None
            entry = {
                "magnetic_state": chosen,
                "states": results[SCALAR],
                "spin_orbit": results[SPIN_ORBIT],
                "tot_charge": total_charge(self.inputs.structures[key]),
            }
            if key in self.ctx.rejected:
                entry["status"] = f"rejected: {self.ctx.rejected[key]}"
            elif final is None or final["energy"] is None:
                entry["status"] = "failed"
                self.report(f"{key}: no converged {final_stage} run, left out of the labels")
            else:
                entry["status"] = "labelled"
                workchain = orm.load_node(final["pk"])
                provenance = {
                    "magnetic_state": chosen,
                    "stage": final_stage,
                    "pw_calculation": workchain.outputs.output_parameters.creator.uuid,
                    "source_structure": self.inputs.structures[key].uuid,
                    "tot_charge": entry["tot_charge"],
                }
                labels[key] = assemble_label(
                    workchain.inputs.pw.structure,
                    workchain.outputs.output_parameters,
                    workchain.outputs.output_trajectory,
                    orm.Dict(provenance),
                    metadata={"call_link_label": f"label_{key}"},
                )
            summary[key] = entry

        self.out("labels", labels)
        self.out_many(
            summarize_labeling(orm.Dict(summary), metadata={"call_link_label": "summarize_labeling"})
        )
        self.report(f"labelled {len(labels)} of {len(summary)} structures")
        if not labels:
            return self.exit_codes.ERROR_NO_STRUCTURE_LABELLED
        return None
