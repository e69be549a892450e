"""A small but real provenance graph shaped like an ActiveLearningWorkChain run, for the report tests.

`StandInRunWorkChain` calls real processes under the link labels the collector walks (`explorer`,
`training_<g>`, `simulation_<g>`) and returns the run's outputs (dataset, potential, metrics, full config).
Labels are Module D's real pw.x Si frames; the potentials are small pyace ACE potentials with random
coefficients (no fit, so the test stays fast), evaluated for real on the frames; DIRECT and the gamma
threshold are the project's own functions.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction

from aiida_autopipe.calcfunctions.dataset import dataset_node, describe
from aiida_autopipe.calcfunctions.metrics import record_metrics
from aiida_autopipe.calcfunctions.threshold import generation_threshold
from aiida_autopipe.core.baseline import ReferencePlusACECalculator
from aiida_autopipe.core.direct import direct_select
from aiida_autopipe.core.pacemaker_input import read_labelled_frames
from aiida_autopipe.reporting.arrays import parity_data, rmse

SI_LABELS = Path(__file__).parents[1] / "training" / "data" / "si_pwx_labels.extxyz"
DFT_COMPUTE = {
    "pseudo_family": "PseudoDojo/0.4/PBE/SR/standard/upf",
    "ecutwfc": 30.0,
    "ecutrho": 120.0,
    "smearing": "mv",
    "degauss": 0.02,
    "soc_enabled": False,
    "kpoints_density": 0.3,
}
FRAMES_PER_GENERATION = {0: 8, 1: 16}


def random_ace_potential(elements, seed: int) -> str:
    """pacemaker-format .yaml text of a small ACE basis with random coefficients."""
    import tempfile

    from pyace import create_multispecies_basis_config

    basis = create_multispecies_basis_config(
        {
            "deltaSplineBins": 0.001,
            "elements": list(elements),
            "embeddings": {
                "ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}
            },
            "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
            "functions": {"ALL": {"nradmax_by_orders": [4, 2], "lmax_by_orders": [0, 1]}},
        }
    )
    coefficients = basis.get_all_coeffs()
    basis.set_all_coeffs(0.05 * np.random.default_rng(seed).normal(size=len(coefficients)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "potential.yaml"
        basis.save(str(path))
        return path.read_text()


@calcfunction
def labelled_frames_stand_in(count: orm.Int) -> orm.SinglefileData:
    """The first `count` real pw.x Si labels as a dataset node."""
    return dataset_node(read_labelled_frames(SI_LABELS)[: count.value])


@calcfunction
def explore_stand_in(seed: orm.Int) -> dict:
    """Descriptors of 60 'surrogate frames' in three clusters and the real DIRECT pick over them."""
    rng = np.random.default_rng(seed.value)
    centres = rng.normal(scale=5.0, size=(3, 6))
    features = np.concatenate([centre + rng.normal(size=(20, 6)) for centre in centres])
    selection = direct_select(features, budget=6, seed=seed.value)
    trajectory = orm.ArrayData()
    trajectory.set_array("descriptors", features)
    trajectory.set_array("n_atoms", np.full(len(features), 2))
    return {
        "trajectory": trajectory,
        "selection": orm.Dict(
            {**selection.summary(), "indices": selection.indices.tolist(), "n_frames": len(features)}
        ),
    }


@calcfunction
def fit_stand_in(dataset: orm.SinglefileData, seed: orm.Int) -> dict:
    """A random-coefficient ACE potential and its real errors on the dataset (plain ACE, no constants)."""
    text = random_ace_potential(["Si"], seed.value)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, dataset.open(mode="r") as handle:
        path = Path(tmp) / "potential.yaml"
        path.write_text(text)
        data = parity_data(read_labelled_frames(handle), ReferencePlusACECalculator(str(path)))
    errors = {
        "energy_rmse": rmse(data["energy_label"], data["energy_predicted"]),
        "forces_rmse": rmse(data["forces_label"], data["forces_predicted"]),
    }
    return {
        "output_parameters": orm.Dict({"train": errors, "atomic_energies": {}}),
        "potential_yaml": orm.SinglefileData(io.BytesIO(text.encode()), filename="potential.yaml"),
    }


@calcfunction
def otf_md_stand_in(seed: orm.Int) -> dict:
    """A 'halting frame' with per-atom gammas above the usual thresholds."""
    gamma = orm.ArrayData()
    gamma.set_array("gamma", 3.0 + np.random.default_rng(seed.value).random(16) * 5.0)
    return {"halting_gamma": gamma}


class SimulationStandInWorkChain(WorkChain):
    """Module E's shape: the generation's threshold from training-set gammas, one halting MD child."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("training_gammas", valid_type=orm.ArrayData)
        spec.input("generation", valid_type=orm.Int)
        spec.outline(cls.run_md, cls.results)
        spec.output("threshold", valid_type=orm.Dict)

    def run_md(self):
        otf_md_stand_in(self.inputs.generation, metadata={"call_link_label": "md_seed_T0"})

    def results(self):
        setting = orm.Dict({"uncertainty_threshold": "dynamic_95percentile"})
        self.out(
            "threshold", generation_threshold(setting, self.inputs.generation, self.inputs.training_gammas)
        )


class StandInRunWorkChain(WorkChain):
    """explorer, training_0, simulation_1, training_1, results: linked as ActiveLearningWorkChain does."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.outline(cls.explore_and_train, cls.simulate, cls.retrain, cls.results)
        for name in ("dataset", "potential_yaml", "metrics", "full_config"):
            spec.output(name)

    def explore_and_train(self):
        explore_stand_in(orm.Int(0), metadata={"call_link_label": "explorer"})
        self.ctx.dataset = labelled_frames_stand_in(orm.Int(FRAMES_PER_GENERATION[0]))
        describe(self.ctx.dataset)
        self.ctx.fit = fit_stand_in(self.ctx.dataset, orm.Int(0), metadata={"call_link_label": "training_0"})

    def simulate(self):
        gammas = orm.ArrayData()  # Module D's held_out_gammas: 40 frames of 5 atoms, one atom ungraded
        values = np.random.default_rng(1).gamma(2.0, 0.8, size=200)
        values[7] = np.nan
        gammas.set_array("gamma", values)
        gammas.set_array("frame_index", np.repeat(np.arange(40), 5))
        inputs = {
            "training_gammas": gammas,
            "generation": orm.Int(1),
            "metadata": {"call_link_label": "simulation_1"},
        }
        return ToContext(simulation=self.submit(SimulationStandInWorkChain, **inputs))

    def retrain(self):
        self.ctx.dataset = labelled_frames_stand_in(orm.Int(FRAMES_PER_GENERATION[1]))
        describe(self.ctx.dataset)
        self.ctx.fit = fit_stand_in(self.ctx.dataset, orm.Int(1), metadata={"call_link_label": "training_1"})

    def results(self):
        threshold = self.ctx.simulation.outputs.threshold["threshold"]
        rows = [{"generation": 1, "labels_added": 8, "uncertain_events": 1, "threshold": threshold}]
        self.out("dataset", self.ctx.dataset)
        self.out("potential_yaml", self.ctx.fit["potential_yaml"])
        self.out("metrics", record_metrics(orm.Dict({"generations": rows, "final_errors": {}})))
        config = orm.Dict({"system": {"elements": ["Si"]}, "dft_compute": DFT_COMPUTE}).store()
        self.out("full_config", config)
