"""Validation of a fitted potential: physical properties and errors against its own DFT labels (no AiiDA).

Every function takes an ASE calculator, so the same code validates the exported delta-learned model
(:class:`~aiida_autopipe.core.baseline.ReferencePlusACECalculator`), a surrogate, or EMT in the tests.

- Equation of state: the cell scaled isotropically over +-``max_linear_strain``, ions relaxed at each volume,
  third-order Birch-Murnaghan fit (``ase.eos``) giving V0, E0, B0 and B0'. A non-cubic cell keeps its shape.
- Elastic constants: central finite differences of the stress over the six Voigt strains at the EOS volume,
  ions relaxed in each strained cell (relaxed-ion constants, which is what matters for diamond-type C44).
  ASE's stress is +(1/V) dE/d(strain), so ``C_ij = d sigma_i / d epsilon_j`` with engineering shear strains.
- RDF: Langevin NVT at a high temperature, g(r) averaged over sampled frames (total and per element pair).
- Phase ranking: each seed structure relaxed by the model, energies per atom relative to the lowest of the
  same composition; labelled frames are assigned to their nearest phase by a radial fingerprint, so the DFT
  ordering (lowest labelled frame of each phase) is compared with the model's on the very same frames.
- Parity: energy per atom and force components of the model against the labels, per group of frames.

Units in every result: eV, Angstrom, GPa, K; keys carry their unit.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms, units
from ase.neighborlist import neighbor_list

from aiida_autopipe.core.errors import InputError

#: Radial fingerprint used to assign labelled frames to phases: range and Gaussian width, Angstrom.
FINGERPRINT_RANGE = 6.0
FINGERPRINT_WIDTH = 0.15
#: A 6x6 matrix counts as cubic when its cubic average reproduces it within this fraction of C11.
CUBIC_TOLERANCE = 0.05


def is_periodic(atoms: Atoms) -> bool:
    """A bulk crystal: periodic along all three directions with a full-rank cell (EOS and C_ij make sense)."""
    return bool(atoms.pbc.all() and atoms.cell.rank == 3)


def _with_calculator(atoms: Atoms, calculator) -> Atoms:
    copy = atoms.copy()
    copy.set_constraint()
    copy.calc = calculator
    return copy


def relax_positions(atoms: Atoms, fmax: float, steps: int) -> bool:
    """Relax the ions of `atoms` (calculator attached) in place; True if converged to `fmax` (eV/Angstrom)."""
    from ase.optimize import BFGS

    if len(atoms) == 1:
        return True
    optimizer = BFGS(atoms, logfile=None)
    return bool(optimizer.run(fmax=fmax, steps=steps))


def relax_structure(atoms: Atoms, fmax: float, steps: int) -> bool:
    """Relax ions and, for a bulk crystal, the cell (zero pressure); in place, True if converged."""
    from ase.filters import UnitCellFilter
    from ase.optimize import BFGS

    target = UnitCellFilter(atoms) if is_periodic(atoms) else atoms
    optimizer = BFGS(target, logfile=None)
    return bool(optimizer.run(fmax=fmax, steps=steps))


@dataclass
class EquationOfStateResult:
    volumes_per_atom: list[float]  # Angstrom^3/atom
    energies_per_atom: list[float]  # eV/atom
    volume_per_atom: float  # V0, Angstrom^3/atom
    energy_per_atom: float  # E0, eV/atom
    bulk_modulus_gpa: float
    bulk_modulus_pressure_derivative: float
    lattice_scale: float  # V0 cell = input cell * lattice_scale
    lattice_constants_angstrom: list[float]  # |a|, |b|, |c| at V0
    lattice_angles_degree: list[float]
    min_in_range: bool  # the fitted V0 lies inside the sampled volumes
    ions_converged: bool

    def as_dict(self) -> dict:
        return asdict(self)


def equation_of_state(
    atoms: Atoms,
    calculator,
    max_linear_strain: float = 0.02,
    points: int = 9,
    relax_ions: bool = True,
    fmax: float = 1e-3,
    steps: int = 200,
) -> tuple[EquationOfStateResult, Atoms]:
    """Birch-Murnaghan E(V) of a bulk crystal; returns the fit and the crystal scaled to V0 (ions relaxed)."""
    from ase.eos import EquationOfState

    _require_periodic(atoms, "equation of state")
    if points < 5:
        raise InputError("eos.points", f"{points} volumes cannot fit 4 parameters well", "use at least 5")
    scales = np.linspace(1 - max_linear_strain, 1 + max_linear_strain, points)
    volumes, energies, converged = [], [], True
    for scale in scales:
        strained = _with_calculator(atoms, calculator)
        strained.set_cell(atoms.cell[:] * scale, scale_atoms=True)
        if relax_ions:
            converged &= relax_positions(strained, fmax, steps)
        volumes.append(strained.get_volume())
        energies.append(strained.get_potential_energy())
    n_atoms = len(atoms)
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, bulk_modulus = eos.fit(warn=False)
    pressure_derivative = float(eos.eos_parameters[2])
    scale = float((v0 / atoms.get_volume()) ** (1 / 3))
    at_minimum = _with_calculator(atoms, calculator)
    at_minimum.set_cell(atoms.cell[:] * scale, scale_atoms=True)
    if relax_ions:
        converged &= relax_positions(at_minimum, fmax, steps)
    result = EquationOfStateResult(
        volumes_per_atom=[v / n_atoms for v in volumes],
        energies_per_atom=[e / n_atoms for e in energies],
        volume_per_atom=float(v0 / n_atoms),
        energy_per_atom=float(e0 / n_atoms),
        bulk_modulus_gpa=float(bulk_modulus / units.GPa),
        bulk_modulus_pressure_derivative=pressure_derivative,
        lattice_scale=scale,
        lattice_constants_angstrom=[float(x) for x in at_minimum.cell.lengths()],
        lattice_angles_degree=[float(x) for x in at_minimum.cell.angles()],
        min_in_range=bool(min(volumes) < v0 < max(volumes)),
        ions_converged=bool(converged),
    )
    return result, at_minimum


#: Voigt index -> Cartesian index pairs, in ASE's stress order (xx, yy, zz, yz, xz, xy).
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def voigt_strain_tensor(index: int, magnitude: float) -> np.ndarray:
    """Symmetric strain tensor of Voigt component `index` (shears as engineering strain: eps_ij = gamma/2)."""
    i, j = VOIGT_PAIRS[index]
    strain = np.zeros((3, 3))
    if i == j:
        strain[i, i] = magnitude
    else:
        strain[i, j] = strain[j, i] = magnitude / 2
    return strain


@dataclass
class ElasticResult:
    voigt_matrix_gpa: list[list[float]]  # C_ij, 6x6, symmetrised
    residual_stress_gpa: list[float]  # Voigt stress of the unstrained cell
    strain: float
    cubic: bool  # C_ij matches the cubic pattern (in the cell's Cartesian frame)
    c11_gpa: float  # cubic averages (meaningful when `cubic`)
    c12_gpa: float
    c44_gpa: float
    bulk_modulus_voigt_gpa: float
    shear_modulus_voigt_gpa: float
    mechanically_stable: bool  # all eigenvalues of C positive (Born criterion)
    ions_converged: bool

    def as_dict(self) -> dict:
        return asdict(self)


def elastic_constants(
    atoms: Atoms,
    calculator,
    strain: float = 0.005,
    relax_ions: bool = True,
    fmax: float = 1e-3,
    steps: int = 200,
) -> ElasticResult:
    """The 6x6 elastic matrix (GPa) of a bulk crystal by +-`strain` central differences of the stress."""
    _require_periodic(atoms, "elastic constants")
    if not 0 < strain < 0.05:
        raise InputError("elastic.strain", f"{strain} is outside (0, 0.05)", "use about 0.005")
    reference = _with_calculator(atoms, calculator)
    residual = reference.get_stress(voigt=True)
    matrix = np.zeros((6, 6))
    converged = True
    for column in range(6):
        stresses = []
        for sign in (1, -1):
            deformation = np.eye(3) + voigt_strain_tensor(column, sign * strain)
            strained = _with_calculator(atoms, calculator)
            strained.set_cell(atoms.cell[:] @ deformation.T, scale_atoms=True)
            if relax_ions:
                converged &= relax_positions(strained, fmax, steps)
            stresses.append(strained.get_stress(voigt=True))
        matrix[:, column] = (stresses[0] - stresses[1]) / (2 * strain)
    matrix = 0.5 * (matrix + matrix.T) / units.GPa
    c11 = float(np.mean(np.diag(matrix)[:3]))
    c12 = float(np.mean([matrix[0, 1], matrix[0, 2], matrix[1, 2]]))
    c44 = float(np.mean(np.diag(matrix)[3:]))
    cubic_pattern = np.zeros((6, 6))
    cubic_pattern[:3, :3] = c12
    np.fill_diagonal(cubic_pattern[:3, :3], c11)
    cubic_pattern[3:, 3:] = np.eye(3) * c44
    bulk = (np.trace(matrix[:3, :3]) + 2 * (matrix[0, 1] + matrix[0, 2] + matrix[1, 2])) / 9
    shear = (
        np.trace(matrix[:3, :3]) - (matrix[0, 1] + matrix[0, 2] + matrix[1, 2]) + 3 * np.trace(matrix[3:, 3:])
    ) / 15
    return ElasticResult(
        voigt_matrix_gpa=matrix.tolist(),
        residual_stress_gpa=(residual / units.GPa).tolist(),
        strain=strain,
        cubic=bool(np.abs(matrix - cubic_pattern).max() <= CUBIC_TOLERANCE * abs(c11)),
        c11_gpa=c11,
        c12_gpa=c12,
        c44_gpa=c44,
        bulk_modulus_voigt_gpa=float(bulk),
        shear_modulus_voigt_gpa=float(shear),
        mechanically_stable=bool(np.linalg.eigvalsh(matrix).min() > 0),
        ions_converged=bool(converged),
    )


def _require_periodic(atoms: Atoms, what: str) -> None:
    if not is_periodic(atoms):
        raise InputError("structure", f"{what} needs a bulk crystal (3D periodic)", "give a periodic cell")


@dataclass
class RadialDistribution:
    r_angstrom: np.ndarray  # bin centres
    total: np.ndarray  # g(r) (periodic) or pairs per atom per Angstrom (non-periodic)
    partials: dict[str, np.ndarray]  # 'A-B' -> g_AB(r), same normalisation
    normalisation: str


def radial_distribution(frames: list[Atoms], r_max: float, n_bins: int) -> RadialDistribution:
    """g(r) averaged over `frames`, total and per element pair, with the minimum-image-free neighbour list.

    Periodic frames: g(r) = n(r) / (4 pi r^2 dr rho), which tends to 1 at large r in a liquid. Clusters have
    no density, so there the curve is the number of neighbours per atom per Angstrom of shell.
    """
    if not frames:
        raise InputError("rdf", "no frames to average", "sample at least one frame")
    edges = np.linspace(0.0, r_max, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    periodic = all(is_periodic(atoms) for atoms in frames)
    elements = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
    pairs = [f"{a}-{b}" for a, b in itertools.combinations_with_replacement(elements, 2)]
    total = np.zeros(n_bins)
    partial = {pair: np.zeros(n_bins) for pair in pairs}
    for atoms in frames:
        i, j, distances = neighbor_list("ijd", atoms, r_max)
        symbols = np.array(atoms.get_chemical_symbols())
        n_atoms = len(atoms)
        density = n_atoms / atoms.get_volume() if periodic else None
        counts = np.histogram(distances, bins=edges)[0]
        total += counts / (n_atoms * (shell * density if periodic else np.diff(edges)))
        for a, b in itertools.combinations_with_replacement(elements, 2):
            n_a, n_b = np.sum(symbols == a), np.sum(symbols == b)
            if n_a == 0 or n_b == 0:
                continue
            mask = (symbols[i] == a) & (symbols[j] == b)
            pair_counts = np.histogram(distances[mask], bins=edges)[0]
            if periodic:
                partial[f"{a}-{b}"] += pair_counts / (n_a * shell * n_b / atoms.get_volume())
            else:
                partial[f"{a}-{b}"] += pair_counts / (n_a * np.diff(edges))
    normalisation = "g(r)" if periodic else "neighbours per atom per Angstrom"
    return RadialDistribution(
        centres, total / len(frames), {k: v / len(frames) for k, v in partial.items()}, normalisation
    )


def langevin_frames(
    atoms: Atoms,
    calculator,
    temperature: float,
    steps: int,
    timestep: float = 1.0,
    friction: float = 0.02,
    equilibration: int = 0,
    sample_every: int = 10,
    seed: int = 0,
) -> tuple[list[Atoms], dict]:
    """Langevin NVT frames sampled every `sample_every` steps after `equilibration`, and a run summary.

    The summary says whether the run stayed finite and its mean kinetic temperature over the samples.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    rng = np.random.default_rng(seed)
    system = _with_calculator(atoms, calculator)
    thermalize_momenta(system, temperature, rng=rng)
    Stationary(system)
    dynamics = Langevin(
        system,
        timestep * units.fs,
        temperature_K=temperature,
        friction=friction / units.fs,
        fixcm=False,
        rng=rng,
    )
    frames, temperatures, stable = [], [], True
    for step in range(1, steps + 1):
        dynamics.run(1)
        forces = system.get_forces()
        if not np.all(np.isfinite(forces)):
            stable = False
            break
        if step > equilibration and (step - equilibration) % sample_every == 0:
            frame = system.copy()
            frame.calc = None
            frames.append(frame)
            temperatures.append(system.get_temperature())
    summary = {
        "temperature_K": temperature,
        "steps_done": step,
        "stable": stable,
        "n_samples": len(frames),
        "mean_sampled_temperature_K": float(np.mean(temperatures)) if temperatures else None,
    }
    return frames, summary


