"""`KmcCalculation` run for real through AiiDA on localhost: diffusion coefficients against exact values."""

import itertools

import numpy as np
import pytest
from ase.units import kB


def run_kmc(code, parameters, event_catalogue=None):
    from aiida import orm
    from aiida.engine import run_get_node

    builder = code.get_builder()
    builder.parameters = orm.Dict(parameters)
    if event_catalogue is not None:
        builder.event_catalogue = orm.ArrayData(event_catalogue)
    builder.metadata.options.max_wallclock_seconds = 300
    return run_get_node(builder)


def test_dilute_lattice_gas_diffuses_at_the_analytic_rate(aiida_profile_clean, kmc_code):
    """20 particles on 100 x 100 sites: tracer D = k a^2 with k = nu exp(-Ea / kB T) per direction (the
    exclusion correction, about 2c = 0.4 %, is below the error bar)."""
    spacing, barrier, temperature = 2.55, 0.3, 300.0
    parameters = {
        "lattice_size": 100,
        "spacing": spacing,
        "barrier": barrier,
        "temperature": temperature,
        "n_particles": 20,
        "steps": 400_000,
        "n_records": 4000,
        "seed": 3,
    }
    results, node = run_kmc(kmc_code, parameters)
    assert node.is_finished_ok, node.exit_message
    output = results["output_parameters"].get_dict()
    exact = 1e12 * np.exp(-barrier / (kB * temperature)) * spacing**2
    assert output["diffusion_coefficient_dilute_limit"] == pytest.approx(exact, rel=1e-9)
    estimate, error = output["diffusion_coefficient"], output["diffusion_coefficient_error"]
    assert abs(estimate - exact) < 4 * error and error < 0.02 * exact
    assert output["steps"] == 400_000 and output["mean_occupation_by_site_type"] == pytest.approx([0.002])
    assert output["steps_per_second"] > 0 and output["cpu_seconds_per_step"] > 0
    trajectory = results["trajectory"]
    n_records = output["n_records"]
    assert 3000 < n_records <= 4000  # the default interval spreads the records over the expected run
    assert trajectory.get_array("displacements").shape == (n_records, 20, 2)
    assert trajectory.get_array("sites").shape == (n_records, 20)
    assert np.allclose(np.diff(trajectory.get_array("times")), output["record_interval"])


def test_atomistic_event_catalogue_walk_matches_exact_diffusion(aiida_profile_clean, kmc_code):
    """A vacancy in fcc Cu whose four in-plane hops are slower (an anisotropic catalogue, Tier 2
    prefactors for the fast hops): D = sum_i k_i |d_i|^2 / 6 exactly, as the catalogue is reused."""
    a = 3.61
    vectors = np.array(
        [v for v in itertools.product((-1, 0, 1), repeat=3) if sum(map(abs, v)) == 2], dtype=float
    ) * (a / 2)
    slow = vectors[:, 2] == 0  # the four in-plane hops (in +/- pairs: no drift)
    barriers = np.where(slow, 0.85, 0.70)
    prefactors = np.where(slow, 1e12, 3.2e12)
    catalogue = {
        "barriers": barriers,
        "prefactors": prefactors,
        "displacements": vectors,
        "tiers": np.where(slow, 1, 2),
    }
    parameters = {"temperature": 600.0, "steps": 1_000_000, "n_records": 20_000, "seed": 1}
    results, node = run_kmc(kmc_code, parameters, catalogue)
    assert node.is_finished_ok, node.exit_message
    output = results["output_parameters"].get_dict()
    rates = prefactors * np.exp(-barriers / (kB * 600.0))
    exact = np.sum(rates * np.sum(vectors**2, axis=1)) / 6
    assert output["diffusion_coefficient_exact"] == pytest.approx(exact, rel=1e-9)
    estimate, error = output["diffusion_coefficient"], output["diffusion_coefficient_error"]
    assert abs(estimate - exact) < 4 * error and error < 0.02 * exact
    assert output["n_tier2_events"] == 8
    assert output["simulated_time"] == pytest.approx(1_000_000 / rates.sum(), rel=0.01)  # <dt> = 1 / K
    counts = results["trajectory"].get_array("event_counts")
    assert counts.sum() == 1_000_000
    assert counts[slow].sum() / counts.sum() == pytest.approx(rates[slow].sum() / rates.sum(), abs=0.003)
    assert output["drift_velocity"] == pytest.approx([0, 0, 0], abs=1e-6 * np.sqrt(exact * rates.sum()))


def test_bad_input_gives_a_numbered_exit_code(aiida_profile_clean, kmc_code):
    _, node = run_kmc(kmc_code, {"coverage": 0.1, "n_particles": 5, "steps": 10})
    assert node.exit_status == 310
    assert "exactly one of coverage and n_particles" in node.exit_message
    _, node = run_kmc(kmc_code, {"coverage": 0.5, "steps": 10, "tempreature": 300})
    assert node.exit_status == 310 and "tempreature" in node.exit_message
    _, node = run_kmc(kmc_code, {"coverage": 0.5, "steps": 10, "barrier": 100.0})  # every rate underflows
    assert node.exit_status == 310 and "no particle can hop" in node.exit_message


def test_lattice_that_runs_out_of_hops_stalls_with_its_outputs(aiida_profile_clean, kmc_code):
    """Checkerboard with 50 eV high sites: particles start on both, drop onto low sites, then nothing can
    hop (every low site's neighbours are high sites): exit code 320, trajectory and results attached."""
    parameters = {"lattice_size": 10, "site_energies": [0.0, 50.0], "n_particles": 20, "steps": 1000}
    results, node = run_kmc(kmc_code, parameters)
    assert node.exit_status == 320 and "no possible hop" in node.exit_message
    output = results["output_parameters"].get_dict()
    assert output["status"] == "stalled" and 0 < output["steps"] <= 20
    assert output["mean_occupation_by_site_type"][0] > 0.2  # the time average sits on the low sites
    assert "times" in results["trajectory"].get_arraynames()


def test_saddle_search_inputs_are_checked_before_submission(aiida_profile_clean, kmc_code):
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    builder = kmc_code.get_builder()
    builder.parameters = orm.Dict({"steps": 10})
    builder.structure = orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True))
    with pytest.raises(ValueError, match="needs potential and active_set"):
        run_get_node(builder)
    builder.potential = orm.SinglefileData.from_string("not read", "potential.yaml")
    builder.active_set = orm.SinglefileData.from_string("not read", "potential.asi")
    builder.event_catalogue = orm.ArrayData({"barriers": np.ones(1)})
    with pytest.raises(ValueError, match="either structure"):
        run_get_node(builder)
