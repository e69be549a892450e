"""``OtfMdCalculation``: on-the-fly ACE MD with the `autopipe-otf-md` runner; halts on a high gamma.

A CalcJob so that long MD never blocks a daemon worker and can run on any Computer. One job is one
trajectory (one starting structure at one temperature); `SimulationWorkChain` runs one per temperature step.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.engine import CalcJob

from aiida_autopipe.calculations.runner import runner_calcinfo
from aiida_autopipe.runners.files import RESULTS_FILE
from aiida_autopipe.runners.otf_md import CLUSTERS_FILE, FINAL_FRAME_FILE, HALTING_FRAME_FILE


class OtfMdCalculation(CalcJob):
    """Langevin NVT with reference + ACE, per-atom extrapolation grade gamma, halting above a threshold."""

    _INPUT_FILE = "otf_md_input.yaml"
    _STRUCTURE_FILE = "structure.extxyz"
    _POTENTIAL_FILE = "potential.yaml"
    _ACTIVE_SET_FILE = "potential.asi"
    _REFERENCE_FILE = "reference.json"
    _STDOUT = "otf_md.out"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="Starting frame.")
        spec.input("potential", valid_type=orm.SinglefileData, help="pacemaker B-basis potential (.yaml).")
        spec.input("active_set", valid_type=orm.SinglefileData, help="Active set (.asi) for gamma.")
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="LJ + ZBL reference (ReferencePotential.to_dict()); the model is then reference + ACE.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="temperature (K), steps, timestep (fs), friction (1/fs), threshold (gamma), gamma_every, "
            "seed, timing_steps, max_force (eV/Angstrom) and optional embedding (r_cut, bonding, "
            "buffer_width, vacuum, formal_charges, relax: {surrogate, fmax, steps}); see the runner.",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {
            "num_machines": 1,
            "num_mpiprocs_per_machine": 1,
        }
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs["metadata"]["options"]["parser_name"].default = "autopipe.otf_md"

        spec.output(
            "output_parameters",
            valid_type=orm.Dict,
            help="Status, steps done, halted, max gamma, timings (us/atom/step with and without gamma).",
        )
        spec.output("gamma_trace", valid_type=orm.ArrayData, help="`steps` and `max_gamma` of each check.")
        spec.output("final_structure", valid_type=orm.StructureData, help="Last frame of the MD.")
        spec.output(
            "halting_structure", valid_type=orm.StructureData, required=False, help="Frame that halted."
        )
        spec.output(
            "halting_gamma",
            valid_type=orm.ArrayData,
            required=False,
            help="Per-atom gamma (array `gamma`) of the halting frame.",
        )
        spec.output_namespace(
            "clusters",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Embedded clusters of the halting frame (with `embedding`); force weights in attributes.",
        )
        spec.default_output_node = "output_parameters"

        spec.exit_code(300, "ERROR_NO_RESULTS", message="The runner crashed, no results.json: {stderr_tail}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="An output file of the runner cannot be read.")
        spec.exit_code(302, "ERROR_MISSING_HALTING_FRAME", message="Halted, but no halting frame.")
        spec.exit_code(303, "ERROR_MISSING_FINAL_FRAME", message="The runner wrote no final frame.")
        spec.exit_code(310, "ERROR_INVALID_INPUT", message="The runner rejected its input: {message}")
        spec.exit_code(320, "ERROR_MD_UNSTABLE", message="The MD became unstable before halting: {message}")
        spec.exit_code(330, "ERROR_EMBEDDING_FAILED", message="The embedding failed: {message}")

    def prepare_for_submission(self, folder):
        from ase.io import write

        with folder.open(self._STRUCTURE_FILE, "w") as handle:
            write(handle, self.inputs.structure.get_ase(), format="extxyz")
        config = self.inputs.parameters.get_dict()
        config.update(
            structure=self._STRUCTURE_FILE, potential=self._POTENTIAL_FILE, active_set=self._ACTIVE_SET_FILE
        )
        if "reference" in self.inputs:
            with folder.open(self._REFERENCE_FILE, "w") as handle:
                json.dump(self.inputs.reference.get_dict(), handle)
            config["reference"] = self._REFERENCE_FILE
        local_copy_list = [
            (self.inputs.potential.uuid, self.inputs.potential.filename, self._POTENTIAL_FILE),
            (self.inputs.active_set.uuid, self.inputs.active_set.filename, self._ACTIVE_SET_FILE),
        ]
        retrieve_list = [RESULTS_FILE, FINAL_FRAME_FILE, HALTING_FRAME_FILE, CLUSTERS_FILE]
        return runner_calcinfo(self, folder, config, local_copy_list, retrieve_list)