def supercell_with_at_least(atoms: Atoms, min_atoms: int) -> Atoms:
    """Smallest n x n x n repeat of a bulk cell with at least `min_atoms` atoms (clusters as they are)."""
    if not is_periodic(atoms):
        return atoms.copy()
    repeat = 1
    while len(atoms) * repeat**3 < min_atoms:
        repeat += 1
    return atoms.repeat(repeat)


def radial_fingerprint(atoms: Atoms) -> np.ndarray:
    """Gaussian-smeared neighbour-distance density per atom: a cheap signature of a structure's phase."""
    grid = np.linspace(0.5, FINGERPRINT_RANGE, 111)
    distances = neighbor_list("d", atoms, FINGERPRINT_RANGE + 3 * FINGERPRINT_WIDTH)
    if distances.size == 0:
        return np.zeros_like(grid)
    weights = np.exp(-0.5 * ((grid[:, None] - distances[None, :]) / FINGERPRINT_WIDTH) ** 2)
    return weights.sum(axis=1) / len(atoms)


def composition_key(atoms: Atoms) -> str:
    """Reduced Hill formula, e.g. 'FePt' for Pt4Fe4: the structures whose energies per atom compare."""
    return atoms.symbols.formula.reduce()[0].format("hill")


def assign_to_phases(frames: list[Atoms], phases: dict[str, Atoms]) -> list[str | None]:
    """Name of the nearest phase (same composition and periodicity, closest fingerprint) of each frame."""
    signatures = {
        name: (composition_key(atoms), is_periodic(atoms), radial_fingerprint(atoms))
        for name, atoms in phases.items()
    }
    assigned = []
    for atoms in frames:
        key, periodic, fingerprint = composition_key(atoms), is_periodic(atoms), radial_fingerprint(atoms)
        candidates = [
            (float(np.linalg.norm(fingerprint - signature)), name)
            for name, (phase_key, phase_periodic, signature) in signatures.items()
            if phase_key == key and phase_periodic == periodic
        ]
        assigned.append(min(candidates)[1] if candidates else None)
    return assigned


