"""``TrainingWorkChain``: choose the ACE basis, fit it on a physical reference, fine-tune on relabelled data.

Steps: fit the LJ + ZBL reference to the labels (delta learning, unless given or switched off); when any of
``body_order``, ``polynomial_degree``, ``radial_basis_size`` is ``'auto'``, cross-validate every point of the
grid, keep the Pareto front of CV error against measured evaluation cost (``pace_timing``, microseconds per
atom per step) and take its knee; fit the chosen basis on the whole dataset, warm-started from the previous
generation's potential when given; when spin-orbit relabelled frames arrive, fine-tune that potential on
them (second stage), with the reference's per-element energies refitted to the new labels.

The CV error of a basis is the loss the fit minimises, evaluated on held-out folds with the config's weights:
``w_energy * RMSE(E/atom)^2 + w_force * RMSE(F)^2 + w_stress * RMSE(stress)^2`` (eV, Angstrom units).
"""

from __future__ import annotations

import io
import pathlib
from collections import Counter

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction, if_
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_autopipe.calculations.pacemaker import PacemakerCalculation, labelled_frames
from aiida_autopipe.core.baseline import ReferencePotential, fit_reference
from aiida_autopipe.core.hyperparameters import (
    fold_indices,
    functions_per_element,
    knee,
    pareto_front,
    search_grid,
    underdetermined_elements,
)
from aiida_autopipe.core.pacemaker_input import write_labelled_frames
from aiida_autopipe.parsers.pacemaker import basis_size

MLIP_TRAINING_DEFAULTS = {
    "model": "ace",
    "r_cut": 5.0,
    "delta_learning": True,
    "base_potential": "lj_auto",
    "loss_weights": {"energy": 1.0, "force": 100.0, "stress": 10.0},
    "body_order": "auto",
    "polynomial_degree": "auto",
    "radial_basis_size": "auto",
    "max_iterations": 500,
    "test_fraction": 0.1,
}
SEARCH_DEFAULTS = {
    "body_order": [3, 4],
    "polynomial_degree": [2, 3, 4],
    "radial_basis_size": [6, 10],
    "n_folds": 3,
    "max_iterations": 100,
    "densities": 2,
    "seed": 0,
}
FINE_TUNE_DEFAULTS = {"max_iterations": 100}
KNOBS = ("body_order", "polynomial_degree", "radial_basis_size")
KNOB_MINIMUM = {"body_order": 2, "polynomial_degree": 0, "radial_basis_size": 1}


def validate_mlip_training(value, _):
    """Reject an ``mlip_training`` section this work chain cannot honour, before anything runs."""
    config = {**MLIP_TRAINING_DEFAULTS, **value.get_dict()}
    if config["model"] != "ace":
        return f"`mlip_training.model` is `{config['model']}`; only `ace` is supported"
    if config["base_potential"] != "lj_auto":
        return f"`mlip_training.base_potential` is `{config['base_potential']}`; only `lj_auto` is supported"
    if not config["r_cut"] > 0:
        return f"`mlip_training.r_cut` must be positive (Angstrom), got {config['r_cut']}"
    for knob in KNOBS:
        entry = config[knob]
        if entry != "auto" and not (isinstance(entry, int) and entry >= KNOB_MINIMUM[knob]):
            return f"`mlip_training.{knob}` must be 'auto' or an integer >= {KNOB_MINIMUM[knob]}, got {entry}"
    if not (isinstance(config["max_iterations"], int) and config["max_iterations"] > 0):
        return "`mlip_training.max_iterations` must be a positive integer"
    if not 0 <= config["test_fraction"] < 1:
        return "`mlip_training.test_fraction` must lie in [0, 1)"
    weights = config["loss_weights"]
    if set(weights) - {"energy", "force", "stress"} or any(w < 0 for w in weights.values()):
        return "`mlip_training.loss_weights` takes non-negative `energy`, `force` and `stress` weights"
    return None


def _dataset_node(frames, filename: str) -> orm.SinglefileData:
    handle = io.StringIO()
    write_labelled_frames(frames, handle)
    return orm.SinglefileData(io.BytesIO(handle.getvalue().encode()), filename=filename)


@calcfunction
def fit_reference_potential(dataset: orm.SinglefileData, mlip_training: orm.Dict) -> orm.Dict:
    """LJ + ZBL reference with automatic parameters (see :mod:`aiida_autopipe.core.baseline`)."""
    config = {**MLIP_TRAINING_DEFAULTS, **mlip_training.get_dict()}
    weights = config["loss_weights"]
    reference = fit_reference(
        labelled_frames(dataset), config["r_cut"], weights.get("energy", 1.0), weights.get("force", 100.0)
    )
    return orm.Dict(reference.to_dict())


