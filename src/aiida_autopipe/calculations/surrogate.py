"""``SurrogateCalculation``: universal-surrogate MD, relaxations, melt-quench and normal-mode sampling with
the `autopipe-surrogate` runner.

A CalcJob rather than a calcfunction so that exploration (minutes to hours, ideally on a GPU node) never
blocks a daemon worker. The Code is the `autopipe-surrogate` console script of this package on any Computer.
All saved frames come back in one ``trajectory`` ArrayData (flat arrays, not a node per frame).
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import CalcJob

from aiida_autopipe.calculations.runner import runner_calcinfo
from aiida_autopipe.runners.surrogate import RESULTS_FILE, TRAJECTORY_FILE


class SurrogateCalculation(CalcJob):
    """NVT/NPT MD, relaxations, melt-quench and normal-mode sampling of seed structures with MACE (or CHGNet)
    via `autopipe-surrogate`."""

    _INPUT_FILE = "surrogate_input.yaml"
    _STRUCTURES_FILE = "structures.extxyz"
    _MODEL_FILE = "surrogate.model"
    _STDOUT = "surrogate.out"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input_namespace(
            "structures", valid_type=orm.StructureData, dynamic=True, help="Seed structures, by label."
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="`tasks` (md: ensemble nvt/npt, temperatures K, pressures GPa, steps, timestep fs, "
            "save_every, friction 1/fs, max_force eV/Angstrom; relax: fmax, steps, relax_cell; melt_quench: "
            "melt_temperature, quench_temperature, melt_steps, quench_steps, timestep, n_melt_snapshots, "
            "repeats, relax_steps; normal_modes: temperatures, n_samples, displacement, cutoff; defaults in "
            "runners/surrogate.py), `seed`, "
            "optional `descriptor` ({kind, r_cut, ...}) and `surrogate` ({requested, device}; default "
            "mace_mp, auto).",
        )
        spec.input(
            "model",
            valid_type=orm.SinglefileData,
            required=False,
            help="A MACE .model file; given, it is the surrogate (overrides parameters.surrogate.requested).",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {
            "num_machines": 1,
            "num_mpiprocs_per_machine": 1,
        }
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs["metadata"]["options"]["parser_name"].default = "autopipe.surrogate"

        spec.output(
            "trajectory", valid_type=orm.ArrayData, help="All saved frames of all runs, as flat arrays."
        )
        spec.output(
            "output_parameters",
            valid_type=orm.Dict,
            help="Resolved surrogate (name, model, device, reason) and one record per run (status, frames).",
        )
        spec.output_namespace(
            "relaxed_structures",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Last frame of each relaxation.",
        )
        spec.output_namespace(
            "generated_structures",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Structures made by melt_quench and normal_modes tasks, tagged (attribute "
            "`autopipe_generation`) with method, parent and temperature.",
        )
        spec.default_output_node = "output_parameters"

        spec.exit_code(300, "ERROR_MISSING_OUTPUT", message="The runner wrote no results.json: {stderr_tail}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="results.json or trajectory.npz cannot be read.")
        spec.exit_code(310, "ERROR_INVALID_INPUT", message="The runner rejected its input: {message}")
        spec.exit_code(
            320, "ERROR_SURROGATE_UNAVAILABLE", message="The surrogate model could not be loaded: {message}"
        )
        spec.exit_code(
            330,
            "ERROR_ALL_RUNS_UNSTABLE",
            message="Every run became unstable (non-finite or huge forces); lower temperature or timestep.",
        )

    def prepare_for_submission(self, folder):
        from ase.io import write

        labels = sorted(self.inputs.structures)
        with folder.open(self._STRUCTURES_FILE, "w") as handle:
            write(handle, [self.inputs.structures[label].get_ase() for label in labels], format="extxyz")
        config = self.inputs.parameters.get_dict()
        config["structures"] = self._STRUCTURES_FILE
        config["structure_labels"] = labels
        local_copy_list = []
        if "model" in self.inputs:
            config["surrogate"] = {**config.get("surrogate", {}), "requested": self._MODEL_FILE}
            config["surrogate"].pop("name", None)
            local_copy_list.append((self.inputs.model.uuid, self.inputs.model.filename, self._MODEL_FILE))
        return runner_calcinfo(self, folder, config, local_copy_list, [RESULTS_FILE, TRAJECTORY_FILE])