def frame_groups(frames: list[Atoms], phases: dict[str, Atoms] | None = None) -> list[str]:
    """Group of each labelled frame: its `config_type`, else 'embedded_cluster' for masked frames, else its
    nearest phase (when phases are given), else its reduced formula."""
    nearest = assign_to_phases(frames, phases) if phases else [None] * len(frames)
    groups = []
    for atoms, phase in zip(frames, nearest, strict=True):
        if "config_type" in atoms.info:
            groups.append(str(atoms.info["config_type"]).replace(".", "_"))  # AiiDA keys hold no dots
        elif _energy_weight(atoms) == 0 or np.any(_force_weights(atoms) == 0):
            groups.append("embedded_cluster")
        else:
            groups.append(phase or composition_key(atoms))
    return groups


def _energy_weight(atoms: Atoms) -> float:
    return float(atoms.info.get("energy_weight", 1.0))


def _force_weights(atoms: Atoms) -> np.ndarray:
    return np.asarray(atoms.arrays.get("force_weight", np.ones(len(atoms))), dtype=float)


def error_statistics(errors: np.ndarray) -> dict:
    """RMSE, MAE, max |error| and count of an error sample (None where there is none)."""
    errors = np.asarray(errors, dtype=float).ravel()
    if errors.size == 0:
        return {"rmse": None, "mae": None, "max_abs": None, "count": 0}
    return {
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mae": float(np.mean(np.abs(errors))),
        "max_abs": float(np.abs(errors).max()),
        "count": int(errors.size),
    }


