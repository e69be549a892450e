"""Report, registry and archive round trip on a real (small) provenance graph in the test profile."""

import subprocess

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from click.testing import CliRunner
from reporting_helpers import DFT_COMPUTE, FRAMES_PER_GENERATION, StandInRunWorkChain

from aiida_autopipe.cli.main import cli
from aiida_autopipe.core.pacemaker_input import read_labelled_frames
from aiida_autopipe.reporting.collect import collect_run
from aiida_autopipe.reporting.report import FIGURES, SUMMARY_FILE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_node(aiida_profile):
    _, node = run_get_node(StandInRunWorkChain)
    assert node.is_finished_ok, node.exit_message
    return node


def test_collector_walks_the_children_by_link_label(run_node):
    run = collect_run(run_node)
    assert [row["generation"] for row in run.generations] == [0, 1]
    assert [row["n_frames"] for row in run.generations] == [
        FRAMES_PER_GENERATION[0],
        FRAMES_PER_GENERATION[1],
    ]
    assert all(row["train_forces_rmse"] > 0 for row in run.generations)
    assert run.generations[1]["uncertain_events"] == 1
    threshold = run_node.outputs.metrics["generations"][0]["threshold"]
    assert run.thresholds == {1: pytest.approx(threshold)}
    # The threshold's statistic (largest gamma per frame): 40 held-out frames, one halting frame.
    assert run.gamma_statistic == "frame_max"
    assert len(run.training_gammas[1]) == 40 and len(run.halting_gammas[1]) == 1
    halting = [
        link.node for link in run_node.base.links.get_outgoing().all() if link.link_label == "simulation_1"
    ]
    (md,) = [
        link.node for link in halting[0].base.links.get_outgoing().all() if link.link_label == "md_seed_T0"
    ]
    assert run.halting_gammas[1][0] == md.outputs.halting_gamma.get_array("gamma").max()
    assert len(run.frames) == FRAMES_PER_GENERATION[1] and run.elements == ["Si"]
    assert run.direct["selected"].size == 6 and run.direct["arrays"]["descriptors"].shape == (60, 6)
    assert run.potential_yaml == run_node.outputs.potential_yaml.get_content(mode="rb")


def test_report_command_writes_every_figure_and_the_summary(run_node, aiida_profile, tmp_path):
    result = CliRunner().invoke(
        cli, ["report", str(run_node.pk), "--out", str(tmp_path), "--profile", aiida_profile.name]
    )
    assert result.exit_code == 0, result.output
    for filename in FIGURES.values():
        data = (tmp_path / filename).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, filename
    page = (tmp_path / SUMMARY_FILE).read_text()
    assert f"| 1 | {FRAMES_PER_GENERATION[1]} |" in page
    assert "## Final potential on its labelled frames" in page
    # The parity plots evaluate the final potential anew: its RMSE must equal the one its fit recorded.
    (training_1,) = [
        link.node for link in run_node.base.links.get_outgoing().all() if link.link_label == "training_1"
    ]
    recorded = training_1.outputs.output_parameters["train"]["forces_rmse"]
    assert f"force RMSE {1000 * recorded:.3g} meV/Å" in page, page


def test_verdi_node_graph_generate_on_the_run(run_node, aiida_profile, tmp_path):
    output = tmp_path / "graph.png"
    completed = subprocess.run(
        [
            *("verdi", "-p", aiida_profile.name, "node", "graph", "generate"),
            *("-f", "png", "-O", str(output), str(run_node.pk)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert output.read_bytes().startswith(PNG_MAGIC)


def test_archive_round_trip_into_a_fresh_profile(
    run_node, aiida_profile, aiida_config_factory, aiida_profile_factory, tmp_path
):
    from aiida_autopipe.reporting.registry import prior_dataset, registered_datasets, structures_to_label

    archive = tmp_path / "run.aiida"
    runner = CliRunner()
    result = runner.invoke(
        cli, ["export", str(run_node.pk), "--out", str(archive), "--profile", aiida_profile.name]
    )
    assert result.exit_code == 0, result.output
    dataset_uuid = run_node.outputs.dataset.uuid
    assert len(read_labelled_frames(archive.with_suffix(".extxyz"))) == FRAMES_PER_GENERATION[1]
    assert orm.Group.collection.get(label="autopipe/datasets/Si").count() == 1

    with (
        aiida_config_factory(tmp_path / "fresh") as config,
        aiida_profile_factory(config, name="fresh") as fresh,
    ):
        assert orm.QueryBuilder().append(orm.SinglefileData).count() == 0
        result = runner.invoke(cli, ["import", str(archive), "--profile", fresh.name])
        assert result.exit_code == 0, result.output
        assert f"Si, {FRAMES_PER_GENERATION[1]} frames" in result.output

        (dataset,) = registered_datasets(["Si", "Ge"])
        assert dataset.uuid == dataset_uuid
        assert dataset.base.extras.get("dft_settings")["ecutwfc"] == DFT_COMPUTE["ecutwfc"]
        assert dataset.creator is not None  # provenance came along
        assert orm.load_group("autopipe/datasets/Si").count() == 1
        assert registered_datasets(["Ge"]) == []
        listing = runner.invoke(cli, ["datasets", "--elements", "Si,Ge", "--profile", fresh.name])
        assert listing.exit_code == 0 and f"{dataset.pk}\tSi\t" in listing.output

        # An Si-Ge run starts from the imported Si frames; only the compositions they lack get labels.
        prior, notes = prior_dataset(["Si", "Ge"], DFT_COMPUTE)
        assert prior.base.extras.get("number_of_frames") == FRAMES_PER_GENERATION[1], notes
        assert prior.creator.process_label == "reusable_frames"
        structures = {"si": _structure(["Si", "Si"]), "sige": _structure(["Si", "Ge"])}
        assert list(structures_to_label(structures, prior)) == ["sige"]
        skipped, notes = prior_dataset(["Si", "Ge"], {**DFT_COMPUTE, "ecutwfc": 60.0})
        assert skipped is None and "ecutwfc: 30.0 != 60.0" in notes[0]


def _structure(symbols):
    structure = orm.StructureData(cell=np.eye(3) * 5.0)
    for index, symbol in enumerate(symbols):
        structure.append_atom(position=(1.2 * index, 0, 0), symbols=symbol)
    return structure
