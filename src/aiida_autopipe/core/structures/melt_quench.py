"""Melt-quench with any ASE calculator: Langevin MD well above the melting point, then a linear temperature
ramp down to the quench temperature, at fixed cell. Fast quenches freeze in amorphous and defected
structures; the melt itself is sampled on the way (snapshots tagged with their temperature)."""

from collections.abc import Callable, Mapping

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from aiida_autopipe.core.elements import melting_point
from aiida_autopipe.core.structures.base import GeneratedStructure

#: Melt at this multiple of the melting point, so that a few picoseconds suffice to lose the crystal.
MELT_FACTOR = 1.5
FRICTION_PER_FS = 0.01


def melt_temperature(composition: Mapping[str, float], melting_point_guess: float | None = None) -> float:
    """MELT_FACTOR x the melting point: the user's guess (K), else the fraction-weighted elemental melting
    points (a rough upper bound for compounds that melt below their elements, an underestimate for oxides)."""
    if melting_point_guess is None:
        total = sum(composition.values())
        known = {symbol: melting_point(symbol) for symbol in composition}
        melting_point_guess = sum(composition[s] * (known[s] or 1000.0) for s in composition) / total
    return MELT_FACTOR * float(melting_point_guess)


def melt_quench(
    parent: GeneratedStructure,
    calculator,
    melt_temperature: float,
    quench_temperature: float = 300.0,
    melt_steps: int = 500,
    quench_steps: int = 1000,
    timestep_fs: float = 2.0,
    n_melt_snapshots: int = 0,
    seed: int = 0,
    observer: Callable[[Atoms, int], None] | None = None,
) -> list[GeneratedStructure]:
    """Melt then quench a copy of the parent; returns ``n_melt_snapshots`` structures taken at even
    intervals during the melt, then the quenched structure. The quench rate is
    (melt_temperature - quench_temperature) / (quench_steps x timestep). ``observer(atoms, step)`` runs after
    every MD step (the surrogate runner stops unstable runs there by raising)."""
    atoms = parent.atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=melt_temperature, rng=rng)
    dynamics = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=melt_temperature,
        friction=FRICTION_PER_FS / units.fs,
        rng=rng,
    )
    structures = []
    snapshot_every = melt_steps // n_melt_snapshots if n_melt_snapshots else 0
    for step in range(1, melt_steps + 1):
        dynamics.run(1)
        if observer is not None:
            observer(atoms, step)
        if snapshot_every and step % snapshot_every == 0 and len(structures) < n_melt_snapshots:
            structures.append(_record(atoms, parent, "melt", melt_temperature, len(structures), step))
    ramp = np.linspace(melt_temperature, quench_temperature, quench_steps)
    for step, temperature in enumerate(ramp, start=melt_steps + 1):
        dynamics.set_temperature(temperature_K=temperature)
        dynamics.run(1)
        if observer is not None:
            observer(atoms, step)
    quench_rate = (melt_temperature - quench_temperature) / (quench_steps * timestep_fs * 1e-3)  # K/ps
    quenched = _record(atoms, parent, "melt_quench", quench_temperature, 0, melt_steps + quench_steps)
    quenched.details.update({"melt_temperature": melt_temperature, "quench_rate_K_per_ps": quench_rate})
    structures.append(quenched)
    return structures


def _record(atoms: Atoms, parent: GeneratedStructure, method: str, temperature: float, index: int, step: int):
    snapshot = Atoms(
        atoms.get_chemical_symbols(), positions=atoms.get_positions(), cell=atoms.cell, pbc=atoms.pbc
    )
    snapshot.wrap()
    return GeneratedStructure(
        atoms=snapshot,
        method=method,
        label=f"{parent.label}_{method}{index}",
        parent=parent.label,
        temperature=float(temperature),
        details={"md_step": step},
    )