@dataclass
class ParityData:
    """Model against labels, frame by frame; masked energies and force components are left out."""

    groups: list[str]  # one per frame
    energy_dft: np.ndarray  # eV/atom, frames with an energy label (energy_weight > 0), else nan
    energy_model: np.ndarray  # eV/atom, every frame
    force_dft: np.ndarray  # eV/Angstrom, unmasked force components, concatenated
    force_model: np.ndarray
    force_group_index: np.ndarray  # index into `groups` of each force component's frame

    def table(self) -> dict:
        """Errors per group and overall: energy in meV/atom, forces in meV/Angstrom (per component)."""
        labelled = np.isfinite(self.energy_dft)
        energy_errors = 1000 * (self.energy_model - self.energy_dft)
        force_errors = 1000 * (self.force_model - self.force_dft)
        groups = np.array(self.groups)
        table = {}
        for name in [*sorted(set(self.groups)), "all"]:
            in_group = np.ones(len(groups), bool) if name == "all" else groups == name
            force_mask = in_group[self.force_group_index] if len(self.force_group_index) else []
            table[name] = {
                "n_frames": int(in_group.sum()),
                "energy_meV_per_atom": error_statistics(energy_errors[in_group & labelled]),
                "force_meV_per_angstrom": error_statistics(force_errors[force_mask]),
            }
        return table


