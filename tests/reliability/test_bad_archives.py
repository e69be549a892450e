"""Malformed archives and wrong PKs: one line naming the argument and the fix, exit code 2, nothing stored."""

import zipfile

import numpy as np
import pytest
from aiida import orm
from aiida.tools import delete_nodes
from aiida.tools.archive import create_archive
from ase.build import bulk
from click.testing import CliRunner

from aiida_autopipe.calcfunctions.dataset import dataset_node
from aiida_autopipe.cli.main import cli
from aiida_autopipe.reporting.registry import register_dataset


def count_rows() -> int:
    return sum(
        orm.QueryBuilder().append(cls).count() for cls in (orm.Node, orm.Computer, orm.Group, orm.User)
    )


def labelled_silicon_dataset() -> orm.SinglefileData:
    """A stored, registered one-frame Si dataset, as `mlip-pipe export` would archive it."""
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.info["energy"] = -10.0
    atoms.arrays["forces"] = np.zeros((2, 3))
    dataset = dataset_node([atoms]).store()
    register_dataset(dataset)
    return dataset


def archive_of(nodes, path):
    """Write `nodes` to an archive, then delete them so that importing it would really store something."""
    create_archive(nodes, filename=path)
    delete_nodes([node.pk for node in nodes], dry_run=False)
    for group in orm.QueryBuilder().append(orm.Group).all(flat=True):
        orm.Group.collection.delete(group.pk)
    return path


@pytest.fixture
def real_archive(aiida_profile_clean, tmp_path):
    return archive_of([labelled_silicon_dataset()], tmp_path / "si.aiida")


def make_missing(tmp_path, real_archive):
    return tmp_path / "absent.aiida"


def make_empty(tmp_path, real_archive):
    path = tmp_path / "empty.aiida"
    path.write_bytes(b"")
    return path


def make_text(tmp_path, real_archive):
    path = tmp_path / "notes.aiida"
    path.write_text("these are my notes, not an archive\n")
    return path


def make_foreign_zip(tmp_path, real_archive):
    path = tmp_path / "photos.aiida"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.txt", "a zip file, but no AiiDA metadata in it")
    return path


def make_truncated(tmp_path, real_archive):
    path = tmp_path / "truncated.aiida"
    content = real_archive.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    return path


def make_without_dataset(tmp_path, real_archive):
    return archive_of([orm.Int(42).store()], tmp_path / "no_dataset.aiida")


def make_directory(tmp_path, real_archive):
    path = tmp_path / "folder.aiida"
    path.mkdir()
    return path


#: case -> (how to make the file, a phrase of the problem)
BAD_ARCHIVES = {
    "missing file": (make_missing, "does not exist"),
    "empty file": (make_empty, "is empty"),
    "text file": (make_text, "not an AiiDA archive"),
    "folder": (make_directory, "is a folder"),
    "zip without AiiDA metadata": (make_foreign_zip, "not an AiiDA archive"),
    "truncated archive": (make_truncated, "not an AiiDA archive"),
    "archive without a dataset": (make_without_dataset, "no autopipe dataset"),
}


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, field, phrase):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: {field}:"), lines[0]
    assert phrase in lines[0] and "fix:" in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archive_is_one_line_and_imports_nothing(case, real_archive, tmp_path, aiida_profile):
    make, phrase = BAD_ARCHIVES[case]
    path = make(tmp_path, real_archive)
    before = count_rows()
    result = invoke("import", str(path), "--profile", aiida_profile.name)
    assert_one_line_error(result, "ARCHIVE", phrase)
    assert count_rows() == before


def test_one_bad_archive_among_good_ones_imports_nothing(real_archive, tmp_path, aiida_profile):
    before = count_rows()
    result = invoke(
        "import", str(real_archive), str(make_text(tmp_path, real_archive)), "--profile", aiida_profile.name
    )
    assert_one_line_error(result, "ARCHIVE", "not an AiiDA archive")
    assert count_rows() == before


def test_a_good_archive_imports_and_registers_its_dataset(real_archive, aiida_profile):
    """The control: the same checks let a real archive through."""
    result = invoke("import", str(real_archive), "--profile", aiida_profile.name)
    assert result.exit_code == 0, result.output
    assert "Si, 1 frames" in result.output
    assert invoke("datasets", "--elements", "Si", "--profile", aiida_profile.name).output.count("\tSi\t") == 1


@pytest.mark.parametrize("command", ["report", "export"])
def test_unknown_pk_is_one_line(command, aiida_profile_clean, tmp_path):
    before = count_rows()
    result = invoke(command, "999999", "--out", str(tmp_path / "out"), "--profile", aiida_profile_clean.name)
    assert_one_line_error(result, "PK", "no node with pk 999999")
    assert count_rows() == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["report", "export"])
@pytest.mark.parametrize("kind", ["data node", "other work chain"])
def test_pk_of_something_else_is_one_line(command, kind, aiida_profile_clean, tmp_path):
    if kind == "data node":
        node = orm.Int(3).store()
    else:
        node = orm.WorkChainNode(process_type="aiida.workflows:core.arithmetic.add_multiply").store()
    before = count_rows()
    result = invoke(
        command, str(node.pk), "--out", str(tmp_path / "out"), "--profile", aiida_profile_clean.name
    )
    assert_one_line_error(result, "PK", "not an active-learning run")
    assert count_rows() == before
    assert not (tmp_path / "out").exists()