@calcfunction
def refit_atomic_energies(dataset: orm.SinglefileData, reference: orm.Dict) -> orm.Dict:
    """The reference with its per-element energies refitted to new labels, pair terms kept.

    Spin-orbit labels shift total energies by nearly a constant per atom of each element; absorbing it here
    leaves the fine-tune stage a residual close to the one the potential was fitted to.
    """
    frames = labelled_frames(dataset)
    current = ReferencePotential.from_dict(reference.get_dict())
    elements = current.elements
    counts = np.array(
        [[atoms.get_chemical_symbols().count(e) for e in elements] for atoms in frames], dtype=float
    )
    current_energies = np.array([current.energy_forces_stress(atoms)[0] for atoms in frames])
    targets = np.array([atoms.info["energy"] for atoms in frames]) - current_energies
    shifts, *_ = np.linalg.lstsq(counts, targets, rcond=None)
    current.atomic_energies = {
        e: current.atomic_energies.get(e, 0.0) + float(s) for e, s in zip(elements, shifts, strict=True)
    }
    return orm.Dict(current.to_dict())


@calcfunction
def fixed_basis(mlip_training: orm.Dict) -> orm.Dict:
    """The basis the config fixes (every knob an integer): no search needed."""
    return orm.Dict({knob: mlip_training[knob] for knob in KNOBS})


@calcfunction
def split_folds(dataset: orm.SinglefileData, n_folds: orm.Int, seed: orm.Int) -> dict:
    """Cross-validation folds: ``train_k`` (all frames but fold k) and ``test_k`` (fold k)."""
    frames = labelled_frames(dataset)
    outputs = {}
    for index, fold in enumerate(fold_indices(len(frames), n_folds.value, seed.value)):
        held_out = set(fold)
        outputs[f"train_{index}"] = _dataset_node(
            [a for i, a in enumerate(frames) if i not in held_out], f"train_{index}.extxyz"
        )
        outputs[f"test_{index}"] = _dataset_node([frames[i] for i in fold], f"test_{index}.extxyz")
    return outputs


def atomic_environments(frames) -> dict[str, int]:
    """Atoms of each element in the dataset: what that element's active set is built from."""
    return dict(Counter(symbol for frame in frames for symbol in frame.get_chemical_symbols()))


def element_counts(counts: dict[str, int]) -> str:
    """'Mg 33, Ni 12': counts of atoms by element, for reports and exit messages."""
    return ", ".join(f"{element} {count}" for element, count in sorted(counts.items()))


@calcfunction
def select_basis(
    grid: orm.List, loss_weights: orm.Dict, environments: orm.Dict, **fold_results: orm.Dict
) -> dict:
    """Pareto front of CV error against measured cost over the grid, and its knee (the chosen basis).

    ``fold_results`` are the fits' ``output_parameters``, labelled ``point_<g>_fold_<k>``; a grid point with a
    failed fold is left out, and so is one with more functions per element than some element has atomic
    environments in the dataset (``environments``): its active set could not be built.
    """
    weights = {"energy": 1.0, "force": 100.0, "stress": 10.0, **loss_weights.get_dict()}
    per_point: dict[int, list[dict]] = {}
    for label, node in fold_results.items():
        point = int(label.split("_")[1])
        per_point.setdefault(point, []).append(node.get_dict())
    n_folds = max(len(results) for results in per_point.values())
    points, excluded = [], []
    for index, hyper in enumerate(grid.get_list()):
        results = per_point.get(index, [])
        if len(results) < n_folds:
            continue
        n_functions = results[0].get("n_functions")
        short = underdetermined_elements(n_functions, environments.get_dict()) if n_functions else {}
        if short:
            excluded.append({**hyper, "n_functions": n_functions, "too_few_environments": short})
            continue
        losses = [
            weights["energy"] * r["test"]["energy_rmse"] ** 2
            + weights["force"] * r["test"]["forces_rmse"] ** 2
            + weights["stress"] * r["test"].get("stress_rmse", 0.0) ** 2
            for r in results
        ]
        points.append(
            {
                **hyper,
                "error": float(np.mean(losses)),
                "cost": float(np.mean([r["evaluation_cost_us_per_atom_step"] for r in results])),
                "energy_rmse": float(np.mean([r["test"]["energy_rmse"] for r in results])),
                "forces_rmse": float(np.mean([r["test"]["forces_rmse"] for r in results])),
                "n_functions": results[0].get("n_functions"),
            }
        )
    front = pareto_front(points)
    chosen = knee(front)
    return {
        "pareto_front": orm.Dict(
            {
                "points": points,
                "excluded": excluded,
                "front": front,
                "knee": chosen,
                "error": "weighted CV loss",
                "cost": "us/atom/step",
            }
        ),
        "hyperparameters": orm.Dict({knob: chosen[knob] for knob in KNOBS}),
    }