def parity(frames: list[Atoms], calculator, groups: list[str] | None = None) -> ParityData:
    """Evaluate the model on every labelled frame (info['energy'], arrays['forces'], optional weights)."""
    groups = list(groups) if groups is not None else frame_groups(frames)
    energy_dft, energy_model = [], []
    force_dft, force_model, force_group_index = [], [], []
    for index, atoms in enumerate(frames):
        system = _with_calculator(atoms, calculator)
        n_atoms = len(atoms)
        energy_model.append(system.get_potential_energy() / n_atoms)
        has_energy = "energy" in atoms.info and _energy_weight(atoms) > 0
        energy_dft.append(atoms.info["energy"] / n_atoms if has_energy else np.nan)
        if "forces" in atoms.arrays:
            mask = _force_weights(atoms) > 0
            force_dft.append(np.asarray(atoms.arrays["forces"])[mask].ravel())
            force_model.append(system.get_forces()[mask].ravel())
            force_group_index.append(np.full(3 * int(mask.sum()), index))
    concat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)  # noqa: E731
    return ParityData(
        groups=groups,
        energy_dft=np.array(energy_dft, dtype=float),
        energy_model=np.array(energy_model, dtype=float),
        force_dft=concat(force_dft),
        force_model=concat(force_model),
        force_group_index=concat(force_group_index).astype(int),
    )


