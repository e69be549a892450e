"""``KmcCalculation``: BKL kinetic Monte Carlo by the `autopipe-kmc` runner (lattice gas or event catalogue).

A CalcJob so that millions of kMC steps never block a daemon worker and can run on any Computer. The
trajectory comes back as one ArrayData on a fixed time grid, never as a node per step.
"""

from __future__ import annotations

import yaml
from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from aiida_autopipe.runners.files import RESULTS_FILE
from aiida_autopipe.runners.kmc import TRAJECTORY_FILE

#: Arrays of an `event_catalogue` input: one entry (row) per event.
CATALOGUE_ARRAYS = ("barriers", "prefactors", "displacements")


class KmcCalculation(CalcJob):
    """Residence-time kMC: state and clock recorded as a trajectory, D and occupations in the results."""

    _INPUT_FILE = "kmc_input.yaml"
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
        with folder.open(self._INPUT_FILE, "w") as handle:
            handle.write(yaml.safe_dump(config, sort_keys=False))

        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [self._INPUT_FILE]
        codeinfo.stdout_name = self._STDOUT

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [RESULTS_FILE, TRAJECTORY_FILE, self._STDOUT]
        return calcinfo