class TrainingWorkChain(ProtocolMixin, WorkChain):
    """Basis search by cross-validation, delta-learned ACE fit, warm start and spin-orbit fine-tune."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(
            PacemakerCalculation,
            namespace="pacemaker",
            exclude=("dataset", "test_dataset", "parameters", "reference", "initial_potential"),
        )
        spec.input(
            "dataset", valid_type=orm.SinglefileData, help="Labelled frames (extxyz, see pacemaker_input)."
        )
        spec.input(
            "mlip_training",
            valid_type=orm.Dict,
            validator=validate_mlip_training,
            help="The config's `mlip_training` section.",
        )
        spec.input("search", valid_type=orm.Dict, required=False, help="Grid candidates, folds, iterations.")
        spec.input(
            "fine_tune", valid_type=orm.Dict, required=False, help="Iterations of the fine-tune stage."
        )
        spec.input(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="Reference of the previous generation; kept so a warm start fits the same residual.",
        )
        spec.input(
            "hyperparameters",
            valid_type=orm.Dict,
            required=False,
            help="Basis chosen by a previous generation (body_order, polynomial_degree, radial_basis_size).",
        )
        spec.input(
            "previous_potential",
            valid_type=orm.SinglefileData,
            required=False,
            help="Previous generation's .yaml: the fit starts from its coefficients.",
        )
        spec.input(
            "relabelled_dataset",
            valid_type=orm.SinglefileData,
            required=False,
            help="Frames relabelled with spin-orbit coupling: fine-tune the fitted potential on them.",
        )
        spec.outline(
            cls.setup,
            if_(cls.should_fit_reference)(cls.fit_reference),
            if_(cls.should_search)(cls.run_search, cls.inspect_search),
            cls.run_fit,
            cls.inspect_fit,
            if_(cls.should_fine_tune)(cls.run_fine_tune, cls.inspect_fine_tune),
            cls.results,
        )
        spec.expose_outputs(PacemakerCalculation, exclude=("remote_folder", "retrieved", "reference"))
        spec.output(
            "reference",
            valid_type=orm.Dict,
            required=False,
            help="The LJ + ZBL reference of the model, with the per-element energies of the final fit.",
        )
        spec.output(
            "hyperparameters", valid_type=orm.Dict, help="The basis used (pass it to the next generation)."
        )
        spec.output(
            "pareto_front", valid_type=orm.Dict, required=False, help="Every grid point, front and knee."
        )
        spec.output(
            "scalar_relativistic_potential",
            valid_type=orm.SinglefileData,
            required=False,
            help="First-stage potential (before the spin-orbit fine-tune).",
        )
        spec.exit_code(
            400, "ERROR_TIMING_CODE_REQUIRED", message="The basis search needs `pacemaker.timing_code`."
        )
        spec.exit_code(401, "ERROR_SEARCH_FAILED", message="No grid point was fitted on every fold.")
        spec.exit_code(402, "ERROR_FIT_FAILED", message="The final fit failed: {message}")
        spec.exit_code(403, "ERROR_FINE_TUNE_FAILED", message="The spin-orbit fine-tune failed: {message}")
        spec.exit_code(
            404,
            "ERROR_TOO_FEW_FRAMES",
            message="{n_frames} frames cannot make {n_folds} cross-validation folds.",
        )
        spec.exit_code(
            405,
            "ERROR_TOO_FEW_ENVIRONMENTS",
            message="Atomic environments in the dataset ({counts}) are fewer than the {needed} functions per "
            "element of {basis}, so no active set can be built: label more structures with these elements "
            "(a larger exploration.initial_label_budget or larger cells) or fix a smaller basis in "
            "mlip_training.",
        )

    @classmethod
    def get_protocol_filepath(cls):
        return pathlib.Path(__file__).parent / "protocols" / "training.yaml"

    @classmethod
    def get_builder_from_protocol(cls, codes: dict, dataset, protocol=None, overrides=None):
        """Builder with the protocol's `mlip_training`, `search` and `fine_tune` sections.

        :param codes: ``code``, ``yaml2yace_code``, ``activeset_code``, ``timing_code`` (codes or labels).
        :param dataset: labelled frames (SinglefileData, extxyz).
        :param protocol: `fast`, `balanced` (default) or `stringent`.
        :param overrides: mapping whose sections win over the protocol's.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        builder = cls.get_builder()
        builder.dataset = dataset
        for port, code in codes.items():
            builder.pacemaker[port] = orm.load_code(code) if isinstance(code, str) else code
        builder.mlip_training = orm.Dict(inputs["mlip_training"])
        builder.search = orm.Dict(inputs["search"])
        builder.fine_tune = orm.Dict(inputs["fine_tune"])
        return builder

    def setup(self):
        self.ctx.config = {**MLIP_TRAINING_DEFAULTS, **self.inputs.mlip_training.get_dict()}
        self.ctx.search = {
            **SEARCH_DEFAULTS,
            **(self.inputs.search.get_dict() if "search" in self.inputs else {}),
        }
        self.ctx.reference = self.inputs.get("reference")
        if "hyperparameters" in self.inputs:
            self.ctx.grid = [self.inputs.hyperparameters.get_dict()]
            self.ctx.hyperparameters = self.inputs.hyperparameters
        else:
            self.ctx.grid = search_grid(self.ctx.config, self.ctx.search)
            if len(self.ctx.grid) == 1:
                self.ctx.hyperparameters = fixed_basis(self.inputs.mlip_training)

    def should_fit_reference(self):
        return self.ctx.config["delta_learning"] and self.ctx.reference is None

    def fit_reference(self):
        self.ctx.reference = fit_reference_potential(self.inputs.dataset, self.inputs.mlip_training)

    def should_search(self):
        return len(self.ctx.grid) > 1

    def _parameters(self, hyperparameters: dict | orm.Dict, **overrides) -> orm.Dict:
        config = self.ctx.config
        return orm.Dict(
            {
                "r_cut": config["r_cut"],
                "loss_weights": config["loss_weights"],
                "max_iterations": config["max_iterations"],
                "test_fraction": config["test_fraction"],
                "densities": self.ctx.search["densities"],
                **(hyperparameters.get_dict() if isinstance(hyperparameters, orm.Dict) else hyperparameters),
                **overrides,
            }
        )

    def _inputs(self, dataset, parameters, **extra) -> dict:
        inputs = self.exposed_inputs(PacemakerCalculation, namespace="pacemaker")
        inputs.update(dataset=dataset, parameters=parameters, **extra)
        if self.ctx.reference is not None:
            inputs["reference"] = self.ctx.reference
        return inputs

    def run_search(self):
        if "timing_code" not in self.inputs.pacemaker:
            return self.exit_codes.ERROR_TIMING_CODE_REQUIRED
        frames = labelled_frames(self.inputs.dataset)
        n_frames = len(frames)
        self.ctx.environments = atomic_environments(frames)
        if n_frames < self.ctx.search["n_folds"]:
            return self.exit_codes.ERROR_TOO_FEW_FRAMES.format(
                n_frames=n_frames, n_folds=self.ctx.search["n_folds"]
            )
        folds = split_folds(
            self.inputs.dataset, orm.Int(self.ctx.search["n_folds"]), orm.Int(self.ctx.search["seed"])
        )
        self.report(f"cross-validating {len(self.ctx.grid)} bases on {self.ctx.search['n_folds']} folds")
        futures = {}
        for point, hyperparameters in enumerate(self.ctx.grid):
            parameters = self._parameters(hyperparameters, max_iterations=self.ctx.search["max_iterations"])
            for fold in range(self.ctx.search["n_folds"]):
                inputs = self._inputs(folds[f"train_{fold}"], parameters, test_dataset=folds[f"test_{fold}"])
                inputs.pop("activeset_code", None)
                inputs.pop("held_out_gamma_code", None)
                inputs["metadata"] = {
                    **inputs.get("metadata", {}),
                    "call_link_label": f"search_{point}_{fold}",
                }
                futures[f"point_{point}_fold_{fold}"] = self.submit(PacemakerCalculation, **inputs)
        return ToContext(**futures)

    def inspect_search(self):
        fold_results = {}
        for point in range(len(self.ctx.grid)):
            for fold in range(self.ctx.search["n_folds"]):
                node = self.ctx[f"point_{point}_fold_{fold}"]
                if node.is_finished_ok:
                    fold_results[f"point_{point}_fold_{fold}"] = node.outputs.output_parameters
                else:
                    self.report(
                        f"search fit {node.pk} (point {point}, fold {fold}) failed: {node.exit_message}"
                    )
        if not fold_results:
            return self.exit_codes.ERROR_SEARCH_FAILED
        environments = self.ctx.environments
        smallest = min((node.get("n_functions") or 0 for node in fold_results.values()), default=0)
        short = underdetermined_elements(smallest, environments) if smallest else {}
        if short:
            return self.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.format(
                counts=element_counts(short),
                needed=functions_per_element(smallest, len(environments)),
                basis="the smallest basis searched",
            )
        selection = select_basis(
            orm.List(self.ctx.grid),
            orm.Dict(self.ctx.config["loss_weights"]),
            orm.Dict(environments),
            **fold_results,
        )
        for point in selection["pareto_front"]["excluded"]:
            basis = {knob: point[knob] for knob in KNOBS}
            self.report(
                f"basis {basis} left out: {point['n_functions']} functions, too few environments "
                f"({element_counts(point['too_few_environments'])})"
            )
        self.ctx.pareto_front = selection["pareto_front"]
        self.ctx.hyperparameters = selection["hyperparameters"]
        self.report(f"chosen basis (knee of the Pareto front): {self.ctx.hyperparameters.get_dict()}")
        return None

    def run_fit(self):
        extra = {}
        if "previous_potential" in self.inputs:
            extra["initial_potential"] = self.inputs.previous_potential
        inputs = self._inputs(self.inputs.dataset, self._parameters(self.ctx.hyperparameters), **extra)
        inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": "fit"}
        return ToContext(fit=self.submit(PacemakerCalculation, **inputs))

    def inspect_fit(self):
        fit = self.ctx.fit
        if fit.exit_status == PacemakerCalculation.exit_codes.ERROR_MISSING_ACTIVE_SET.status:
            # A fixed basis was never checked against the dataset: say why pace_activeset gave up.
            n_functions = basis_size(fit.outputs.retrieved).get("n_functions")
            environments = atomic_environments(labelled_frames(self.inputs.dataset))
            short = underdetermined_elements(n_functions, environments) if n_functions else {}
            if short:
                basis = {knob: self.ctx.hyperparameters[knob] for knob in KNOBS}
                return self.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.format(
                    counts=element_counts(short),
                    needed=functions_per_element(n_functions, len(environments)),
                    basis=f"the basis {basis} ({n_functions} functions)",
                )
        if not fit.is_finished_ok:
            return self.exit_codes.ERROR_FIT_FAILED.format(message=fit.exit_message)
        self.ctx.final = self.ctx.fit
        if "reference" in self.ctx.fit.outputs:
            self.ctx.reference = self.ctx.fit.outputs.reference  # per-element energies refitted to this fit
        return None

    def should_fine_tune(self):
        return "relabelled_dataset" in self.inputs

    def run_fine_tune(self):
        dataset = self.inputs.relabelled_dataset
        if self.ctx.reference is not None:
            self.ctx.reference = refit_atomic_energies(dataset, self.ctx.reference)
        fine_tune = {
            **FINE_TUNE_DEFAULTS,
            **(self.inputs.fine_tune.get_dict() if "fine_tune" in self.inputs else {}),
        }
        parameters = self._parameters(self.ctx.hyperparameters, max_iterations=fine_tune["max_iterations"])
        inputs = self._inputs(dataset, parameters, initial_potential=self.ctx.fit.outputs.potential_yaml)
        inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": "fine_tune"}
        return ToContext(fine_tune=self.submit(PacemakerCalculation, **inputs))

    def inspect_fine_tune(self):
        if not self.ctx.fine_tune.is_finished_ok:
            return self.exit_codes.ERROR_FINE_TUNE_FAILED.format(message=self.ctx.fine_tune.exit_message)
        self.ctx.final = self.ctx.fine_tune
        self.out("scalar_relativistic_potential", self.ctx.fit.outputs.potential_yaml)
        return None

    def results(self):
        self.out_many(self.exposed_outputs(self.ctx.final, PacemakerCalculation))
        if "reference" in self.ctx.final.outputs:
            self.out("reference", self.ctx.final.outputs.reference)
        if "pareto_front" in self.ctx:
            self.out("pareto_front", self.ctx.pareto_front)
        self.out("hyperparameters", self.ctx.hyperparameters)