def phase_ranking(
    phases: dict[str, Atoms],
    calculator,
    frames: list[Atoms] | None = None,
    relax: bool = True,
    fmax: float = 0.01,
    steps: int = 300,
) -> dict:
    """Energy ranking of the phases by the model (relaxed) and, where labels exist, by DFT.

    Energies per atom compare only at equal composition, so each phase's relative energy is taken against
    the lowest phase of its own composition. DFT side: each labelled frame goes to its nearest phase
    (:func:`assign_to_phases`); the lowest-energy labelled frame of each phase is that phase's DFT energy,
    and the model is evaluated on the same frame, so the two orderings compare like with like.
    """
    records = {}
    for name, atoms in phases.items():
        system = _with_calculator(atoms, calculator)
        initial = system.get_potential_energy() / len(system)
        converged = relax_structure(system, fmax, steps) if relax else None
        records[name] = {
            "composition": composition_key(atoms),
            "n_atoms": len(atoms),
            "periodic": is_periodic(atoms),
            "model_energy_per_atom_initial_eV": float(initial),
            "model_energy_per_atom_relaxed_eV": float(system.get_potential_energy() / len(system)),
            "relax_converged": converged,
            "volume_per_atom_relaxed_angstrom3": (
                float(system.get_volume() / len(system)) if is_periodic(system) else None
            ),
            "n_labelled_frames": 0,
            "dft_lowest_energy_per_atom_eV": None,
            "model_energy_per_atom_on_that_frame_eV": None,
        }
    if frames:
        labelled = [atoms for atoms in frames if "energy" in atoms.info and _energy_weight(atoms) > 0]
        for atoms, name in zip(labelled, assign_to_phases(labelled, phases), strict=True):
            if name is None:
                continue
            record = records[name]
            record["n_labelled_frames"] += 1
            energy = atoms.info["energy"] / len(atoms)
            if (
                record["dft_lowest_energy_per_atom_eV"] is None
                or energy < record["dft_lowest_energy_per_atom_eV"]
            ):
                record["dft_lowest_energy_per_atom_eV"] = float(energy)
                system = _with_calculator(atoms, calculator)
                record["model_energy_per_atom_on_that_frame_eV"] = float(
                    system.get_potential_energy() / len(system)
                )
    _relative_energies(records, "model_energy_per_atom_relaxed_eV", "model_relative_relaxed_meV_per_atom")
    _relative_energies(records, "dft_lowest_energy_per_atom_eV", "dft_relative_meV_per_atom")
    _relative_energies(
        records, "model_energy_per_atom_on_that_frame_eV", "model_relative_on_dft_frames_meV_per_atom"
    )
    compositions = {}
    for name, record in records.items():
        compositions.setdefault(record["composition"], []).append(name)
    summary = {}
    for composition, names in compositions.items():
        with_labels = [n for n in names if records[n]["dft_lowest_energy_per_atom_eV"] is not None]
        dft_order = sorted(with_labels, key=lambda n: records[n]["dft_lowest_energy_per_atom_eV"])
        model_order = sorted(with_labels, key=lambda n: records[n]["model_energy_per_atom_on_that_frame_eV"])
        summary[composition] = {
            "model_order_relaxed": sorted(
                names, key=lambda n: records[n]["model_energy_per_atom_relaxed_eV"]
            ),
            "dft_order_labelled": dft_order,
            "model_order_labelled": model_order,
            "same_order": dft_order == model_order if len(with_labels) > 1 else None,
        }
    return {"phases": records, "by_composition": summary}


