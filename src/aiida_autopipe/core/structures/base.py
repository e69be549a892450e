"""The record every generator returns, and homogeneous strains shared by all methods."""

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

#: Voigt order of the strain tuples: xx, yy, zz, yz, xz, xy (tensor components, not engineering shears).
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@dataclass
class GeneratedStructure:
    """One generated structure and how it was made.

    ``strain`` is the symmetric linear strain applied to the parent (Voigt order xx yy zz yz xz xy),
    ``temperature`` the sampling or melt temperature in K, ``parent`` the label of the structure it came from.
    """

    atoms: Atoms
    method: str
    label: str
    parent: str | None = None
    strain: tuple[float, ...] | None = None
    temperature: float | None = None
    details: dict = field(default_factory=dict)


def strain_tensor(voigt: tuple[float, ...]) -> np.ndarray:
    """Symmetric 3x3 strain tensor from its Voigt six-vector (tensor shear components)."""
    tensor = np.zeros((3, 3))
    for value, (i, j) in zip(voigt, VOIGT_PAIRS, strict=True):
        tensor[i, j] = tensor[j, i] = value
    return tensor


def apply_strain(atoms: Atoms, voigt: tuple[float, ...]) -> Atoms:
    """Deform cell and atoms homogeneously by (1 + strain)."""
    strained = atoms.copy()
    deformation = np.eye(3) + strain_tensor(voigt)
    strained.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
    return strained


def volumetric_strain(volume_change: float) -> tuple[float, ...]:
    """Isotropic linear strain giving the relative volume change dV/V."""
    linear = (1.0 + volume_change) ** (1.0 / 3.0) - 1.0
    return (linear, linear, linear, 0.0, 0.0, 0.0)


def shear_strain(component: int, value: float) -> tuple[float, ...]:
    """Pure shear: tensor component yz (3), xz (4) or xy (5) set to ``value``."""
    voigt = [0.0] * 6
    voigt[component] = value
    return tuple(voigt)


def strain_variants(
    structure: GeneratedStructure, volume_changes: tuple[float, ...], shears: tuple[float, ...]
) -> list[GeneratedStructure]:
    """Volume-strained copies (each dV/V) and sheared copies (each value on yz, xz and xy) of a structure."""
    strains = [volumetric_strain(change) for change in volume_changes]
    strains += [shear_strain(component, value) for value in shears for component in (3, 4, 5)]
    variants = []
    for index, voigt in enumerate(strains):
        variants.append(
            GeneratedStructure(
                atoms=apply_strain(structure.atoms, voigt),
                method=f"{structure.method}_strained",
                label=f"{structure.label}_strain{index}",
                parent=structure.label,
                strain=tuple(float(value) for value in voigt),
                temperature=structure.temperature,
            )
        )
    return variants
