"""``PacemakerParser``: potential files, train/test errors, loss history, cost and held-out gammas."""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from aiida import orm
from aiida.parsers import Parser

from aiida_autopipe.calculations.pacemaker import HELD_OUT_GAMMA_FILE, HELD_OUT_RESULTS_FILE
from aiida_autopipe.calculations.pacemaker import labelled_frames as _frames
from aiida_autopipe.core.baseline import (
    ReferencePlusACECalculator,
    ReferencePotential,
    ace_lammps_snippet,
    stress_matrix,
)
from aiida_autopipe.core.pacemaker_input import atomic_energy_shifts, composition_energies, error_metrics

TIMING_PATTERN = re.compile(r"Overall timing \(mcs/atom\):\s*([0-9.eE+-]+)")
HISTORY_COLUMNS = ("iter_num", "loss", "rmse_epa", "rmse_f_comp", "mae_f_comp")


def basis_size(retrieved) -> dict:
    """Number of basis functions and of fitted coefficients, from pacemaker's final metrics."""
    table = pd.read_csv(io.StringIO(retrieved.get_object_content("metrics.txt")), sep=r"\s+")
    if not len(table):
        return {}
    last = table.iloc[-1]
    return {
        "n_functions": int(last["nfuncs"]),
        "n_coefficients": int(last["ncoefs"]),
        "iterations": int(last["iter_num"]),
    }