def _relative_energies(records: dict, source: str, target: str) -> None:
    """Per composition: record[target] = 1000 * (record[source] - lowest of that composition), meV/atom."""
    lowest: dict[str, float] = {}
    for record in records.values():
        value = record[source]
        if value is not None:
            key = record["composition"]
            lowest[key] = min(value, lowest.get(key, np.inf))
    for record in records.values():
        value = record[source]
        record[target] = None if value is None else float(1000 * (value - lowest[record["composition"]]))


def report_markdown(report: dict) -> str:
    """The validation report (as `autopipe-validate` writes it) as markdown tables, for the run summary."""

    def number(value, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = ["## Validation", ""]
    eos, elastic = report.get("eos", {}), report.get("elastic", {})
    if "bulk_modulus_gpa" in eos:
        lines += [
            f"Crystal: {report.get('reference_formula', '?')} ({report.get('reference_structure')})",
            "",
            "| a, b, c (Å) | V0 (Å³/atom) | B0 (GPa) | B0' | C11 (GPa) | C12 (GPa) | C44 (GPa) "
            "| B from C_ij (GPa) |",
            "|---|---|---|---|---|---|---|---|",
            f"| {', '.join(number(x, 4) for x in eos['lattice_constants_angstrom'])} "
            f"| {number(eos['volume_per_atom'], 3)} | {number(eos['bulk_modulus_gpa'])} "
            f"| {number(eos['bulk_modulus_pressure_derivative'], 2)} | {number(elastic.get('c11_gpa'))} "
            f"| {number(elastic.get('c12_gpa'))} | {number(elastic.get('c44_gpa'))} "
            f"| {number(elastic.get('bulk_modulus_voigt_gpa'))} |",
            "",
        ]
        if elastic and not elastic.get("cubic"):
            lines += ["C_ij is not cubic: C11, C12, C44 are averages; see `voigt_matrix_gpa`.", ""]
    else:
        lines += [f"EOS and elastic constants: {eos.get('skipped') or eos.get('failed', 'not run')}", ""]
    phases = report.get("phases", {}).get("phases", {})
    if phases:
        lines += [
            "| phase | composition | model ΔE relaxed (meV/atom) | DFT ΔE (meV/atom) | model ΔE, same frames "
            "(meV/atom) | labelled frames |",
            "|---|---|---|---|---|---|",
        ]
        for name, record in sorted(phases.items()):
            model = number(record["model_relative_relaxed_meV_per_atom"])
            dft = number(record["dft_relative_meV_per_atom"])
            same_frames = number(record["model_relative_on_dft_frames_meV_per_atom"])
            lines.append(
                f"| {name} | {record['composition']} | {model} | {dft} | {same_frames} "
                f"| {record['n_labelled_frames']} |"
            )
        lines.append("")
    for run in report.get("rdf", {}).get("runs", []):
        lines.append(
            f"RDF at {number(run['temperature_K'], 0)} K: {run['n_atoms']} atoms, {run['n_samples']} frames, "
            f"{'stable' if run['stable'] else 'UNSTABLE'}, "
            f"first peak {number(run.get('first_peak_angstrom'), 2)} Å"
        )
    table = report.get("parity", {}).get("table", {})
    if table:
        lines += [
            "",
            "| frames | n | E RMSE | E MAE | E max (meV/atom) | F RMSE | F MAE | F max (meV/Å) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in table.items():
            energy, force = row["energy_meV_per_atom"], row["force_meV_per_angstrom"]
            lines.append(
                f"| {name} | {row['n_frames']} | {number(energy['rmse'])} | {number(energy['mae'])} "
                f"| {number(energy['max_abs'])} | {number(force['rmse'])} | {number(force['mae'])} "
                f"| {number(force['max_abs'])} |"
            )
    return "\n".join(lines) + "\n"
