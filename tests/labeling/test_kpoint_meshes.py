"""k-point meshes for a labeling batch: aiida-quantumespresso's spacing rule, one calcfunction per batch."""

import math

import numpy as np


def mesh_at_spacing(atoms, spacing):
    """ceil(|b_i| / spacing) for each reciprocal vector b_i (2 pi included), the rule of
    KpointsData.set_kpoints_mesh_from_density."""
    reciprocal = 2 * math.pi * np.linalg.inv(atoms.cell.array).T
    return [max(1, math.ceil(round(np.linalg.norm(b) / spacing, 5))) for b in reciprocal]


def test_one_calcfunction_gives_every_structure_its_mesh(aiida_profile):
    from aiida import orm
    from ase.build import bulk

    from aiida_autopipe.calcfunctions.labels import kpoint_meshes

    cells = {
        "si_primitive": bulk("Si", "diamond", a=5.43),
        "si_cubic": bulk("Si", "diamond", a=5.43, cubic=True),
        "cu_doubled": bulk("Cu", "fcc", a=3.6, orthorhombic=True) * (1, 1, 2),
    }
    structures = {key: orm.StructureData(ase=atoms) for key, atoms in cells.items()}
    meshes = kpoint_meshes(orm.Float(0.3), **structures)

    assert set(meshes) == set(cells)
    for key, atoms in cells.items():
        mesh, offset = meshes[key].get_kpoints_mesh()
        assert mesh == mesh_at_spacing(atoms, 0.3), key
        assert offset == [0.0, 0.0, 0.0]
    assert meshes["si_cubic"].get_kpoints_mesh()[0] == [4, 4, 4]  # |b| = 2 pi / 5.43 = 1.157 1/A
    creators = {node.creator.uuid for node in meshes.values()}
    assert len(creators) == 1
    creator = meshes["si_cubic"].creator
    assert {link.link_label for link in creator.base.links.get_incoming().all()} >= {*cells, "distance"}


def test_an_isotropic_cell_gets_an_isotropic_mesh(aiida_profile):
    """aiida-quantumespresso's rule: equal cell vectors give one mesh size (the largest) in all directions."""
    from aiida import orm
    from ase import Atoms

    from aiida_autopipe.calcfunctions.labels import kpoint_meshes

    # a rhombohedral cell with equal vector lengths whose reciprocal vectors differ in length
    cell = [[4.0, 0.0, 0.0], [2.0, 3.4, 0.0], [1.0, 1.0, 3.7]]
    lengths = np.linalg.norm(cell, axis=1)
    cell = [list(np.asarray(vector) * 4.0 / length) for vector, length in zip(cell, lengths, strict=True)]
    atoms = Atoms("Si", cell=cell, pbc=True)
    mesh = kpoint_meshes(orm.Float(0.2), cell=orm.StructureData(ase=atoms))["cell"].get_kpoints_mesh()[0]
    assert len(set(mesh)) == 1
    assert mesh[0] == max(mesh_at_spacing(atoms, 0.2))
    assert mesh_at_spacing(atoms, 0.2) != mesh  # the rule did change this cell's mesh