class PacemakerParser(Parser):
    """Turn a pacemaker job's retrieved files into outputs; numbered exit codes for what is missing."""

    def parse(self, **kwargs):
        try:
            retrieved = self.retrieved
            names = set(retrieved.list_object_names())
        except Exception:
            return self.exit_codes.ERROR_NO_RETRIEVED_FILES
        calc = self.node.process_class
        if calc._POTENTIAL_YAML not in names:
            return self.exit_codes.ERROR_PACEMAKER_FAILED.format(log_tail=self._log_tail(retrieved, names))
        if calc._POTENTIAL_YACE not in names:
            return self.exit_codes.ERROR_MISSING_YACE
        if "activeset_code" in self.node.inputs and calc._ACTIVE_SET not in names:
            return self.exit_codes.ERROR_MISSING_ACTIVE_SET
        if "train_pred.pckl.gzip" not in names:
            return self.exit_codes.ERROR_MISSING_PREDICTIONS

        frames = _frames(self.node.inputs.dataset)
        with retrieved.open("train_pred.pckl.gzip", mode="rb") as handle:
            shifts = atomic_energy_shifts(pd.read_pickle(handle, compression="gzip"), frames)
        # The exported model's per-element constants: the ones taken off the targets plus the refitted shifts.
        reference = None
        if "reference" in self.node.inputs:
            reference = ReferencePotential.from_dict(self.node.inputs.reference.get_dict())
            removed = reference.atomic_energies
        else:
            removed = composition_energies(frames)
        atomic_energies = {e: removed.get(e, 0.0) + shifts.get(e, 0.0) for e in sorted({*removed, *shifts})}
        if reference is not None:
            reference.atomic_energies = atomic_energies

        with tempfile.TemporaryDirectory() as tmp:
            potential_path = Path(tmp) / calc._POTENTIAL_YAML
            potential_path.write_bytes(retrieved.get_object_content(calc._POTENTIAL_YAML, mode="rb"))
            model = ReferencePlusACECalculator(str(potential_path), reference=reference)
            output_parameters = self._errors(retrieved, names, model, frames, shifts)
        output_parameters["atomic_energies"] = atomic_energies

        if not all(
            np.isfinite(v) for split in ("train", "test") for v in output_parameters.get(split, {}).values()
        ):
            return self.exit_codes.ERROR_NON_FINITE_ERRORS

        if "timing_code" in self.node.inputs:
            match = "timing.out" in names and TIMING_PATTERN.search(
                retrieved.get_object_content("timing.out")
            )
            if not match:
                return self.exit_codes.ERROR_MISSING_TIMING
            output_parameters["evaluation_cost_us_per_atom_step"] = float(match.group(1))
        if "metrics.txt" in names:
            output_parameters.update(basis_size(retrieved))
        self.out("output_parameters", orm.Dict(output_parameters))

        for link, filename in (
            ("potential_yaml", calc._POTENTIAL_YAML),
            ("potential_yace", calc._POTENTIAL_YACE),
            ("active_set", calc._ACTIVE_SET),
        ):
            if filename in names:
                content = retrieved.get_object_content(filename, mode="rb")
                self.out(link, orm.SinglefileData(io.BytesIO(content), filename=filename))

        elements = sorted({s for atoms in frames for s in atoms.get_chemical_symbols()})
        if reference is not None:
            self.out("reference", orm.Dict(reference.to_dict()))
            snippet = reference.lammps_snippet(calc._POTENTIAL_YACE, elements)
        else:
            snippet = ace_lammps_snippet(calc._POTENTIAL_YACE, elements, atomic_energies)
        self.out(
            "lammps_snippet", orm.SinglefileData(io.BytesIO(snippet.encode()), filename="pair_style.lammps")
        )
        self.out("loss_history", self._loss_history(retrieved, names))
        if "held_out_gamma_code" in self.node.inputs:
            return self._held_out_gammas(retrieved, names)
        return None

    def _held_out_gammas(self, retrieved, names):
        """The k-fold held-out grades as ArrayData (attributes: folds, frames, ungraded atoms, wall time)."""
        results = {}
        if HELD_OUT_RESULTS_FILE in names:
            results = json.loads(retrieved.get_object_content(HELD_OUT_RESULTS_FILE))
        if HELD_OUT_GAMMA_FILE not in names:
            message = results.get("message") or self._stdout_tail(retrieved, names, "held_out_gamma.out")
            return self.exit_codes.ERROR_HELD_OUT_GAMMA_FAILED.format(message=message)
        with retrieved.open(HELD_OUT_GAMMA_FILE, mode="rb") as handle:
            arrays = dict(np.load(io.BytesIO(handle.read())))
        gammas = orm.ArrayData()
        for name in ("gamma", "frame_index", "fold"):
            gammas.set_array(name, arrays[name])
        for key in ("n_frames", "n_atoms", "n_folds", "n_ungraded", "wall_time_s"):
            gammas.base.attributes.set(key, results.get(key))
        gammas.base.attributes.set("source", "k-fold held-out")
        self.out("held_out_gammas", gammas)
        return None

    def _errors(self, retrieved, names, model, frames, shifts) -> dict:
        """Errors of the total model: energy/forces from pacemaker's predictions, stress evaluated here."""
        test_frames = _frames(self.node.inputs.test_dataset) if "test_dataset" in self.node.inputs else frames

        def stress_model(atoms):
            copy = atoms.copy()
            copy.calc = model
            return stress_matrix(copy.get_stress())

        output = {}
        for split, filename, split_frames in (
            ("train", "train_pred.pckl.gzip", frames),
            ("test", "test_pred.pckl.gzip", test_frames),
        ):
            if filename in names:
                with retrieved.open(filename, mode="rb") as handle:
                    predictions = pd.read_pickle(handle, compression="gzip")
                output[split] = error_metrics(predictions, split_frames, stress_model, shifts)
        return output

    @staticmethod
    def _loss_history(retrieved, names) -> orm.ArrayData:
        history = orm.ArrayData()
        for split, filename in (("train", "metrics.txt"), ("test", "test_metrics.txt")):
            if filename not in names:
                continue
            table = pd.read_csv(io.StringIO(retrieved.get_object_content(filename)), sep=r"\s+")
            if len(table) and all(column in table for column in HISTORY_COLUMNS):
                history.set_array(split, table[list(HISTORY_COLUMNS)].to_numpy(dtype=float))
        history.base.attributes.set("columns", list(HISTORY_COLUMNS))
        return history

    @staticmethod
    def _stdout_tail(retrieved, names, filename) -> str:
        if filename in names:
            return retrieved.get_object_content(filename).strip()[-300:] or "(empty output)"
        return "(no output)"

    @staticmethod
    def _log_tail(retrieved, names) -> str:
        for filename in ("pacemaker.out", "log.txt"):
            if filename in names:
                lines = retrieved.get_object_content(filename).strip().splitlines()
                return " | ".join(lines[-3:]) if lines else "(empty log)"
        return "(no log)"
