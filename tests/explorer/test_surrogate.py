"""Surrogate resolution and real surrogate MD/relaxation with the runner (tiny MACE trained here, CHGNet)."""

import urllib.error

import numpy as np
import pytest
from ase.io import write

from aiida_autopipe.core.errors import InputError
from aiida_autopipe.core.surrogate import SurrogateChoice, resolve_surrogate
from aiida_autopipe.runners import surrogate as runner

pytestmark = pytest.mark.surrogate


def run_runner(tmp_path, structures, tasks, surrogate, **extra):
    write(tmp_path / "structures.extxyz", structures)
    config = {"surrogate": surrogate, "structures": "structures.extxyz", "tasks": tasks, "seed": 3}
    config.update(torch_threads=1, **extra)
    code, results = runner.run(config, tmp_path)
    arrays = (
        dict(np.load(tmp_path / runner.TRAJECTORY_FILE))
        if (tmp_path / runner.TRAJECTORY_FILE).exists()
        else {}
    )
    return code, results, arrays


def test_offline_mace_mp_falls_back_to_chgnet_and_says_why(monkeypatch):
    from mace.calculators import foundations_models

    def offline(model=None):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(foundations_models, "download_mace_mp_checkpoint", offline)
    choice = resolve_surrogate("mace_mp:small", device="cpu")
    assert (choice.name, choice.model, choice.device) == ("chgnet", "0.3.0", "cpu")
    assert "mace_mp:small requested" in choice.reason and "fell back to CHGNet 0.3.0" in choice.reason
    assert SurrogateChoice.from_dict(choice.as_dict()) == choice


def test_bad_requests_are_user_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        resolve_surrogate(str(tmp_path / "missing.model"))
    with pytest.raises(InputError, match="unknown surrogate"):
        resolve_surrogate("sevenn")
    with pytest.raises(InputError, match="device"):
        resolve_surrogate("chgnet", device="tpu")


def test_tiny_mace_nvt_npt_and_relax(tmp_path, tiny_mace_model, cu_seed):
    tasks = [
        {"kind": "md", "ensemble": "nvt", "temperatures": [300, 1200], "steps": 8, "save_every": 4},
        {"kind": "md", "ensemble": "npt", "temperatures": [600], "pressures": [10.0], "steps": 8,
         "save_every": 4, "barostat_time": 100.0},
        {"kind": "relax", "fmax": 0.01, "steps": 10, "save_every": 5, "relax_cell": True},
    ]  # fmt: skip
    rattled = cu_seed.copy()
    rattled.rattle(0.05, seed=2)
    surrogate = {"requested": str(tiny_mace_model), "device": "auto"}
    code, results, arrays = run_runner(tmp_path, [rattled], tasks, surrogate, descriptor={"kind": "ace"})
    assert code == runner.EXIT_OK, results
    assert results["surrogate"]["name"] == "mace" and results["surrogate"]["device"] == "cpu"
    nvt_cold, nvt_hot, npt, relax = results["runs"]
    assert (nvt_cold["temperature"], nvt_hot["temperature"], npt["pressure"]) == (300, 1200, 10.0)
    for record in (nvt_cold, nvt_hot, npt):
        assert record["status"] == "completed" and record["n_frames"] == 3  # steps 0, 4, 8
    n_frames = results["n_frames"]
    assert len(arrays["energies"]) == len(arrays["cells"]) == len(arrays["descriptors"]) == n_frames
    assert arrays["positions"].shape == arrays["forces"].shape == (4 * n_frames, 3)
    assert np.all(np.isfinite(arrays["energies"])) and np.all(np.isfinite(arrays["stress"]))
    # NVT keeps the cell; NPT at 10 GPa moves it
    nvt_cells = arrays["cells"][arrays["run_index"] == 0]
    np.testing.assert_allclose(nvt_cells, np.broadcast_to(nvt_cells[0], nvt_cells.shape))
    npt_volumes = np.abs(np.linalg.det(arrays["cells"][arrays["run_index"] == 2]))
    assert npt_volumes[-1] < npt_volumes[0] - 0.01  # compressed by 10 GPa
    # the relaxation ends lower than it started and its last frame is the relaxed structure
    relax_energies = arrays["energies"][arrays["run_index"] == 3]
    assert relax["status"] in ("converged", "not_converged") and relax_energies[-1] < relax_energies[0]
    last = runner.frame_atoms(arrays, n_frames - 1)
    assert last.get_potential_energy() == pytest.approx(relax_energies[-1])


def test_unstable_runs_are_reported_not_crashed(tmp_path, tiny_mace_model, cu_seed):
    cu_seed.rattle(0.2, seed=1)
    tasks = [{"kind": "md", "temperatures": [300], "steps": 4, "save_every": 2, "max_force": 1e-6}]
    code, results, _ = run_runner(tmp_path, [cu_seed], tasks, {"requested": str(tiny_mace_model)})
    assert code == runner.EXIT_ALL_UNSTABLE
    assert results["runs"][0]["status"] == "unstable" and "max_force" in results["runs"][0]["message"]


def test_invalid_task_is_rejected_before_loading_a_model(tmp_path, cu_seed):
    code, results, arrays = run_runner(tmp_path, [cu_seed], [{"kind": "md", "ensemble": "nve"}], {})
    assert code == runner.EXIT_INVALID_INPUT and "nve" in results["message"] and not arrays


def test_chgnet_nvt_on_a_tiny_cell(tmp_path):
    from ase.build import bulk

    silicon = bulk("Si", "diamond", a=5.43)
    tasks = [{"kind": "md", "ensemble": "nvt", "temperatures": [500], "steps": 3, "save_every": 1}]
    code, results, arrays = run_runner(tmp_path, [silicon], tasks, {"requested": "chgnet", "device": "cpu"})
    assert code == runner.EXIT_OK, results
    assert results["surrogate"]["name"] == "chgnet" and "weights shipped" in results["surrogate"]["reason"]
    assert results["runs"][0]["n_frames"] == 4
    # CHGNet knows silicon: about -5.4 eV/atom at the diamond minimum
    assert np.all(np.abs(arrays["energies"] / 2 + 5.4) < 0.3)
    assert np.abs(arrays["forces"]).max() > 0
