"""TrainingWorkChain on real pw.x Si labels: basis search, Pareto front, final fit, fine-tune, warm start."""

import io

import pytest
from training_helpers import TINY

#: Few iterations everywhere: the test checks the orchestration and the warm starts, not accuracy.
OVERRIDES = {
    "mlip_training": {"r_cut": TINY["r_cut"], "max_iterations": 4, "test_fraction": 0.25},
    "search": {"max_iterations": 3, "n_folds": 2},
    "fine_tune": {"max_iterations": 3},
}


def dataset_node(frames, filename):
    from aiida import orm

    from aiida_autopipe.core.pacemaker_input import write_labelled_frames

    handle = io.StringIO()
    write_labelled_frames(frames, handle)
    return orm.SinglefileData(io.BytesIO(handle.getvalue().encode()), filename=filename)


def called(node, label):
    return next(child for child in node.called if child.base.links.get_incoming().first().link_label == label)


def test_search_leaves_out_bases_the_dataset_cannot_determine(aiida_profile):
    """The more accurate basis would be the knee of two points, but 33 Mg environments cannot determine its 71
    functions per element, so the smaller one is chosen."""
    from aiida import orm

    from aiida_autopipe.workflows.training import select_basis

    grid = [{"body_order": 3, "polynomial_degree": degree, "radial_basis_size": 4} for degree in (1, 2)]

    def fold(n_functions, forces_rmse, cost):
        return orm.Dict(
            {
                "test": {"energy_rmse": 0.01, "forces_rmse": forces_rmse},
                "evaluation_cost_us_per_atom_step": cost,
                "n_functions": n_functions,
            }
        )

    results = select_basis(
        orm.List(grid),
        orm.Dict({}),
        orm.Dict({"Al": 287, "Mg": 33}),
        point_0_fold_0=fold(40, 0.2, 1.0),
        point_1_fold_0=fold(142, 0.1, 2.0),
    )
    front = results["pareto_front"].get_dict()
    assert [point["polynomial_degree"] for point in front["points"]] == [1]
    assert front["excluded"] == [{**grid[1], "n_functions": 142, "too_few_environments": {"Mg": 33}}]
    assert results["hyperparameters"].get_dict()["polynomial_degree"] == 1


def test_a_fixed_basis_too_large_for_the_dataset_is_named_in_the_exit(pacemaker_codes, si_frames):
    """No search checks a fixed basis: when pace_activeset gives up, the exit says which element is short."""
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.training import TrainingWorkChain

    fixed = {knob: TINY[knob] for knob in ("body_order", "polynomial_degree", "radial_basis_size")}
    overrides = {**OVERRIDES, "mlip_training": {**OVERRIDES["mlip_training"], **fixed}}
    few = [atoms for atoms in si_frames if len(atoms) == 2][:4]  # 8 Si environments
    builder = TrainingWorkChain.get_builder_from_protocol(
        pacemaker_codes, dataset_node(few, "few.extxyz"), protocol="fast", overrides=overrides
    )
    _, node = run_get_node(builder)
    assert node.exit_status == TrainingWorkChain.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.status
    assert "(Si 8)" in node.exit_message and "fix a smaller basis" in node.exit_message


@pytest.fixture(scope="module")
def first_generation(pacemaker_codes, si_frames):
    """Search (2 bases x 2 folds) and fit on the 2-atom cells, then fine-tune on new 8-atom labels."""
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.training import TrainingWorkChain

    small = [atoms for atoms in si_frames if len(atoms) == 2]
    new = [atoms for atoms in si_frames if len(atoms) == 8][:4]
    builder = TrainingWorkChain.get_builder_from_protocol(
        pacemaker_codes, dataset_node(small, "small.extxyz"), protocol="fast", overrides=OVERRIDES
    )
    builder.relabelled_dataset = dataset_node(new, "new.extxyz")
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results, node


def test_search_gives_pareto_front_and_knee(first_generation):
    results, _ = first_generation
    front = results["pareto_front"].get_dict()
    assert len(front["points"]) == 2  # polynomial_degree 1 and 2 of the fast protocol
    assert all(point["cost"] > 0 and point["error"] > 0 for point in front["points"])
    assert front["knee"] in front["front"]
    chosen = results["hyperparameters"].get_dict()
    assert chosen == {
        key: front["knee"][key] for key in ("body_order", "polynomial_degree", "radial_basis_size")
    }


def test_fine_tune_warm_starts_from_the_fit(first_generation):
    results, node = first_generation
    fit, fine_tune = called(node, "fit"), called(node, "fine_tune")
    assert fine_tune.inputs.initial_potential.uuid == fit.outputs.potential_yaml.uuid
    assert results["scalar_relativistic_potential"].uuid == fit.outputs.potential_yaml.uuid
    assert results["potential_yaml"].uuid == fine_tune.outputs.potential_yaml.uuid
    assert "active_set" in results and "lammps_snippet" in results
    # Same basis as the fit: the coefficients were carried over, not rebuilt.
    fit_size = fit.outputs.output_parameters["n_coefficients"]
    assert fine_tune.outputs.output_parameters["n_coefficients"] == fit_size


def test_next_generation_starts_where_the_last_fit_ended(first_generation, pacemaker_codes, si_frames):
    """Previous potential, basis and reference passed on: no search; the loss starts at the old optimum."""
    from aiida.engine import run_get_node

    from aiida_autopipe.workflows.training import TrainingWorkChain

    results, node = first_generation
    fit = called(node, "fit")
    builder = TrainingWorkChain.get_builder_from_protocol(
        pacemaker_codes, fit.inputs.dataset, protocol="fast", overrides=OVERRIDES
    )
    builder.previous_potential = results["scalar_relativistic_potential"]
    builder.hyperparameters = results["hyperparameters"]
    builder.reference = fit.inputs.reference
    second, second_node = run_get_node(builder)
    assert second_node.is_finished_ok, second_node.exit_message
    assert "pareto_front" not in second
    old_history = fit.outputs.loss_history.get_array("train")
    new_history = second["loss_history"].get_array("train")
    assert new_history[0, 1] == pytest.approx(old_history[-1, 1], rel=1e-6)
