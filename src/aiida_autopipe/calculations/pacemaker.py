"""``PacemakerCalculation``: fit an ACE potential with pacemaker (pyace evaluator, no TensorFlow).

One job runs, in order: ``pacemaker`` (the fit), ``pace_yaml2yace`` (the ``.yace`` LAMMPS reads),
``pace_activeset`` (the ``.asi`` active set for extrapolation grades, optional; built from every atom of the
training data, so each training environment has a grade of at most 1), the held-out extrapolation grades
(optional, the ``held_out_gamma`` task of ``autopipe-otf-md``: k-fold, each fold graded against an active set
built without it; the sample the dynamic gamma threshold of Module E needs, since the training set's own
grades are <= 1 by construction) and ``pace_timing`` (measured single-core evaluation cost, optional). ACE has
no constant term, so the parser refits the per-element energies in closed form against the fit's predictions
and exports them (``reference`` output, or ``atomic_energies`` of a plain fit). The dataset is a labelled
extxyz ``SinglefileData`` in the format of :mod:`aiida_autopipe.core.pacemaker_input`; with a ``reference``
the targets are labels minus the LJ + ZBL reference (delta learning) and the exported model is reference +
ACE.
"""

from __future__ import annotations

import io

import yaml
from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from aiida_autopipe.core.baseline import ReferencePotential
from aiida_autopipe.core.pacemaker_input import (
    DATASET_FILENAME,
    TEST_DATASET_FILENAME,
    composition_energies,
    held_out_fraction,
    pacemaker_dataframe,
    pacemaker_input,
    read_labelled_frames,
    write_pacemaker_dataframe,
)
from aiida_autopipe.runners.files import RESULTS_FILE as HELD_OUT_RESULTS_FILE
from aiida_autopipe.runners.held_out_gamma import GAMMA_FILE as HELD_OUT_GAMMA_FILE

PARAMETER_DEFAULTS = {
    "r_cut": 5.0,
    "body_order": 3,
    "polynomial_degree": 2,
    "radial_basis_size": 6,
    "max_iterations": 200,
    "loss_weights": {"energy": 1.0, "force": 100.0, "stress": 10.0},
    "test_fraction": 0.1,
    "densities": 2,
    "seed": 42,
    "held_out_folds": 5,
}


