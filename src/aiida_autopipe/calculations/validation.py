"""``ValidationCalculation``: the `autopipe-validate` runner on a fitted potential.

A CalcJob because the work (relaxations, finite strains, a hot MD) takes minutes with a large model and is
best run where the model is fast; the daemon only writes inputs and parses the report.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.engine import CalcJob

from aiida_autopipe.calculations.runner import runner_calcinfo
from aiida_autopipe.runners.files import RESULTS_FILE
from aiida_autopipe.runners.validate import PARITY_FILE, PHASE_KEY, RDF_FILE


def validate_phases(phases: dict, _) -> str | None:
    if phases and any(not isinstance(node, orm.StructureData) for node in phases.values()):
        return "every phase must be a StructureData"
    return None


class ValidationCalculation(CalcJob):
    """EOS, elastic constants, hot RDF, phase ranking and parity against the labels of one potential."""

    _INPUT_FILE = "validation_input.yaml"
    _POTENTIAL_FILE = "potential.yaml"
    _REFERENCE_FILE = "reference.json"
    _STRUCTURE_FILE = "structure.extxyz"
    _PHASES_FILE = "phases.extxyz"
    _DATASET_FILE = "dataset.extxyz"
    _STDOUT = "validation.out"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("potential", valid_type=orm.SinglefileData, help="pacemaker potential (.yaml or .yace).")
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="LJ + ZBL reference (ReferencePotential.to_dict()); the model is then reference + ACE.",
        )
        spec.input(
            "atomic_energies",
            valid_type=orm.Dict,
            required=False,
            help="Plain ACE only: per-element constants (eV) of the exported model (the training's "
            "`output_parameters['atomic_energies']`).",
        )
        spec.input(
            "structure",
            valid_type=orm.StructureData,
            required=False,
            help="Reference crystal for EOS, elastic constants and the RDF (default: the model's lowest "
            "periodic phase). A molecule or cluster skips EOS and elastic constants.",
        )
        spec.input_namespace(
            "phases",
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            validator=validate_phases,
            help="Distinct phases to rank by energy, keyed by name.",
        )
        spec.input(
            "dataset",
            valid_type=orm.SinglefileData,
            required=False,
            help="Labelled frames (extxyz) the potential was fitted to: parity and the DFT ranking.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Dict({}),
            help="Runner sections: relax, eos, elastic, rdf (temperatures K, steps...), phase_relax.",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {
            "num_machines": 1,
            "num_mpiprocs_per_machine": 1,
        }
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs["metadata"]["options"]["parser_name"].default = "autopipe.validation"

        spec.output(
            "report",
            valid_type=orm.Dict,
            help="Every result with its unit: eos, elastic, rdf runs, phases, parity table, wall times.",
        )
        spec.output(
            "rdf",
            valid_type=orm.ArrayData,
            required=False,
            help="`r` (Angstrom) and g(r) per temperature: `g_T<K>`, partials `g_<A>_<B>_T<K>`.",
        )
        spec.output(
            "parity",
            valid_type=orm.ArrayData,
            required=False,
            help="Per frame energy_dft, energy_model (eV/atom), frame_group; per force component force_dft, "
            "force_model (eV/Angstrom), force_frame.",
        )
        spec.default_output_node = "report"

        spec.exit_code(300, "ERROR_NO_RESULTS", message="The runner crashed, no results.json: {stderr_tail}")
        spec.exit_code(301, "ERROR_READING_OUTPUT", message="An output file of the runner cannot be read.")
        spec.exit_code(310, "ERROR_INVALID_INPUT", message="The runner rejected its input: {message}")
        spec.exit_code(
            320,
            "ERROR_SECTION_FAILED",
            message="Some validation sections failed (the rest is reported): {message}",
        )

    def prepare_for_submission(self, folder):
        from ase.io import write

        config = self.inputs.parameters.get_dict()
        config["potential"] = self._POTENTIAL_FILE
        local_copy_list = [(self.inputs.potential.uuid, self.inputs.potential.filename, self._POTENTIAL_FILE)]
        if "reference" in self.inputs:
            with folder.open(self._REFERENCE_FILE, "w") as handle:
                json.dump(self.inputs.reference.get_dict(), handle)
            config["reference"] = self._REFERENCE_FILE
        if "atomic_energies" in self.inputs:
            config["atomic_energies"] = self.inputs.atomic_energies.get_dict()
        if "structure" in self.inputs:
            with folder.open(self._STRUCTURE_FILE, "w") as handle:
                write(handle, self.inputs.structure.get_ase(), format="extxyz")
            config["structure"] = self._STRUCTURE_FILE
        phases = self.inputs.get("phases", {})
        if phases:
            frames = []
            for name in sorted(phases):
                atoms = phases[name].get_ase()
                atoms.info[PHASE_KEY] = name
                frames.append(atoms)
            with folder.open(self._PHASES_FILE, "w") as handle:
                write(handle, frames, format="extxyz")
            config["phases"] = self._PHASES_FILE
        if "dataset" in self.inputs:
            local_copy_list.append(
                (self.inputs.dataset.uuid, self.inputs.dataset.filename, self._DATASET_FILE)
            )
            config["dataset"] = self._DATASET_FILE
        return runner_calcinfo(self, folder, config, local_copy_list, [RESULTS_FILE, RDF_FILE, PARITY_FILE])
