"""Physical reference potential for delta learning: Lennard-Jones plus ZBL screened-nuclear repulsion.

The ACE potential is fitted to *labels minus reference*, so the total model (reference + ACE) inherits the
reference's physics where the data are silent: a universal ZBL wall when atoms are pushed together, and a
smooth Lennard-Jones tail. Everything here mirrors LAMMPS exactly (``lj/cut`` with ``pair_modify shift yes``
and ``zbl`` with its polynomial switching function), so the ASE calculator and the LAMMPS
``pair_style hybrid/overlay pace lj/cut zbl`` snippet give the same numbers.

Automatic parameters (``base_potential: lj_auto``):

- LJ ``sigma``: the pair's minimum sits at the sum of covalent radii r0, ``sigma = r0 / 2**(1/6)``.
- ZBL switching: from ``inner = 0.5 r0`` to ``outer = 0.8 r0`` of the shortest pair, so the universal
  repulsion is switched off before typical bond lengths and never double counts the LJ minimum.
- LJ ``epsilon`` of each pair and a per-element constant ``e0`` (isolated-atom energy of the functional and
  pseudopotentials) are fitted to the labels by bounded linear least squares (``epsilon >= 0``), with the
  same energy-per-atom and force weights as the ACE loss; both enter linearly once ``sigma`` is fixed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers, covalent_radii
from ase.neighborlist import neighbor_list
from scipy.optimize import lsq_linear

#: e^2 / (4 pi epsilon_0) in eV Angstrom, as LAMMPS' pair zbl uses (qqr2e * qelectron^2, metal units).
COULOMB_EV_ANGSTROM = 14.399645
#: ZBL universal screening function: coefficients and exponents (Ziegler, Biersack, Littmark 1985).
ZBL_COEFFICIENTS = np.array([0.18175, 0.50986, 0.28022, 0.02817])
ZBL_EXPONENTS = np.array([3.19980, 0.94229, 0.40290, 0.20162])
ZBL_INNER_FRACTION = 0.5
ZBL_OUTER_FRACTION = 0.8


def pair_key(element_a: str, element_b: str) -> str:
    """Order-independent name of a pair of elements, e.g. ``'O-Si'``."""
    return "-".join(sorted((element_a, element_b)))


def covalent_bond_length(element_a: str, element_b: str) -> float:
    """Sum of covalent radii (Cordero 2008, ASE's table): where a bond between the two elements sits."""
    return float(covalent_radii[atomic_numbers[element_a]] + covalent_radii[atomic_numbers[element_b]])


def zbl_energy_and_derivative(r: np.ndarray, z_a: np.ndarray, z_b: np.ndarray) -> tuple[np.ndarray, ...]:
    """Unswitched ZBL pair energy and its first two radial derivatives (eV, eV/A, eV/A^2)."""
    screening_length = 0.46850 / (z_a**0.23 + z_b**0.23)
    prefactor = COULOMB_EV_ANGSTROM * z_a * z_b
    decay = ZBL_EXPONENTS / screening_length[..., None]
    terms = ZBL_COEFFICIENTS * np.exp(-decay * r[..., None])
    phi, dphi, d2phi = terms.sum(-1), -(decay * terms).sum(-1), (decay**2 * terms).sum(-1)
    energy = prefactor * phi / r
    first = prefactor * (dphi / r - phi / r**2)
    second = prefactor * (d2phi / r - 2 * dphi / r**2 + 2 * phi / r**3)
    return energy, first, second


@dataclass
class ReferencePotential:
    """LJ (cut and shifted at ``lj_cutoff``) plus switched ZBL, plus a constant energy ``e0`` per atom.

    ``lj`` maps :func:`pair_key` to ``{"epsilon": eV, "sigma": Angstrom}``; ``atomic_energies`` maps elements
    to eV. The per-atom constants do not change forces; they keep the ACE residual centred on zero.
    """

    elements: list[str]
    lj: dict[str, dict[str, float]]
    lj_cutoff: float
    zbl_inner: float
    zbl_outer: float
    atomic_energies: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "elements": list(self.elements),
            "lj": {key: dict(value) for key, value in self.lj.items()},
            "lj_cutoff": self.lj_cutoff,
            "zbl_inner": self.zbl_inner,
            "zbl_outer": self.zbl_outer,
            "atomic_energies": dict(self.atomic_energies),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReferencePotential:
        return cls(**data)

    @property
    def cutoff(self) -> float:
        return max(self.lj_cutoff, self.zbl_outer)

    def _pair_terms(
        self,
        atoms: Atoms,
        lj_scale: dict[str, float] | None = None,
        with_zbl: bool = True,
        pair_list: PairList | None = None,
    ):
        """Per-pair energy and dE/dr over a full neighbour list (each pair twice), plus the list itself."""
        if pair_list is None:
            i, j, r, vectors = neighbor_list("ijdD", atoms, self.cutoff)
        else:
            i, j, r, vectors = pair_list.pairs(atoms)
        numbers = atoms.get_atomic_numbers()
        energy, derivative = np.zeros_like(r), np.zeros_like(r)
        if with_zbl:
            energy, derivative = self._zbl_terms(r, numbers[i].astype(float), numbers[j].astype(float))
        # Pair type of each neighbour pair by a (Z, Z) lookup table: no Python loop over pairs.
        pair_type = np.full((numbers.max() + 1,) * 2, -1)
        keys = list(self.lj)
        for index, key in enumerate(keys):
            z_a, z_b = (atomic_numbers[element] for element in key.split("-"))
            if max(z_a, z_b) <= numbers.max():
                pair_type[z_a, z_b] = pair_type[z_b, z_a] = index
        types = pair_type[numbers[i], numbers[j]]
        within = r < self.lj_cutoff
        for index, key in enumerate(keys):
            params = self.lj[key]
            scale = params["epsilon"] if lj_scale is None else lj_scale[key]
            mask = (types == index) & within
            if scale == 0 or not mask.any():
                continue
            lj_energy, lj_derivative = lennard_jones(r[mask], params["sigma"], self.lj_cutoff)
            energy[mask] += scale * lj_energy
            derivative[mask] += scale * lj_derivative
        return i, r, vectors, energy, derivative

    def _zbl_terms(self, r: np.ndarray, z_a: np.ndarray, z_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LAMMPS ``pair zbl``: E_zbl(r) + S(r), S polynomial in (r - inner) so E, E', E'' vanish at outer."""
        energy, derivative = np.zeros_like(r), np.zeros_like(r)
        inside = r < self.zbl_outer
        if not inside.any():
            return energy, derivative
        r_in, za, zb = r[inside], z_a[inside], z_b[inside]
        width = self.zbl_outer - self.zbl_inner
        e_c, d1_c, d2_c = zbl_energy_and_derivative(np.full_like(r_in, self.zbl_outer), za, zb)
        sw_a = (-3.0 * d1_c + width * d2_c) / width**2
        sw_b = (2.0 * d1_c - width * d2_c) / width**3
        shift = -e_c + width * d1_c / 2.0 - width**2 * d2_c / 12.0
        e_r, d1_r, _ = zbl_energy_and_derivative(r_in, za, zb)
        t = np.clip(r_in - self.zbl_inner, 0.0, None)
        energy[inside] = e_r + shift + t**3 * (sw_a / 3.0 + sw_b / 4.0 * t)
        derivative[inside] = d1_r + t**2 * (sw_a + sw_b * t)
        return energy, derivative

    def energy_forces_stress(
        self, atoms: Atoms, pair_list: PairList | None = None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Total energy (eV), forces (eV/A) and stress (3x3, eV/A^3, ASE sign convention).

        ``pair_list`` (a :class:`PairList` of this cutoff) saves rebuilding neighbours at every MD step.
        """
        i, r, vectors, pair_energy, pair_derivative = self._pair_terms(atoms, pair_list=pair_list)
        per_element = np.bincount(atoms.numbers, minlength=max(atomic_numbers[e] for e in self.elements) + 1)
        energy = 0.5 * pair_energy.sum() + sum(
            e0 * per_element[atomic_numbers[element]] for element, e0 in self.atomic_energies.items()
        )
        pair_forces = (pair_derivative / r)[:, None] * vectors
        forces = np.stack([np.bincount(i, pair_forces[:, a], minlength=len(atoms)) for a in range(3)], axis=1)
        stress = np.zeros((3, 3))
        if atoms.cell.rank == 3:
            stress = 0.5 * (pair_forces.T @ vectors) / atoms.get_volume()
        return float(energy), forces, stress

    def lj_design(self, atoms: Atoms) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Energy and forces of each pair's LJ with epsilon = 1 (what the epsilon least-squares fit needs)."""
        energies, forces = {}, {}
        for key in self.lj:
            unit = {other: float(other == key) for other in self.lj}
            i, r, vectors, pair_energy, pair_derivative = self._pair_terms(
                atoms, lj_scale=unit, with_zbl=False
            )
            energies[key] = 0.5 * float(pair_energy.sum())
            per_atom = np.zeros((len(atoms), 3))
            np.add.at(per_atom, i, (pair_derivative / r)[:, None] * vectors)
            forces[key] = per_atom
        return energies, forces

    def lammps_snippet(self, potential_file: str, elements: list[str] | None = None) -> str:
        """``pair_style hybrid/overlay`` lines giving reference + ACE in LAMMPS (ML-PACE package).

        Atom types follow ``elements`` (default: this potential's element order). LAMMPS energies exclude
        the constant ``e0`` per atom; the variable ``e_model`` adds it back so it compares with the labels.
        """
        elements = list(elements or self.elements)
        numbers = [atomic_numbers[element] for element in elements]
        lines = [
            "# Reference (LJ + ZBL) + ACE, written by aiida-autopipe; units metal (eV, Angstrom).",
            f"pair_style hybrid/overlay pace lj/cut {self.lj_cutoff:.6g} zbl {self.zbl_inner:.6g} "
            f"{self.zbl_outer:.6g}",
            f"pair_coeff * * pace {potential_file} {' '.join(elements)}",
        ]
        for (index_a, element_a), (index_b, element_b) in itertools.combinations_with_replacement(
            enumerate(elements, start=1), 2
        ):
            params = self.lj.get(pair_key(element_a, element_b))
            if params is not None:
                lines.append(
                    f"pair_coeff {index_a} {index_b} lj/cut {params['epsilon']:.8g} {params['sigma']:.8g}"
                )
            lines.append(
                f"pair_coeff {index_a} {index_b} zbl {numbers[index_a - 1]:.1f} {numbers[index_b - 1]:.1f}"
            )
        lines.append("pair_modify pair lj/cut shift yes")
        shift_terms = []
        for index, element in enumerate(elements, start=1):
            lines.append(f"group autopipe_{element} type {index}")
            shift_terms.append(f"({self.atomic_energies.get(element, 0.0):.10g})*count(autopipe_{element})")
        lines.append(f"variable e_model equal pe+{'+'.join(shift_terms)}")
        return "\n".join(lines) + "\n"


class PairList:
    """Verlet list: neighbours within ``cutoff + skin``, reused until an atom has moved by half the skin."""

    def __init__(self, cutoff: float, skin: float = 0.5):
        self.cutoff, self.skin = cutoff, skin
        self._built = None

    def _stale(self, atoms: Atoms) -> bool:
        if self._built is None:
            return True
        numbers, cell, pbc, positions = self._built[3:]
        if len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers):
            return True
        if not (np.array_equal(atoms.cell[:], cell) and np.array_equal(atoms.pbc, pbc)):
            return True
        return np.max(np.linalg.norm(atoms.positions - positions, axis=1)) > self.skin / 2

    def pairs(self, atoms: Atoms) -> tuple[np.ndarray, ...]:
        """``i, j, r, D`` (D = r_j - r_i) of every ordered pair closer than ``cutoff``."""
        if self._stale(atoms):
            i, j, shifts = neighbor_list("ijS", atoms, self.cutoff + self.skin)
            offsets = shifts @ atoms.cell[:]
            self._built = (
                i,
                j,
                offsets,
                atoms.numbers.copy(),
                atoms.cell[:].copy(),
                atoms.pbc.copy(),
                atoms.positions.copy(),
            )
        i, j, offsets = self._built[:3]
        vectors = atoms.positions[j] - atoms.positions[i] + offsets
        distances = np.sqrt(np.einsum("pa,pa->p", vectors, vectors))
        keep = distances < self.cutoff
        return i[keep], j[keep], distances[keep], vectors[keep]


def ace_lammps_snippet(
    potential_file: str, elements: list[str], atomic_energies: dict[str, float] | None = None
) -> str:
    """``pair_style pace`` lines for a plain ACE potential (no reference).

    As for the reference's snippet, the variable ``e_model`` adds the per-element constants to ``pe``.
    """
    lines = [
        "# ACE potential, written by aiida-autopipe; units metal (eV, Angstrom).",
        "pair_style pace",
        f"pair_coeff * * {potential_file} {' '.join(elements)}",
    ]
    if atomic_energies:
        shift_terms = []
        for index, element in enumerate(elements, start=1):
            lines.append(f"group autopipe_{element} type {index}")
            shift_terms.append(f"({atomic_energies.get(element, 0.0):.10g})*count(autopipe_{element})")
        lines.append(f"variable e_model equal pe+{'+'.join(shift_terms)}")
    return "\n".join(lines) + "\n"


def lennard_jones(r: np.ndarray, sigma: float, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """LJ with epsilon = 1, zero at ``cutoff`` (LAMMPS ``lj/cut`` with ``pair_modify shift yes``)."""
    sr6 = (sigma / r) ** 6
    sc6 = (sigma / cutoff) ** 6
    energy = 4.0 * (sr6**2 - sr6) - 4.0 * (sc6**2 - sc6)
    derivative = 4.0 * (-12.0 * sr6**2 + 6.0 * sr6) / r
    return energy, derivative


def automatic_reference(elements: list[str], r_cut: float) -> ReferencePotential:
    """Reference with sigma and ZBL switching from covalent radii; epsilon and e0 zero until fitted."""
    elements = sorted(set(elements))
    lj = {}
    for element_a, element_b in itertools.combinations_with_replacement(elements, 2):
        bond = covalent_bond_length(element_a, element_b)
        lj[pair_key(element_a, element_b)] = {"epsilon": 0.0, "sigma": bond / 2 ** (1 / 6)}
    shortest = min(
        covalent_bond_length(a, b) for a, b in itertools.combinations_with_replacement(elements, 2)
    )
    return ReferencePotential(
        elements=elements,
        lj=lj,
        lj_cutoff=float(r_cut),
        zbl_inner=ZBL_INNER_FRACTION * shortest,
        zbl_outer=ZBL_OUTER_FRACTION * shortest,
        atomic_energies=dict.fromkeys(elements, 0.0),
    )


def fit_reference(
    frames: list[Atoms],
    r_cut: float,
    energy_weight: float = 1.0,
    force_weight: float = 100.0,
    elements: list[str] | None = None,
) -> ReferencePotential:
    """Automatic reference fitted to labelled frames (see the module docstring for the recipe).

    Frames carry ``info['energy']`` and ``arrays['forces']``; an optional ``arrays['force_weight']`` masks
    atoms, and ``info['energy_weight'] = 0`` leaves a frame's energy out (as for embedded clusters).
    """
    elements = sorted(set(elements or []) | {s for atoms in frames for s in atoms.get_chemical_symbols()})
    reference = automatic_reference(elements, r_cut)
    pair_keys = list(reference.lj)
    n_unknowns = len(elements) + len(pair_keys)
    energy_frames = [a for a in frames if a.info.get("energy_weight", 1.0) > 0]
    n_force_atoms = sum(float(np.sum(_force_weights(a))) for a in frames) or 1.0
    rows, targets = [], []
    for atoms in frames:
        zbl_energy, zbl_forces, _ = _zbl_only(reference, atoms)
        lj_energies, lj_forces = reference.lj_design(atoms)
        n_atoms = len(atoms)
        weight_e = atoms.info.get("energy_weight", 1.0) * energy_weight / max(len(energy_frames), 1)
        if weight_e > 0:
            counts = [atoms.get_chemical_symbols().count(element) / n_atoms for element in elements]
            row = counts + [lj_energies[key] / n_atoms for key in pair_keys]
            rows.append(np.sqrt(weight_e) * np.array(row))
            targets.append(np.sqrt(weight_e) * (atoms.info["energy"] - zbl_energy) / n_atoms)
        atom_weights = np.sqrt(force_weight * _force_weights(atoms) / n_force_atoms)
        force_rows = np.zeros((n_atoms * 3, n_unknowns))
        for column, key in enumerate(pair_keys, start=len(elements)):
            force_rows[:, column] = (atom_weights[:, None] * lj_forces[key]).ravel()
        rows.extend(force_rows)
        targets.extend((atom_weights[:, None] * (atoms.arrays["forces"] - zbl_forces)).ravel())
    lower = [-np.inf] * len(elements) + [0.0] * len(pair_keys)
    solution = lsq_linear(np.array(rows), np.array(targets), bounds=(lower, np.inf)).x
    reference.atomic_energies = {
        element: float(value) for element, value in zip(elements, solution, strict=False)
    }
    for key, value in zip(pair_keys, solution[len(elements) :], strict=True):
        reference.lj[key]["epsilon"] = float(value)
    return reference


def _force_weights(atoms: Atoms) -> np.ndarray:
    return np.asarray(atoms.arrays.get("force_weight", np.ones(len(atoms))), dtype=float)


def _zbl_only(reference: ReferencePotential, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
    zbl = ReferencePotential(
        reference.elements, {}, reference.lj_cutoff, reference.zbl_inner, reference.zbl_outer
    )
    return zbl.energy_forces_stress(atoms)


def subtract_reference(frames: list[Atoms], reference: ReferencePotential) -> list[Atoms]:
    """Copies of labelled frames with energy, forces, stress = labels minus reference (ACE's targets)."""
    residuals = []
    for atoms in frames:
        energy, forces, stress = reference.energy_forces_stress(atoms)
        residual = atoms.copy()
        residual.info["energy"] = atoms.info["energy"] - energy
        residual.arrays["forces"] = atoms.arrays["forces"] - forces
        if "stress" in atoms.info:
            residual.info["stress"] = stress_matrix(atoms.info["stress"]) - stress
        residuals.append(residual)
    return residuals


def stress_matrix(stress) -> np.ndarray:
    """3x3 stress from a 3x3 or a Voigt (xx, yy, zz, yz, xz, xy) array."""
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        return stress
    xx, yy, zz, yz, xz, xy = stress
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def _voigt(stress: np.ndarray) -> np.ndarray:
    return stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]


class ReferenceCalculator(Calculator):
    """ASE calculator of the reference potential alone."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, reference: ReferencePotential, **kwargs):
        super().__init__(**kwargs)
        self.reference = reference
        self.pair_list = PairList(reference.cutoff)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy, forces, stress = self.reference.energy_forces_stress(self.atoms, self.pair_list)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if self.atoms.cell.rank == 3:
            self.results["stress"] = _voigt(stress)


class ReferencePlusACECalculator(Calculator):
    """The exported delta-learned model in ASE: total = reference (LJ + ZBL + e0) + ACE.

    ``potential`` is pacemaker's ``.yaml`` (needed for extrapolation grades) or ``.yace``; with
    ``active_set`` (pace_activeset's ``.asi``) the results also hold ``gamma``, one grade per atom.
    Without ``reference`` it is plain ACE (used to show what delta learning buys) plus ``atomic_energies``,
    the per-element constants of a plain fit (pacemaker's B-basis has no constant term; a reference carries
    its own constants as ``e0``).
    """

    implemented_properties = ("energy", "free_energy", "forces", "stress", "energies", "gamma")

    def __init__(
        self,
        potential,
        reference: ReferencePotential | None = None,
        active_set=None,
        atomic_energies: dict[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reference = reference
        self.atomic_energies = dict(atomic_energies or {})
        self.pair_list = PairList(reference.cutoff) if reference is not None else None
        self.ace = make_ace_calculator(potential, active_set)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms.copy()
        self.ace.calculate(atoms, properties=("energy", "forces", "stress"), system_changes=all_changes)
        ace = self.ace.results
        energy, forces = float(ace["energy"]), np.array(ace["forces"])
        stress = ace.get("stress")
        if self.reference is not None:
            ref_energy, ref_forces, ref_stress = self.reference.energy_forces_stress(atoms, self.pair_list)
            energy += ref_energy
            forces = forces + ref_forces
            if stress is not None:
                stress = stress + _voigt(ref_stress)
        energy += sum(self.atomic_energies.get(symbol, 0.0) for symbol in atoms.get_chemical_symbols())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": forces,
            "energies": ace["energies"],
        }
        if stress is not None:
            self.results["stress"] = np.array(stress)
        if self.ace.is_active_set_configured:
            self.results["gamma"] = np.array(ace["gamma"])


def make_ace_calculator(potential, active_set=None):
    """pyace's calculator with the root logger left as it was (``import pyace`` sets it to INFO)."""
    import logging

    root = logging.getLogger()
    level = root.level
    try:
        from pyace import PyACECalculator
    finally:
        root.setLevel(level)
    calculator = PyACECalculator(str(potential))
    calculator.compute_projections = active_set is not None
    if active_set is not None:
        calculator.set_active_set(str(active_set))
    return calculator