class PacemakerCalculation(CalcJob):
    """Fit ACE with pacemaker; convert it, build its active set and time it in the same job."""

    _INPUT_FILE = "input.yaml"
    _POTENTIAL_YAML = "output_potential.yaml"
    _POTENTIAL_YACE = "output_potential.yace"
    _ACTIVE_SET = "output_potential.asi"
    _INITIAL_POTENTIAL = "initial_potential.yaml"
    _LOG = "log.txt"
    _TIMING_OUTPUT = "timing.out"
    _HELD_OUT_INPUT = "held_out_gamma.yaml"
    _RETRIEVE = (
        "output_potential.yaml",
        "output_potential.yace",
        "output_potential.asi",
        "metrics.txt",
        "test_metrics.txt",
        "train_pred.pckl.gzip",
        "test_pred.pckl.gzip",
        "log.txt",
        "pacemaker.out",
        "timing.out",
        HELD_OUT_GAMMA_FILE,
        HELD_OUT_RESULTS_FILE,
        "held_out_gamma.out",
    )

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("dataset", valid_type=orm.SinglefileData, help="Labelled frames (extxyz) to fit.")
        spec.input(
            "test_dataset",
            valid_type=orm.SinglefileData,
            required=False,
            help="Held-out labelled frames; without it `test_fraction` of `dataset` is held out at random.",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="r_cut, body_order, polynomial_degree, radial_basis_size, max_iterations, loss_weights, "
            "test_fraction, densities, seed (defaults in PARAMETER_DEFAULTS).",
        )
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="LJ + ZBL reference (ReferencePotential.to_dict()); given, ACE fits labels minus reference.",
        )
        spec.input(
            "initial_potential",
            valid_type=orm.SinglefileData,
            required=False,
            help="pacemaker .yaml of a previous fit to warm-start from.",
        )
        spec.input("yaml2yace_code", valid_type=orm.AbstractCode, help="The pace_yaml2yace executable.")
        spec.input(
            "activeset_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="The pace_activeset executable; without it no active set (.asi) is built.",
        )
        spec.input(
            "held_out_gamma_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="The autopipe-otf-md executable, run with `task: held_out_gamma`: k-fold held-out gamma of "
            "the dataset (`held_out_folds` folds) for Module E's dynamic threshold; without it none.",
        )
        spec.input(
            "timing_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="The pace_timing executable; without it the evaluation cost is not measured.",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {
            "num_machines": 1,
            "num_mpiprocs_per_machine": 1,
        }
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs["metadata"]["options"]["parser_name"].default = "autopipe.pacemaker"

        spec.output(
            "potential_yaml", valid_type=orm.SinglefileData, help="Fitted ACE (pacemaker B-basis .yaml)."
        )
        spec.output("potential_yace", valid_type=orm.SinglefileData, help="Fitted ACE for LAMMPS (.yace).")
        spec.output("active_set", valid_type=orm.SinglefileData, required=False, help="Active set (.asi).")
        spec.output(
            "lammps_snippet",
            valid_type=orm.SinglefileData,
            help="pair_style lines giving the exported model (reference + ACE with a reference) in LAMMPS.",
        )
        spec.output(
            "output_parameters",
            valid_type=orm.Dict,
            help="Train/test RMSE and MAE of energy per atom, forces, stress; evaluation cost; basis size; "
            "the model's per-element energies (atomic_energies, eV).",
        )
        spec.output(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="The exported model's reference: the input's, per-element energies refitted after the fit.",
        )
        spec.output("loss_history", valid_type=orm.ArrayData, help="Per-iteration train (and test) metrics.")
        spec.output(
            "held_out_gammas",
            valid_type=orm.ArrayData,
            required=False,
            help="k-fold held-out per-atom gamma (arrays gamma, frame_index; fold per frame) of the dataset.",
        )

        spec.exit_code(300, "ERROR_NO_RETRIEVED_FILES", message="The retrieved folder could not be read.")
        spec.exit_code(310, "ERROR_PACEMAKER_FAILED", message="pacemaker wrote no potential: {log_tail}")
        spec.exit_code(311, "ERROR_MISSING_YACE", message="pace_yaml2yace wrote no .yace file.")
        spec.exit_code(312, "ERROR_MISSING_ACTIVE_SET", message="pace_activeset wrote no .asi file.")
        spec.exit_code(313, "ERROR_MISSING_TIMING", message="pace_timing printed no timing.")
        spec.exit_code(
            314, "ERROR_HELD_OUT_GAMMA_FAILED", message="The held-out gamma step gave no grades: {message}"
        )
        spec.exit_code(320, "ERROR_MISSING_PREDICTIONS", message="pacemaker wrote no train predictions.")
        spec.exit_code(
            330, "ERROR_NON_FINITE_ERRORS", message="The fitted potential gives non-finite errors."
        )

    def prepare_for_submission(self, folder):
        parameters = {**PARAMETER_DEFAULTS, **self.inputs.parameters.get_dict()}
        reference = (
            ReferencePotential.from_dict(self.inputs.reference.get_dict())
            if "reference" in self.inputs
            else None
        )
        frames = labelled_frames(self.inputs.dataset)
        elements = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
        write_pacemaker_dataframe(
            pacemaker_dataframe(frames, reference), folder.get_abs_path(DATASET_FILENAME)
        )
        has_test = "test_dataset" in self.inputs
        if has_test:
            test_frames = labelled_frames(self.inputs.test_dataset)
            constants = None if reference is not None else composition_energies(frames)  # the training set's
            write_pacemaker_dataframe(
                pacemaker_dataframe(test_frames, reference, constants),
                folder.get_abs_path(TEST_DATASET_FILENAME),
            )
        local_copy_list = []
        initial = None
        if "initial_potential" in self.inputs:
            node = self.inputs.initial_potential
            local_copy_list.append((node.uuid, node.filename, self._INITIAL_POTENTIAL))
            initial = self._INITIAL_POTENTIAL
        input_yaml = pacemaker_input(
            elements=elements,
            r_cut=parameters["r_cut"],
            body_order=parameters["body_order"],
            polynomial_degree=parameters["polynomial_degree"],
            radial_basis_size=parameters["radial_basis_size"],
            max_iterations=parameters["max_iterations"],
            loss_weights=parameters["loss_weights"],
            test_fraction=0.0 if has_test else held_out_fraction(parameters["test_fraction"], len(frames)),
            has_test_file=has_test,
            initial_potential=initial,
            seed=parameters["seed"],
            densities=parameters["densities"],
        )
        with folder.open(self._INPUT_FILE, "w") as handle:
            yaml.safe_dump(input_yaml, handle, sort_keys=False)

        codes_info = [
            _code_info(self.inputs.code, [self._INPUT_FILE], "pacemaker.out"),
            _code_info(
                self.inputs.yaml2yace_code, [self._POTENTIAL_YAML, "-o", self._POTENTIAL_YACE], "yace.out"
            ),
        ]
        if "activeset_code" in self.inputs:
            codes_info.append(
                _code_info(
                    self.inputs.activeset_code,
                    ["-d", DATASET_FILENAME, "--all-atoms", self._POTENTIAL_YAML],
                    "activeset.out",
                )
            )
        if "held_out_gamma_code" in self.inputs:
            held_out = {
                "task": "held_out_gamma",
                "potential": self._POTENTIAL_YAML,
                "dataset": DATASET_FILENAME,
                "n_folds": int(parameters["held_out_folds"]),
                "seed": int(parameters["seed"]),
            }
            with folder.open(self._HELD_OUT_INPUT, "w") as handle:
                yaml.safe_dump(held_out, handle, sort_keys=False)
            codes_info.append(
                _code_info(self.inputs.held_out_gamma_code, [self._HELD_OUT_INPUT], "held_out_gamma.out")
            )
        if "timing_code" in self.inputs:
            codes_info.append(
                _code_info(self.inputs.timing_code, [self._POTENTIAL_YAML, "-n", "2"], self._TIMING_OUTPUT)
            )

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = codes_info
        calcinfo.codes_run_mode = datastructures.CodeRunMode.SERIAL
        calcinfo.local_copy_list = local_copy_list
        calcinfo.retrieve_list = list(self._RETRIEVE)
        return calcinfo


def labelled_frames(node: orm.SinglefileData) -> list:
    """Frames of a labelled-dataset node (format of :mod:`aiida_autopipe.core.pacemaker_input`)."""
    with node.open(mode="r") as handle:
        return read_labelled_frames(io.StringIO(handle.read()))


def _code_info(code: orm.AbstractCode, arguments: list[str], stdout_name: str) -> datastructures.CodeInfo:
    info = datastructures.CodeInfo()
    info.code_uuid = code.uuid
    info.cmdline_params = arguments
    info.stdout_name = stdout_name
    return info
