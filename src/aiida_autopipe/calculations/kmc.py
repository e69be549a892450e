"""``KmcCalculation``: BKL kinetic Monte Carlo by the `autopipe-kmc` runner (lattice gas, event catalogue, or
saddle search with the trained potential).

A CalcJob so that millions of kMC steps never block a daemon worker and can run on any Computer. The
trajectory comes back as one ArrayData on a fixed time grid, never as a node per step.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.engine import CalcJob

from aiida_autopipe.calculations.runner import runner_calcinfo
from aiida_autopipe.runners.files import RESULTS_FILE
from aiida_autopipe.runners.kmc import TRAJECTORY_FILE, UNCERTAIN_SADDLES_FILE

#: Arrays of an `event_catalogue` input: one entry (row) per event.
CATALOGUE_ARRAYS = ("barriers", "prefactors", "displacements")


class KmcCalculation(CalcJob):
    """Residence-time kMC: state and clock recorded as a trajectory, D and occupations in the results."""

    _INPUT_FILE = "kmc_input.yaml"
    _STRUCTURE_FILE = "structure.extxyz"
    _POTENTIAL_FILE = "potential.yaml"
    _ACTIVE_SET_FILE = "potential.asi"
    _REFERENCE_FILE = "reference.json"
    _STDOUT = "kmc.out"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="Lattice gas: lattice_size, spacing (Angstrom), site_energies (eV), barrier (eV), "
            "interaction (eV), temperature (K), prefactor (Hz), coverage or n_particles; always steps, "
            "record_interval (s), n_records, seed; see `aiida_autopipe.runners.kmc`.",
        )
        spec.input(
            "event_catalogue",
            valid_type=orm.ArrayData,
            required=False,
            help="Atomistic events reused in every state: arrays `barriers` (eV), `prefactors` (Hz, Tier 1 "
            "or 2), `displacements` (n_events x 3, Angstrom) and optional `tiers`; replaces the lattice gas.",
        )
        spec.input(
            "structure",
            valid_type=orm.StructureData,
            required=False,
            help="Crystal for a saddle search with the trained potential: a vacancy is made at "
            "`parameters.vacancy_atom` and the hops into it searched (needs potential and active_set).",
        )
        spec.input(
            "potential", valid_type=orm.SinglefileData, required=False, help="pacemaker B-basis (.yaml)."
        )
        spec.input("active_set", valid_type=orm.SinglefileData, required=False, help="Active set (.asi).")
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="LJ + ZBL reference (ReferencePotential.to_dict()); the model is then reference + ACE.",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {
            "num_machines": 1,
            "num_mpiprocs_per_machine": 1,
        }
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs["metadata"]["options"]["parser_name"].default = "autopipe.kmc"
        spec.inputs.validator = cls.validate_inputs

        spec.output(
            "output_parameters",
            valid_type=orm.Dict,
            help="Status, steps, simulated time (s), diffusion coefficient and its error (Angstrom^2/s), "
            "mean occupation per site type, steps per second (wall) and CPU seconds per step.",
        )
        spec.output(
            "trajectory",
            valid_type=orm.ArrayData,
            help="`times` (s), unwrapped `displacements` (Angstrom) per record and particle, and `sites` "
            "(lattice gas) or `event_counts` (event catalogue).",
        )
        spec.output_namespace(
            "uncertain_saddles",
            valid_type=orm.StructureData,
            dynamic=True,
            help="Saddles whose gamma passed the threshold (saddle search): to label, not to trust.",
        )
        spec.output_namespace(
            "uncertain_gammas",
            valid_type=orm.ArrayData,
            dynamic=True,
            help="Per-atom gamma (array `gamma`) of each uncertain saddle, by the same label.",
        )
        spec.default_output_node = "output_parameters"

        spec.exit_code(300, "ERROR_NO_RESULTS", message="The runner crashed, no results.json: {stderr_tail}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="An output file of the runner cannot be read.")
        spec.exit_code(302, "ERROR_MISSING_TRAJECTORY", message="The runner wrote no trajectory.npz.")
        spec.exit_code(310, "ERROR_INVALID_INPUT", message="The runner rejected its input: {message}")
        spec.exit_code(
            320,
            "ERROR_STALLED",
            message="No possible event before the last step (outputs attached): {message}",
        )

    @staticmethod
    def validate_inputs(inputs, _):
        if "structure" in inputs:
            if "event_catalogue" in inputs:
                return "give either structure (saddle search) or event_catalogue, not both"
            if "potential" not in inputs or "active_set" not in inputs:
                return "a saddle search (structure) needs potential and active_set"
            return None
        catalogue = inputs.get("event_catalogue")
        if catalogue is None:
            return None
        missing = sorted(set(CATALOGUE_ARRAYS) - set(catalogue.get_arraynames()))
        if missing:
            return f"event_catalogue lacks the arrays {missing}"
        n_events = {catalogue.get_shape(name)[0] for name in CATALOGUE_ARRAYS}
        if len(n_events) != 1:
            return "event_catalogue: barriers, prefactors and displacements need one row per event"
        return None

    def prepare_for_submission(self, folder):
        config = self.inputs.parameters.get_dict()
        if "event_catalogue" in self.inputs:
            catalogue = self.inputs.event_catalogue
            arrays = {name: catalogue.get_array(name).tolist() for name in CATALOGUE_ARRAYS}
            tiers = catalogue.get_array("tiers").tolist() if "tiers" in catalogue.get_arraynames() else None
            config["events"] = [
                {
                    "barrier": arrays["barriers"][i],
                    "prefactor": arrays["prefactors"][i],
                    "displacement": arrays["displacements"][i],
                    **({"tier": int(tiers[i])} if tiers else {}),
                }
                for i in range(len(arrays["barriers"]))
            ]
        local_copy_list = []
        if "structure" in self.inputs:
            local_copy_list = self._write_saddle_search_files(folder, config)
        return runner_calcinfo(
            self, folder, config, local_copy_list, [RESULTS_FILE, TRAJECTORY_FILE, UNCERTAIN_SADDLES_FILE]
        )

    def _write_saddle_search_files(self, folder, config: dict) -> list:
        """Structure and reference written, file names put in the config; the potential files to copy."""
        from ase.io import write

        with folder.open(self._STRUCTURE_FILE, "w") as handle:
            write(handle, self.inputs.structure.get_ase(), format="extxyz")
        config.update(
            structure=self._STRUCTURE_FILE, potential=self._POTENTIAL_FILE, active_set=self._ACTIVE_SET_FILE
        )
        if "reference" in self.inputs:
            with folder.open(self._REFERENCE_FILE, "w") as handle:
                json.dump(self.inputs.reference.get_dict(), handle)
            config["reference"] = self._REFERENCE_FILE
        return [
            (self.inputs.potential.uuid, self.inputs.potential.filename, self._POTENTIAL_FILE),
            (self.inputs.active_set.uuid, self.inputs.active_set.filename, self._ACTIVE_SET_FILE),
        ]
